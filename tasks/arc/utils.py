from sinkbench.taskdata import arc_challenge, arc_easy  # noqa: F401
