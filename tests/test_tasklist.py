"""`sinkbench tasks`: groups apart from tasks, a line each, read from the YAML files; the group YAMLs
are the suites' own task lists and versions, written by `sinkbench tasks --write-groups`."""

import yaml

from sinkbench.cli import main
from sinkbench.grid.suite import SUITES
from sinkbench.harness.tasklist import default_tasks_dir, describe_tasks, group_name, group_yaml, write_groups


def test_groups_are_listed_apart_from_tasks_with_a_line_each():
    text = describe_tasks(default_tasks_dir())
    groups, rest = text.split("\nTasks (", 1)
    for suite in SUITES.values():
        assert f"{group_name(suite)} (v{suite.version}, {len(suite.tasks)} tasks)" in groups
    lines = {line.split()[0]: line for line in rest.splitlines()[1:] if line.strip()}
    assert "sinkbench_quick" not in lines  # a group is not a task
    assert lines["sinkbench_lambada_quick"].split()[1] == "loglikelihood"
    assert "first 700 docs" in lines["sinkbench_lambada_quick"]
    assert "LAMBADA" in lines["sinkbench_lambada"]  # the description comes from the YAML's comment
    assert lines["sinkbench_book_ppl_quick"].endswith("12 docs")


def test_each_group_yaml_is_its_suite():
    """The group files in tasks/groups/ are one per suite, listing its tasks in order with its version,
    and are exactly what `sinkbench tasks --write-groups` writes."""
    folder = default_tasks_dir() / "groups"
    assert {path.stem for path in folder.glob("*.yaml")} == {group_name(s) for s in SUITES.values()}
    for suite in SUITES.values():
        text = (folder / f"{group_name(suite)}.yaml").read_text()
        group = yaml.safe_load(text)
        assert group["group"] == group_name(suite)
        assert group["task"] == [t.name for t in suite.tasks], suite.name
        assert str(group["metadata"]["version"]) == suite.version, suite.name
        assert text == group_yaml(suite), f"tasks/groups is stale: run `sinkbench tasks --write-groups` ({suite.name})"


def test_write_groups_writes_what_changed(tmp_path, capsys, monkeypatch):
    (tmp_path / "groups").mkdir()
    stale = tmp_path / "groups" / "sinkbench_quick.yaml"
    stale.write_text("group: sinkbench_quick\ntask: [sinkbench_lambada_quick]\n")
    assert sorted(p.name for p in write_groups(tmp_path)) == sorted(f"{group_name(s)}.yaml" for s in SUITES.values())
    assert stale.read_text() == group_yaml(SUITES["quick"])
    assert write_groups(tmp_path) == []
    monkeypatch.setattr("sinkbench.cli.default_tasks_dir", lambda: tmp_path)  # never the checkout's files
    assert main(["tasks", "--write-groups"]) == 0
    assert capsys.readouterr().out == "the group files are up to date\n"
    stale.write_text("")
    assert main(["tasks", "--write-groups"]) == 0
    assert capsys.readouterr().out == f"wrote {stale}\n"
