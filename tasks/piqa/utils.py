from sinkbench.data.tasks import piqa as load  # noqa: F401
