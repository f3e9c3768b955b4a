from sinkbench.taskdata import openbookqa as load  # noqa: F401
