"""The run layer: `sinkbench run` drives a model through a suite's grid and writes one record."""

from sinkbench.run.runner import RunConfig, run

__all__ = ["RunConfig", "run"]
