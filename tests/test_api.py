"""sinkbench.api on a model in memory: the profile as a typed object, a record from a grid, the model left as it was."""

import json
import re
from dataclasses import replace

import pytest
import torch

from conftest import make_model, make_tokenizer
from lm_tasks import write_tasks
from sinkbench.api import Identity, Profile, evaluate, make_grid, probe
from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import BASELINE, BOS_DROP, Condition
from sinkbench.grid.suite import GridCell, ProfilePlan
from sinkbench.measure.models import load_model, loaded_from_memory
from sinkbench.measure.profile import sink_profile
from sinkbench.record.types import Record
from sinkbench.record.validate import problems

TEXTS = ["the king and the queen went to the city and saw a big red house by the river . " * 2,
         "a small bird sat on a tree and the cat ran to the old road at night . " * 2,
         "she said that the moon was new and the sun was old , and they went home . " * 2]


@pytest.fixture
def small_profile(monkeypatch):
    """The suite's profile plan, shrunk: 100 texts and a 4k sweep are for real models."""
    import sinkbench.grid.suite as suite

    plan = ProfilePlan(T=16, n=4, sweep_lengths=(16,), sweep_texts=(2,), overmixing_sequences=2)
    monkeypatch.setitem(suite.SUITES, "quick", replace(suite.SUITES["quick"], profile=plan))


def training_state_model():
    """A tiny Llama in the middle of training, with everything a probe could disturb set to something unusual:
    eager attention, train mode but one block in eval, a frozen embedding, gradients, a user's hooks."""
    model = make_model("llama")
    model.set_attn_implementation("eager")
    model.train()
    model.model.layers[0].mlp.eval()  # a module frozen in eval inside a model in train mode
    model.model.embed_tokens.weight.requires_grad_(False)
    loss = model(torch.randint(4, 100, (2, 12), generator=torch.Generator().manual_seed(3)), labels=None).logits.sum()
    loss.backward()
    calls = []
    model.model.layers[1].register_forward_hook(lambda module, args, output: calls.append(1))
    model.register_forward_pre_hook(lambda module, args: None)
    return model, calls


def snapshot(model) -> dict:
    return {
        "training": [(name, module.training) for name, module in model.named_modules()],
        "attn": model.config._attn_implementation,
        "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()),
        "requires_grad": [(name, p.requires_grad) for name, p in model.named_parameters()],
        "grads": {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()},
        "weights": {name: p.detach().clone() for name, p in model.named_parameters()},
        "where": {(p.device, p.dtype) for p in model.parameters()},
    }


def assert_same(before: dict, after: dict) -> None:
    for key in ("training", "attn", "hooks", "requires_grad", "where"):
        assert after[key] == before[key], key
    for name, grad in before["grads"].items():
        assert (grad is None) == (after["grads"][name] is None) and (grad is None or torch.equal(grad, after["grads"][name])), name
    assert all(torch.equal(before["weights"][n], w) for n, w in after["weights"].items())


def test_probe_leaves_the_model_exactly_as_it_was():
    model, calls = training_state_model()
    before = snapshot(model)
    profile = probe(model, make_tokenizer(), TEXTS, T=16, n=3)
    assert_same(before, snapshot(model))
    assert calls, "the user's hook was not called: the probe did not run the model"
    # The model still trains: gradients flow to what required them, and only there.
    model(torch.randint(4, 100, (1, 8))).logits.sum().backward()
    assert model.model.embed_tokens.weight.grad is None and model.lm_head.weight.grad is not None
    assert isinstance(profile, Profile) and profile.n_sequences == 3 and profile.T == 16


def test_probe_of_a_model_in_memory_equals_the_profile_of_the_same_model_loaded_from_disk(tiny_model_dir):
    from_disk = load_model(str(tiny_model_dir))
    plan = ProfilePlan(T=16, n=3, sweep_lengths=(), sweep_texts=())
    expected = sink_profile(from_disk, plan, TEXTS, "texts given by the caller", progress=False)
    in_memory = make_model("llama").train()  # the same weights (seed 0), in train mode: probe() runs it in eval
    profile = probe(in_memory, make_tokenizer(), TEXTS, T=16, n=3)
    assert profile.sink_rate == {float(eps): rate for eps, rate in expected["sink_rate"].items()}
    assert profile.alpha_mean == pytest.approx(expected["alpha_mean"], abs=1e-6)
    assert profile.alpha_by_layer == pytest.approx(tuple(expected["alpha_by_layer"]), abs=1e-6)
    assert profile.first_k_mass == pytest.approx(tuple(expected["first_k_mass"]), abs=1e-6)
    torch.testing.assert_close(torch.tensor(profile.to_dict()["alpha_by_head"]), torch.tensor(expected["alpha_by_head"]))


def test_profile_types_its_main_fields_and_keeps_every_other_key():
    """A hand-made profile: one layer without a defined alpha (None), and a key this sinkbench does not know."""
    raw = {"T": 64, "n_sequences": 2, "sink_rate": {"0.3": 0.5, "0.8": 0.25}, "alpha_mean": 0.4,
           "alpha_by_layer": [0.4, None], "first_k_mass": [0.4, 0.5], "a_later_key": {"x": [1, 2]}}
    profile = Profile.from_dict(raw)
    assert profile.sink_rate[0.3] == 0.5 and profile.sink_rate[0.8] == 0.25
    assert profile.alpha_by_layer == (0.4, None) and profile.first_k_mass == (0.4, 0.5)
    assert profile.to_dict() == raw
    profile.to_dict()["a_later_key"]["x"].append(3)  # a copy: the profile does not change
    raw["alpha_mean"] = 0.9  # nor does changing what it was made from
    assert profile.to_dict()["a_later_key"] == {"x": [1, 2]} and profile.alpha_mean == 0.4
    with pytest.raises(TypeError):
        profile.sink_rate[0.3] = 1.0


@pytest.mark.slow
def test_evaluate_returns_a_valid_record_of_a_model_from_memory_and_writes_it_only_when_asked(
        small_profile, tmp_path, monkeypatch):
    model, _ = training_state_model()
    before = snapshot(model)
    tokenizer = make_tokenizer()
    tasks = write_tasks(tmp_path / "tasks")
    grid = (GridCell(Condition(), ("tiny_choice", "tiny_cloze"), BASELINE),
            GridCell(Condition(bos="drop"), ("tiny_choice", "tiny_cloze"), BOS_DROP))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    identity = Identity("my-run", family="tiny", revision="step-200", release_date="2026-01-02")
    record = evaluate(model, tokenizer, identity, grid=grid, include_path=tasks)
    assert list((tmp_path / "scratch").iterdir()) == [], "out=None left files behind"
    assert_same(before, snapshot(model))
    assert isinstance(record, Record) and problems(record.to_json()) == []
    assert record.model.source == "memory" and record.model.name == "my-run"
    assert (record.model.family, record.model.revision, record.model.release_date) == ("tiny", "step-200", "2026-01-02")
    assert record.model.weights_sha256 is None and record.model.adds_bos is True
    assert [c.name for c in record.conditions] == ["bos=keep", "bos=drop"]
    assert record.summary["bos_dependence"].value is not None
    assert record.provenance.command == ["sinkbench.api.evaluate", "my-run"]
    # Written when asked, as `sinkbench run --out` writes it; the same numbers.
    written = evaluate(model, tokenizer, identity, grid=grid, include_path=tasks, out=tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "record.json").read_text())
    assert on_disk == written.to_json()
    times = re.compile(r"wall_time_s|throughput|date")
    assert _without(on_disk["conditions"], times) == _without(record.to_json()["conditions"], times)


def _without(value, pattern):
    if isinstance(value, dict):
        return {k: _without(v, pattern) for k, v in value.items() if not pattern.search(k)}
    if isinstance(value, list):
        return [_without(v, pattern) for v in value]
    return value


@pytest.mark.slow
def test_evaluate_runs_a_synthetic_task_in_the_models_own_tokens_without_reloading_anything(small_profile):
    """The pass-key task measures its length with the model's tokenizer: here the caller's object, which
    has no folder or hub id to load it from."""
    model, tokenizer = make_model("llama"), make_tokenizer()
    grid = make_grid(tasks=["sinkbench_passkey_quick_512"], bos=["keep"], prefix=[0])
    record = evaluate(model, tokenizer, Identity("no-folder"), grid=grid, limit=2)
    assert problems(record.to_json()) == []
    assert record.conditions[0].scores["sinkbench_passkey_quick_512"]["acc"].n == 2
    lengths = record.conditions[0].sinks["sinkbench_passkey_quick_512"].max_tokens
    assert 500 <= lengths <= 513, lengths  # 512 of this tokenizer's tokens (+ <bos>), not another's


@pytest.mark.parametrize("call, message", [
    (lambda m, t: evaluate(m, t, "my-model"), "identity must be a sinkbench.api.Identity"),
    (lambda m, t: evaluate(m, t, Identity("x"), limits=3), "unknown setting(s) for evaluate: limits"),
    (lambda m, t: evaluate(m, t, Identity("x"), grid=[1]), "grid must be a tuple of GridCell"),
    (lambda m, t: Identity("x", release_date="2026-13-01"), "release_date must be YYYY-MM-DD"),
    (lambda m, t: Identity(""), "Identity needs a name"),
    (lambda m, t: probe(m, t, "one text"), "texts must be a list of strings"),
    (lambda m, t: probe(m, t, TEXTS, T=4096), "larger than the model's context"),
    (lambda m, t: loaded_from_memory(torch.nn.Linear(2, 2), t, name="x"), "expected a transformers PreTrainedModel"),
])
def test_bad_input_gets_one_line_naming_the_fix(call, message):
    with pytest.raises(SinkbenchError) as caught:
        call(make_model("llama"), make_tokenizer())
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_probe_runs_the_model_in_its_own_dtype():
    """bfloat16 weights stay bfloat16 (nothing cast), and the numbers are those of float32 up to bfloat16's precision."""
    reference = probe(make_model("llama"), make_tokenizer(), TEXTS, T=16, n=3)
    model = make_model("llama").to(torch.bfloat16)
    profile = probe(model, make_tokenizer(), TEXTS, T=16, n=3)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert profile.alpha_mean == pytest.approx(reference.alpha_mean, abs=0.01)
    assert profile.alpha_by_layer == pytest.approx(reference.alpha_by_layer, abs=0.01)
