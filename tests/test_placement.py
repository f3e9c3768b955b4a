"""A model spread over devices (--device-map, --max-memory) measures what the model on one device measures.

On a CPU-only machine the spread is CPU and disk: a memory cap that holds the embedding and the
first decoder layer sends the second layer and the head to an offload folder, loaded per pass.
"""

import json

import pytest
import torch

from lm_tasks import write_tasks
from sinkbench.cli import main
from sinkbench.errors import SinkbenchError
from sinkbench.measure.models import input_device, load_model
from sinkbench.measure.placement import Placement, parse_max_memory
from sinkbench.measure.probe import SinkProbe

SPLIT = Placement("auto", {"cpu": "350KB"})  # the tiny Llama: embedding + layer 0 fit, the rest goes to disk


def test_max_memory_is_parsed_by_hand():
    assert parse_max_memory("0=20GiB, 1=500MiB,cpu=64GB") == {0: "20GiB", 1: "500MiB", "cpu": "64GB"}
    assert Placement.from_args(None, None) is None
    assert Placement.from_args("auto", "cpu=1GiB") == Placement("auto", {"cpu": "1GiB"})


@pytest.mark.parametrize("device_map, max_memory, device, message", [
    (None, "0=2GiB", "cpu", "add --device-map auto"),
    ("everywhere", None, "cpu", "--device-map must be one of auto"),
    ("auto", "0=2", "cpu", "'2' for 0 is not a size"),
    ("auto", "gpu0=2GiB", "cpu", "unknown device 'gpu0'"),
    ("auto", "0=2GiB,0=3GiB", "cpu", "names 0 twice"),
    ("auto", "2GiB", "cpu", "DEVICE=SIZE pairs"),
    ("auto", None, "cuda", "give one of them"),
])
def test_bad_placement_is_one_line(device_map, max_memory, device, message):
    with pytest.raises(SinkbenchError, match=message) as err:
        Placement.from_args(device_map, max_memory, device)
    assert "\n" not in str(err.value)


def test_cli_refuses_bad_placement_before_loading(capsys, tmp_path):
    code = main(["run", "--model", str(tmp_path / "absent"), "--max-memory", "cpu=1GiB", "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --device-map auto" in err


def test_a_gpu_the_machine_lacks_is_named(tiny_model_dir):
    if torch.cuda.device_count() > 3:
        pytest.skip("this machine has GPU 3")
    with pytest.raises(SinkbenchError, match="names GPU 3, but this machine has"):
        load_model(str(tiny_model_dir), placement=Placement("auto", {3: "1GiB", "cpu": "1GiB"}))


@torch.no_grad()
def test_layers_offloaded_to_disk_give_the_same_logits_and_first_key_attention(tiny_model_dir):
    whole = load_model(str(tiny_model_dir))
    spread = load_model(str(tiny_model_dir), placement=SPLIT)
    places = spread.model.hf_device_map
    assert places["model.layers.0"] == "cpu" and places["model.layers.1"] == "disk", places
    assert spread.model.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # really not in memory
    assert input_device(spread.model) == torch.device("cpu")
    ids = torch.randint(4, 100, (2, 20), generator=torch.Generator().manual_seed(0))
    results = []
    for loaded in (whole, spread):
        with SinkProbe(loaded.model, first_k=2) as probe:
            logits = loaded.model(ids.to(loaded.input_device)).logits
            results.append((logits, probe.collect()))
    (logits_a, stats_a), (logits_b, stats_b) = results
    assert torch.equal(logits_a, logits_b)
    assert torch.equal(stats_a.first_k_mass, stats_b.first_k_mass)
    assert torch.equal(stats_a.value_norm_ratio, stats_b.value_norm_ratio)
    assert whole.identity == spread.identity


@pytest.fixture
def small_profile(monkeypatch):
    """The suite's profile plan, shrunk (as in test_run.py): 100 texts and a 4k sweep are for real models."""
    from dataclasses import replace

    import sinkbench.grid.suite as suite

    plan = suite.ProfilePlan(T=16, n=4, sweep_lengths=(16,), sweep_texts=(2,), overmixing_sequences=2)
    monkeypatch.setitem(suite.SUITES, "quick", replace(suite.SUITES["quick"], profile=plan))


@pytest.mark.slow  # two whole runs of the tiny grid
def test_every_condition_of_a_run_is_the_same_with_layers_on_disk(tiny_model_dir, tmp_path, small_profile, capsys):
    tasks = write_tasks(tmp_path / "tasks")
    common = ["run", "--model", str(tiny_model_dir), "--include-path", str(tasks), "--tasks", "tiny_cloze,tiny_choice,tiny_rolling",
              "--bos", "keep,drop", "--knockout", "all", "--window", "8", "--sinks", "0,4", "--batch-size", "2"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--out", str(tmp_path / "spread"), "--device-map", "auto", "--max-memory", "cpu=350KB"]) == 0
    assert "(float32 on device map auto)" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "one").glob("cond-*.json"))
    assert len(names) == 4  # bos keep/drop x 0/4 sinks, each under window 8 and knockout (the grid is a product)
    for name in names:
        a, b = (json.loads((tmp_path / run / name).read_text()) for run in ("one", "spread"))
        assert a["outcomes"] == b["outcomes"], name
        assert a["sinks"] == b["sinks"], name
    a, b = (json.loads((tmp_path / run / "record.json").read_text())["profile"] for run in ("one", "spread"))
    assert {k: v for k, v in a.items() if "time" not in k} == {k: v for k, v in b.items() if "time" not in k}
