from sinkbench.data.tasks import arc_challenge, arc_easy  # noqa: F401
