from sinkbench.data.tasks import openbookqa as load  # noqa: F401
