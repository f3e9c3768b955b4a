from sinkbench.data.tasks import boolq as load  # noqa: F401
