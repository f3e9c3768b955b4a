from sinkbench.taskdata import book_chunks as load  # noqa: F401
