"""`sinkbench tasks`: groups apart from tasks, a line each, read from the YAML files."""

from sinkbench.harness.tasklist import default_tasks_dir
from sinkbench.harness.tasklist import describe_tasks


def test_groups_are_listed_apart_from_tasks_with_a_line_each():
    text = describe_tasks(default_tasks_dir())
    groups, rest = text.split("\nTasks (", 1)
    assert "sinkbench_quick (v4.0, 8 tasks)" in groups and "sinkbench_standard (v3.0, 23 tasks)" in groups
    lines = {line.split()[0]: line for line in rest.splitlines()[1:] if line.strip()}
    assert "sinkbench_quick" not in lines  # a group is not a task
    assert lines["sinkbench_lambada_quick"].split()[1] == "loglikelihood"
    assert "first 700 docs" in lines["sinkbench_lambada_quick"]
    assert "LAMBADA" in lines["sinkbench_lambada"]  # the description comes from the YAML's comment
    assert lines["sinkbench_book_ppl_quick"].endswith("12 docs")
