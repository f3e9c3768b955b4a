from sinkbench.taskdata import boolq as load  # noqa: F401
