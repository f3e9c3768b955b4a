from sinkbench.data.tasks import book_chunks as load  # noqa: F401
