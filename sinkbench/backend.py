"""Shim: the lm-eval backend moved to sinkbench.harness.backend; this old public path keeps working."""

from sinkbench.harness.backend import SinkbenchLM

__all__ = ["SinkbenchLM"]
