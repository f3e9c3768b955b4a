from sinkbench.taskdata import piqa as load  # noqa: F401
