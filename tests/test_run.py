"""`sinkbench run`: a record from a tiny model through lm-eval; resume, refusal, determinism, no repeated work."""

import copy
import json
import re

import pytest

from lm_tasks import write_tasks
from sinkbench.cli import main
from sinkbench.grid.catalog import ACCURACY, PERPLEXITY, RETRIEVAL
from sinkbench.grid.conditions import BASELINE, BOS_DROP, KNOCKOUT, WINDOW_ONLY, WINDOW_SINKS, Condition
from sinkbench.errors import SinkbenchError
from sinkbench.grid.suite import GridCell, custom_grid, get_suite
from sinkbench.record.validate import problems
from sinkbench.run.runner import RunConfig, run

SCORED = ("tiny_cloze", "tiny_choice", "tiny_rolling")

# Every role the summary columns read, without a stress prefix (that needs the data directory).
CELLS = (
    GridCell(Condition(), SCORED, BASELINE),
    GridCell(Condition(bos="drop"), SCORED, BOS_DROP),
    GridCell(Condition(knockout="all"), SCORED, KNOCKOUT),
    GridCell(Condition(window=8, sink_keys=0), ("tiny_rolling",), WINDOW_ONLY),
    GridCell(Condition(window=8, sink_keys=4), ("tiny_rolling",), WINDOW_SINKS),
)
TIMES = re.compile(r"wall_time_s|throughput|date")


@pytest.fixture
def tasks_dir(tmp_path):
    return write_tasks(tmp_path / "tasks")


def config(model, out, tasks_dir, **overrides):
    base = dict(model=str(model), out=out, cells=CELLS, include_path=tasks_dir, batch_size=2)
    base.update(overrides)
    return RunConfig(**base)


@pytest.fixture(autouse=True)
def small_profile(monkeypatch):
    """The suite's profile plan, shrunk: 100 texts and a 4k sweep are for real models."""
    from dataclasses import replace

    import sinkbench.grid.suite as suite

    plan = suite.ProfilePlan(T=16, n=6, sweep_lengths=(16, 64), sweep_texts=(3, 2), overmixing_sequences=2)
    monkeypatch.setitem(suite.SUITES, "quick", replace(suite.SUITES["quick"], profile=plan))


def without_times(record: dict) -> dict:
    """The record less what a clock decides (times, throughput, dates)."""
    record = copy.deepcopy(record)

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not TIMES.search(k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(record)


@pytest.mark.needs_data  # without it the profile runs on generated text and the record is partial
def test_run_writes_a_valid_record_with_every_part(tiny_model_dir, tasks_dir, tmp_path):
    path = run(config(tiny_model_dir, tmp_path / "out", tasks_dir), log=lambda m: None)
    record = json.loads(path.read_text())
    assert problems(record) == []
    assert record["status"] == "complete" and record["provenance"]["suite"]["custom_grid"] is True
    assert [c["name"] for c in record["conditions"]] == [c.condition.name for c in CELLS]
    keep = record["conditions"][0]
    assert keep["scores"]["tiny_choice"]["acc"]["n"] == 3 and keep["scores"]["tiny_choice"]["acc"]["stderr"] is not None
    assert keep["sinks"]["tiny_choice"]["n_requests"] == 8  # 3 + 2 + 3 choices
    assert keep["first_tokens"] == [{"id": 2, "token": "<bos>", "count": keep["first_tokens"][0]["count"]}]
    assert set(keep["link"]) == {"tiny_cloze", "tiny_choice"}  # accuracy tasks only
    assert record["tasks"]["tiny_rolling"]["kind"] == PERPLEXITY
    profile = record["profile"]
    assert [p["T"] for p in profile["length_sweep"]["points"]] == [16, 64]
    assert len(profile["alpha_by_head"]) == 2 and len(profile["alpha_by_head"][0]) == 4
    summary = record["summary"]
    for name in ("suite_score", "bos_dependence", "knockout_dependence", "streaming_gap", "sink_growth", "throughput"):
        assert summary[name]["value"] is not None, name
    assert summary["length_robustness"]["value"] is None
    assert summary["length_robustness"]["note"] == "no prefix condition in the record"
    assert record["provenance"]["task_hashes"].keys() == set(SCORED)


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_record_and_runs_are_deterministic(tiny_model_dir, tasks_dir, tmp_path):
    reference = json.loads(run(config(tiny_model_dir, tmp_path / "a", tasks_dir), log=lambda m: None).read_text())

    def stop_after_first(message):
        if re.match(r"\[1/\d\] .*saved$", message):
            raise KeyboardInterrupt

    out = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        run(config(tiny_model_dir, out, tasks_dir), log=stop_after_first)
    assert sorted(p.name for p in out.glob("cond-*.json")) == ["cond-bos-keep.json"]
    assert not (out / "record.json").exists()
    messages = []
    resumed = json.loads(run(config(tiny_model_dir, out, tasks_dir), log=messages.append).read_text())
    assert any("[1/5] bos=keep: done already" in m for m in messages)
    assert without_times(resumed) == without_times(reference)


def test_a_condition_seen_identically_is_not_computed_again(tmp_path, tasks_dir):
    from conftest import make_model, make_tokenizer

    folder = tmp_path / "no-bos-model"  # a tokenizer that adds no <bos>, like SmolLM2's
    make_model("llama").save_pretrained(folder)
    make_tokenizer(adds_bos=False).save_pretrained(folder)
    messages = []
    record = json.loads(run(config(folder, tmp_path / "out", tasks_dir), log=messages.append).read_text())
    keep, drop = record["conditions"][:2]
    assert drop["identical_to"] == "bos=keep" and drop["wall_time_s"] == 0
    assert drop["scores"] == keep["scores"] and drop["sinks"] == keep["sinks"]
    assert not (tmp_path / "out" / "cond-bos-drop.sinks.jsonl").exists()
    assert any("same token sequences as bos=keep" in m for m in messages)
    assert record["summary"]["bos_dependence"]["value"] == 0.0
    assert "adds no <bos>" in record["summary"]["bos_dependence"]["note"]


def test_a_folder_of_another_model_or_suite_is_refused(tiny_model_dir, tasks_dir, tmp_path):
    from conftest import make_model

    out = tmp_path / "out"
    cells = CELLS[:1]
    run(config(tiny_model_dir, out, tasks_dir, cells=cells), log=lambda m: None)
    other = tmp_path / "other-model"
    other.mkdir()
    for file in tiny_model_dir.iterdir():
        (other / file.name).write_bytes(file.read_bytes())
    with pytest.raises(SinkbenchError, match="holds results of another run: model"):
        run(config(other, out, tasks_dir, cells=cells), log=lambda m: None)
    with pytest.raises(SinkbenchError, match="holds results of another run: .*limit"):
        run(config(tiny_model_dir, out, tasks_dir, cells=cells, limit=1), log=lambda m: None)
    make_model("llama", seed=1).save_pretrained(tiny_model_dir)  # same name, new weights
    with pytest.raises(SinkbenchError, match="other weights"):
        run(config(tiny_model_dir, out, tasks_dir, cells=(GridCell(Condition(bos="drop"), SCORED, BOS_DROP),)), log=lambda m: None)
    before = json.loads((out / "record.json").read_text())
    path = run(config(tiny_model_dir, out, tasks_dir, cells=cells, force=True), log=lambda m: None)
    after = json.loads(path.read_text())
    assert after["model"]["weights_sha256"] != before["model"]["weights_sha256"]


def test_without_data_the_real_tasks_are_skipped_and_the_record_is_partial(tiny_model_dir, tmp_path, monkeypatch):
    import sinkbench.data.datadir as data
    import sinkbench.run.runner as runner

    def no_data(explicit=None):
        raise SinkbenchError("no data directory given")

    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(runner, "resolve_data_dir", no_data)
    suite = get_suite("quick")
    cells = custom_grid(suite, ["sinkbench_passkey_quick_512", "sinkbench_passkey_quick_1024", "sinkbench_copa"], ["keep"],
                        [0, 1024], None, None, None)
    messages = []
    path = run(RunConfig(model=str(tiny_model_dir), out=tmp_path / "out", cells=cells, limit=2, batch_size=2),
               log=messages.append)
    record = json.loads(path.read_text())
    assert problems(record) == []
    assert record["status"] == "partial"
    assert [c["name"] for c in record["conditions"]] == ["bos=keep"]
    keep = record["conditions"][0]
    assert list(keep["scores"]) == ["sinkbench_passkey_quick_512"]
    # the tiny model's context is 1024 tokens: a 1024-token document after <bos> does not fit, and is never truncated
    assert keep["skipped"] == {"sinkbench_passkey_quick_1024": "beyond the model's context: a 1024-token document in 1024 tokens"}
    assert keep["truncated_requests"] == 0
    assert "no data directory" in record["missing"][0] and "sinkbench_copa" in record["missing"][1]
    assert record["profile"]["text_source"].startswith("generated")
    assert any(m.startswith("note: no data directory") for m in messages)


def test_custom_grids():
    suite = get_suite("quick")
    assert custom_grid(suite, None, None, None, None, None, None) is None
    only = custom_grid(suite, ["sinkbench_book_ppl_quick"], None, None, None, None, None)
    assert [c.condition.name for c in only] == [c.condition.name for c in suite.grid() if "sinkbench_book_ppl_quick" in c.tasks]
    assert {c.tasks for c in only} == {("sinkbench_book_ppl_quick",)}
    streaming = custom_grid(suite, ["sinkbench_book_ppl_quick"], None, None, 16, [0, 4], None)
    assert [c.condition.name for c in streaming] == ["bos=keep,window=16,sinks=0", "bos=keep,window=16,sinks=4"]
    grid = custom_grid(suite, None, ["keep", "drop"], [0, 64], None, None, None)
    assert [c.condition.name for c in grid] == ["bos=keep", "bos=keep,prefix=64", "bos=drop", "bos=drop,prefix=64"]
    with pytest.raises(SinkbenchError, match="--sinks needs --window"):
        custom_grid(suite, None, None, None, None, [4], None)


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_each_suite_grid_holds_every_role_the_columns_read(name):
    from sinkbench.grid.conditions import BOS_DROP_PREFIX, PREFIX, role_of

    suite = get_suite(name)
    grid = suite.grid()
    assert {c.role for c in grid} >= {BASELINE, BOS_DROP, KNOCKOUT, PREFIX, BOS_DROP_PREFIX, WINDOW_ONLY, WINDOW_SINKS}
    assert all(c.role == role_of(c.condition) for c in grid)  # the stored role is what the condition is
    baseline = next(c for c in grid if c.role == BASELINE)
    assert set(baseline.tasks) == {t.name for t in suite.tasks}  # the baseline runs everything once
    sweep = [c for c in grid if c.role == PREFIX]
    assert [c.condition.prefix_length for c in sweep] == sorted(suite.prefix_lengths)
    sweep_tasks = {t.name for t in suite.tasks if t.sweep}
    assert sweep_tasks and all(set(c.tasks) == sweep_tasks and c.limit == suite.sweep_limit for c in sweep)
    dropped = next(c for c in grid if c.role == BOS_DROP_PREFIX)
    assert dropped.condition.prefix_length == max(suite.prefix_lengths) and set(dropped.tasks) == sweep_tasks
    assert all(c.tasks == (suite.long_text_task,) for c in grid if c.role in (WINDOW_ONLY, WINDOW_SINKS))
    retrieval = [t for t in suite.tasks if t.kind == RETRIEVAL]
    assert [t.retrieval[1] for t in retrieval if t.retrieval[0] == "passkey"][0] == 512  # the curve starts at 512


def test_run_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["run", "--sinks", "4"]) == 2
    assert capsys.readouterr().err.strip() == (
        "sinkbench: error: --sinks needs --window (StreamingLLM keeps the first k keys plus the last W)")
    assert main(["run", "--out", "/proc/x/y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sinkbench: error: cannot write results to /proc/x/y") and "\n" not in err
    assert main(["run", "--release-date", "2025-13-01"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--prefix", "0,lots"])
    assert "comma-separated list" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--limit", "0"], "--limit must be a whole number >= 1 (documents per task), got 0"),
    (["--limit", "-3"], "--limit must be a whole number >= 1 (documents per task), got -3"),
    (["--max-batch-tokens", "0"], "--max-batch-tokens must be a whole number >= 1"),
    (["--device", "cuda"], "install a CUDA build"),
    (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or mps"),
])
def test_bad_arguments_get_one_line_before_any_model_loads(argv, message, capsys, tmp_path, monkeypatch):
    import torch

    import sinkbench.measure.models as models

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a CPU-only build
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sinkbench: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()  # and no folder was made


def test_validate_accepts_a_run_folder(tiny_model_dir, tasks_dir, tmp_path, capsys):
    out = tmp_path / "out"
    run(config(tiny_model_dir, out, tasks_dir, cells=CELLS[:1]), log=lambda m: None)
    assert main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out / 'record.json'}: valid sinkbench record"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", str(empty)]) == 2
    assert "a folder without a record.json" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume(monkeypatch, capsys, tmp_path):
    import sinkbench.run

    def interrupted(config, log=print, verbose=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(sinkbench.run, "run", interrupted)  # what `sinkbench run` calls
    assert main(["run", "--out", str(tmp_path / "x")]) == 130
    err = capsys.readouterr().err
    assert "stopped" in err and "run the same command again" in err and "Traceback" not in err
    assert "nothing was kept" in err  # nothing had finished: the folder is gone, and it says so
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "cond-bos-keep.json").write_text("{}")
    assert main(["run", "--out", str(tmp_path / "x")]) == 130
    assert f"Finished conditions are saved in {tmp_path / 'x'}/" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.subprocess
def test_under_torchrun_rank_0_writes_the_record_with_every_rank_s_results(tiny_model_dir, tasks_dir, tmp_path):
    """Two CPU ranks split the documents; the record equals a single-process run's."""
    import os
    import subprocess
    import sys

    def command(launcher, out):
        return [*launcher, "-m", "sinkbench.cli", "run", "--model", str(tiny_model_dir), "--include-path", str(tasks_dir),
                "--tasks", "tiny_choice,tiny_cloze", "--bos", "keep,drop", "--prefix", "0", "--out", str(out),
                "--batch-size", "2"]

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    torchrun = [os.path.join(os.path.dirname(sys.executable), "torchrun"), "--nproc_per_node", "2"]
    for launcher, out in ((torchrun, tmp_path / "ranks"), ([sys.executable], tmp_path / "single")):
        proc = subprocess.run(command(launcher, out), capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ranks, single = (json.loads((tmp_path / name / "record.json").read_text()) for name in ("ranks", "single"))
    assert problems(ranks) == []
    for mine, theirs in zip(ranks["conditions"], single["conditions"]):
        for task, metrics in theirs["scores"].items():
            for metric, entry in metrics.items():  # a rank batches its own share: float rounding differs, nothing else
                assert mine["scores"][task][metric]["n"] == entry["n"]
                assert mine["scores"][task][metric]["value"] == pytest.approx(entry["value"], rel=1e-5), (task, metric)
        assert {t: s["n_requests"] for t, s in mine["sinks"].items()} == {"tiny_choice": 8, "tiny_cloze": 4}
        for task, link in mine["link"].items():
            assert link["n"] == theirs["link"][task]["n"] == mine["scores"][task]["acc"]["n"]
    assert (tmp_path / "ranks" / "cond-bos-keep.sinks.jsonl.rank1").is_file()


def test_a_run_that_computed_nothing_leaves_nothing_behind(tiny_model_dir, tasks_dir, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SinkbenchError, match="model path not found"):
        run(config(tmp_path / "typo" / "model", out, tasks_dir, cells=CELLS[:1]), log=lambda m: None)
    assert not out.exists()  # the folder it made is gone again
    with pytest.raises(SinkbenchError, match="unknown task"):
        run(config(tiny_model_dir, out, tasks_dir, cells=(GridCell(Condition(), ("tiny_clozee",), BASELINE),)),
            log=lambda m: None)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # a folder the user made keeps what they put there
    with pytest.raises(SinkbenchError, match="model path not found"):
        run(config(tmp_path / "typo" / "model", out, tasks_dir, cells=CELLS[:1]), log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    path = run(config(tiny_model_dir, out, tasks_dir, cells=CELLS[:1]), log=lambda m: None)
    assert json.loads(path.read_text())["model"]["name"] == "tiny-llama"


@pytest.mark.needs_data  # the stress prefix is cut from War and Peace
def test_the_prefix_sweep_is_in_the_record_and_a_length_beyond_the_context_is_skipped(tiny_model_dir, tasks_dir, tmp_path):
    from sinkbench.grid.conditions import PREFIX

    cells = (GridCell(Condition(), ("tiny_cloze", "tiny_choice"), BASELINE),
             *(GridCell(Condition(prefix_length=p), ("tiny_cloze", "tiny_choice"), PREFIX) for p in (64, 256, 1020)))
    path = run(config(tiny_model_dir, tmp_path / "out", tasks_dir, cells=cells), log=lambda m: None)
    record = json.loads(path.read_text())
    assert problems(record) == []
    sweep = [c for c in record["conditions"] if c["role"] == PREFIX]
    assert [c["spec"]["prefix_length"] for c in sweep] == [64, 256, 1020]
    longest = sweep[-1]  # the tiny model has 1024 positions: 1020 + <bos> + a text cannot fit
    assert set(longest["skipped"]) == {"tiny_cloze", "tiny_choice"} and not longest["scores"]
    assert all(reason.startswith("beyond the model's context") for reason in longest["skipped"].values())
    for condition in sweep[:2]:
        assert condition["truncated_requests"] == 0 and set(condition["scores"]) == {"tiny_cloze", "tiny_choice"}
        sinks = condition["sinks"]["tiny_cloze"]
        assert len(sinks["alpha_by_layer"]) == len(sinks["text_start_by_layer"]) == 2  # where the sink sits, per layer
        assert len(condition["outcomes"]["tiny_cloze"]["text_start"]) == condition["outcomes"]["tiny_cloze"]["n"]
    robustness = record["summary"]["length_robustness"]
    assert robustness["note"].startswith("prefix = 64, 256 tokens")  # the skipped length is left out, not zero


# ---- the time left in a grid ----------------------------------------------------------------


def _done(cell: GridCell, n: int, mean_tokens: float, seconds: float):
    """What the estimator reads of a finished condition (sinkbench.record.types.Condition)."""
    from types import SimpleNamespace

    return SimpleNamespace(outcomes={t: SimpleNamespace(n=n) for t in cell.tasks}, identical_to=None, wall_time_s=seconds,
                           sinks={t: SimpleNamespace(mean_tokens=mean_tokens, n_requests=n) for t in cell.tasks})


def test_the_estimate_counts_each_cell_s_tokens_and_their_attention_by_hand():
    from sinkbench.run.plan import ATTENTION_SLOWDOWN, Estimator

    estimator = Estimator(attention_ratio=0.001)
    assert estimator.remaining([]) == "time left: known once a condition has finished"
    keep = GridCell(Condition(), ("t",), BASELINE)
    # 10 documents of one 100-token request: 1000 tokens, each attending to half its own 100 on average.
    estimator.learn(keep, _done(keep, 10, 100.0, 20.0))
    unit = 1000 * (1 + ATTENTION_SLOWDOWN * 0.001 * 50)
    assert estimator.cell_work(keep) == pytest.approx(unit)
    prefixed = GridCell(Condition(prefix_length=1000), ("t",), "prefix")
    assert estimator.cell_work(prefixed) == pytest.approx(1000 * (1 + ATTENTION_SLOWDOWN * 0.001 * 1050))
    seconds = 20.0 * estimator.cell_work(prefixed) / unit  # the pace of the first condition: 20 s per unit
    assert estimator.remaining([prefixed]) == f"about {seconds:.0f} s left in the grid"


def test_the_time_left_leaves_out_twins_and_lengths_beyond_the_context():
    from types import SimpleNamespace

    from sinkbench.run.runner import still_to_compute

    suite = get_suite("quick")
    no_bos = SimpleNamespace(tokenizer=SimpleNamespace(bos_token_id=1),
                             identity=SimpleNamespace(adds_bos=False, n_layers=2, max_context=1024))
    keep = GridCell(Condition(), ("sinkbench_lambada_quick", "sinkbench_passkey_quick_2048"), BASELINE)
    drop = GridCell(Condition(bos="drop"), ("sinkbench_lambada_quick",), BOS_DROP)
    long_prefix = GridCell(Condition(prefix_length=4096), ("sinkbench_lambada_quick",), "prefix")
    baseline = SimpleNamespace(sinks={"sinkbench_lambada_quick": SimpleNamespace(max_tokens=100)})
    left = still_to_compute(no_bos, suite, [keep, drop, long_prefix], [], baseline)
    # drop feeds what keep feeds (no <bos> to drop); 2048 tokens and a 4096-token prefix exceed 1024.
    assert [(c.condition.name, c.tasks) for c in left] == [("bos=keep", ("sinkbench_lambada_quick",))]
    with_bos = SimpleNamespace(tokenizer=no_bos.tokenizer, identity=SimpleNamespace(adds_bos=True, n_layers=2, max_context=8192))
    assert [c.condition.name for c in still_to_compute(with_bos, suite, [keep, drop, long_prefix], [], baseline)] == [
        "bos=keep", "bos=drop", "bos=keep,prefix=4096"]


def test_a_task_outside_the_suites_is_judged_by_its_name_and_metrics():
    from sinkbench.grid.suite import task_spec

    suite = get_suite("quick")
    mine = task_spec(suite, "my_cloze", {"acc,none": 0.5})  # the user's own task brings its own data
    assert (mine.kind, mine.needs_data) == (ACCURACY, False)
    ours = task_spec(suite, "sinkbench_lambada", {"acc,none": 0.5})  # sinkbench's reads its data directory
    assert (ours.kind, ours.needs_data) == (ACCURACY, True)
    passkey = task_spec(suite, "sinkbench_passkey_777", {"acc,none": 1.0})
    assert (passkey.kind, passkey.needs_data, passkey.retrieval) == (RETRIEVAL, False, ("passkey", 777))
    assert task_spec(suite, "my_long_text", {"word_perplexity,none": 9.0}).needs_data is False
