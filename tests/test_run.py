"""`sinkbench run`: the condition grid, one atomic file per condition, resume after interruption."""

import json

import pytest

from sinkbench.cli import main
from sinkbench.errors import SinkbenchError
from sinkbench.run import RunConfig, condition_grid, run_grid, slug, summary_table


def test_condition_grid_and_names():
    grid = condition_grid(["keep", "drop"], [0, 64])
    assert [c.name for c in grid] == ["bos=keep", "bos=keep,prefix=64", "bos=drop", "bos=drop,prefix=64"]
    streaming = condition_grid(["keep"], [0], window=16, sinks=[0, 4])
    assert [c.name for c in streaming] == ["bos=keep,window=16,sinks=0", "bos=keep,window=16,sinks=4"]
    assert slug(grid[1]) == "bos-keep_prefix-64"


def test_run_grid_writes_each_condition_and_resumes(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    config = RunConfig(model=str(tiny_model_dir), out=out, tasks=("sinkbench_copa",),
                       conditions=condition_grid(["keep", "drop"], [0]), limit=3, batch_size=2)
    messages = []
    documents = run_grid(config, log=messages.append)
    assert sorted(p.name for p in out.glob("*.json")) == ["bos-drop.json", "bos-keep.json"]
    keep = json.loads((out / "bos-keep.json").read_text())
    assert keep["condition"] == "bos=keep" and keep["model"]["family"] == "llama"
    assert keep["config"]["sinkbench"]["sink_metrics"]["sinkbench_copa"]["n_requests"] == 6
    assert len((out / "bos-keep.sinks.jsonl").read_text().splitlines()) == 6
    table = summary_table(documents)
    assert list(table.index) == ["bos=keep", "bos=drop"] and ("sinkbench_copa", "acc") in table.columns
    (out / "bos-drop.json").unlink()  # as if interrupted during the second condition
    (out / "bos-drop.sinks.jsonl").write_text('{"partial": true}\n')
    messages.clear()
    run_grid(config, log=messages.append)
    assert any("done already" in m and "bos=keep" in m for m in messages)
    assert json.loads((out / "bos-drop.json").read_text())["condition"] == "bos=drop"
    assert "partial" not in (out / "bos-drop.sinks.jsonl").read_text()


def test_unknown_task_is_an_error(tiny_model_dir, tmp_path):
    config = RunConfig(model=str(tiny_model_dir), out=tmp_path, tasks=("no_such_task",),
                       conditions=condition_grid(["keep"], [0]))
    with pytest.raises(SinkbenchError, match="unknown task"):
        run_grid(config)


def test_run_cli_rejects_bad_lists(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--prefix", "0,lots"])
    assert "comma-separated list" in capsys.readouterr().err
