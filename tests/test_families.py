"""Every family sinkbench claims: under sinkbench's attention, logits and first-key attention equal eager attention's.

Tiny random-weight models (tests/families.py) with peaked attention; hybrids are compared on
their softmax-attention layers only. Families whose attention bypasses transformers' attention
interface are refused in one line, before any weights load.
"""

import json

import pytest
import torch

from conftest import make_tokenizer
from families import FAMILIES, HYBRID, REFUSED, make_family_model, tiny_config
from sinkbench.errors import SinkbenchError
from sinkbench.measure.attention import attention_session
from sinkbench.measure.models import attention_implementation, attention_route, load_model
from sinkbench.measure.probe import SinkProbe, decoder_layers

T = 24


def attention_modules(model) -> dict[int, tuple[int, torch.nn.Module]]:
    """layer_idx -> (index in the decoder stack, module) of every module that calls the attention interface."""
    found = {}
    for index, block in enumerate(decoder_layers(model)):
        for module in block.modules():
            if hasattr(module, "layer_idx") and isinstance(getattr(module, "scaling", None), float):
                found[module.layer_idx] = (index, module)
    return found


@pytest.mark.slow  # ~30 families x about 0.5 s
@pytest.mark.parametrize("model_type", sorted(FAMILIES))
@torch.no_grad()
def test_family_matches_eager_attention(model_type):
    model = make_family_model(model_type)
    ids = torch.randint(4, 100, (2, T), generator=torch.Generator().manual_seed(1))
    assert attention_route(model) in ("sdpa", "eager")
    model.set_attn_implementation("eager")
    eager = model(ids, output_attentions=True)
    attentions = [a for a in eager.attentions if a is not None]  # hybrids: softmax layers only
    with SinkProbe(model, first_k=1, values=False, activations=False) as probe:
        assert attention_route(model) == "sinkbench"
        logits = model(ids).logits
        stats = probe.collect()
    assert attention_route(model) == "eager"  # the session restored what was there
    torch.testing.assert_close(logits, eager.logits, atol=2e-4, rtol=1e-4)

    # The probe keys layers by layer_idx: it must be the block's index in the decoder stack.
    modules = attention_modules(model)
    assert all(index == layer for layer, (index, _) in modules.items()), model_type
    # Every decoder layer keeps its depth: the softmax layers hold their attention, the others NaN and type none.
    n_layers = stats.first_key.shape[1]
    layers = sorted(modules)
    assert len(attentions) == len(modules) and n_layers == model.config.get_text_config().num_hidden_layers
    if model_type in HYBRID:
        assert len(modules) < n_layers
        others = [i for i in range(n_layers) if i not in modules]
        assert torch.isnan(stats.first_key[:, others]).all() and not stats.sees_first[:, others].any()
        assert all(stats.layers[i].type == "none" for i in others)
    expected = torch.stack([a[..., 0] for a in attentions], dim=1)  # (B, L_attention, H, T)
    torch.testing.assert_close(stats.first_key[:, layers], expected, atol=1e-5, rtol=1e-4)

    # Peaked: on average a query's top key takes over half of its attention (uniform over up to 24
    # keys would give <= 1/2 only for the first two queries).
    top = torch.stack([a[..., 4:, :].max(-1).values.mean() for a in attentions])
    assert top.min() > 0.5, f"{model_type}: attention too flat to test masks and scales ({top.tolist()})"


@pytest.mark.parametrize("model_type", sorted(REFUSED))
def test_family_outside_the_attention_interface_is_refused_before_loading(model_type):
    config = tiny_config(model_type)
    with pytest.raises(SinkbenchError) as err:
        attention_implementation(config)
    message = str(err.value)
    assert "\n" not in message and f"model_type {model_type}" in message and "attention interface" in message


@pytest.mark.parametrize("model_type", sorted(REFUSED))
def test_load_model_refuses_a_saved_folder_of_such_a_family(model_type, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    folder = tmp_path / model_type
    folder.mkdir()
    tiny_config(model_type).save_pretrained(folder)  # a config and no weights: loading would fail anyway
    make_tokenizer().save_pretrained(folder)

    def loads_weights(*args, **kwargs):
        raise AssertionError("weights were loaded before the refusal")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", loads_weights)
    with pytest.raises(SinkbenchError, match="cannot be measured"):
        load_model(str(folder))


@pytest.mark.parametrize("model_type, implementation", [("gpt_oss", "eager"), ("gemma2", "eager"), ("llama", "sdpa")])
@torch.no_grad()
def test_load_model_picks_an_attention_the_family_supports(model_type, implementation, tmp_path):
    folder = tmp_path / model_type
    make_family_model(model_type).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    loaded = load_model(str(folder))
    assert loaded.attention == implementation == attention_route(loaded.model)
    ids = torch.randint(4, 100, (1, 12))
    with SinkProbe(loaded.model, first_k=1, values=False, activations=False) as probe:
        loaded.model(ids)
        assert probe.collect().first_key.shape == (1, 2, 4, 12)


def test_mla_value_heads_of_another_size_through_every_path():
    """DeepSeek-V3's values (8) are narrower than its queries and keys (24): a shared prefix and
    packed rows must give what one plain pass gives (the CPU flash kernel refuses unequal sizes)."""
    from sinkbench.measure.attention import SharedPrefix, capture_prefix, shared_prefix

    model = make_family_model("deepseek_v3")
    ids = torch.randint(4, 100, (2, 20), generator=torch.Generator().manual_seed(2))
    ids[1, :8] = ids[0, :8]
    with torch.no_grad():
        whole = model(ids).logits
        with attention_session(model):
            with capture_prefix() as layers:
                model(ids[:1, :8])
            prefix = SharedPrefix(layers, 8)
            with shared_prefix(prefix):
                rest = model(ids[:, 8:], position_ids=prefix.position_ids(2, 12)).logits
    torch.testing.assert_close(rest, whole[:, 8:], atol=2e-4, rtol=1e-4)


def test_chunked_layers_stay_exact_under_a_shared_prefix_and_knockout():
    """Llama 4's chunked layers get their chunks only from transformers' mask, built from positions
    0..T-1: under a shared prefix the chunks must come from the true positions."""
    from sinkbench.measure.attention import MaskEdit, SharedPrefix, capture_prefix, shared_prefix

    model = make_family_model("llama4_text")
    assert model.config.layer_types[0] == "chunked_attention"
    ids = torch.randint(4, 100, (1, 22), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = model(ids).logits
        with attention_session(model):
            with capture_prefix() as layers:
                model(ids[:, :5])  # the prefix ends inside the first chunk of 8
            prefix = SharedPrefix(layers, 5)
            with shared_prefix(prefix):
                rest = model(ids[:, 5:], position_ids=prefix.position_ids(1, 17)).logits
        torch.testing.assert_close(rest, whole[:, 5:], atol=2e-4, rtol=1e-4)
        # knockout in layer 1 (full): eager with the same mask edit by hand is the reference
        edit = MaskEdit(knockout_layers=frozenset({0}))
        with attention_session(model, edit=edit):
            knocked = model(ids).logits
        assert not torch.allclose(knocked, whole, atol=1e-3)  # key 0 mattered in the chunked layer
        q = torch.arange(22)
        # the knockout mask on top of the chunked causal mask, applied through eager attention
        chunk = (q[None, :] // 8 == q[:, None] // 8) & (q[None, :] <= q[:, None]) & ~((q[None, :] == 0) & (q[:, None] > 0))
        full = q[None, :] <= q[:, None]
        masks = {"chunked_attention": _additive(chunk), "full_attention": _additive(full)}
        model.set_attn_implementation("eager")
        reference = model(ids, attention_mask=masks).logits
    torch.testing.assert_close(knocked, reference, atol=2e-4, rtol=1e-4)


def _additive(allowed: torch.Tensor) -> torch.Tensor:
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))[None, None]



def test_query_scaling_by_row_index_is_refused_where_it_would_differ():
    """Llama 4's NoPE layers scale queries by log(1 + floor((row + 1) / floor_scale)): under a shared
    prefix the row index is not the position, so the pass would measure another model."""
    from sinkbench.measure.attention import SharedPrefix, capture_prefix, shared_prefix

    model = make_family_model("llama4_text")
    for module in model.modules():
        if hasattr(module, "floor_scale"):
            module.floor_scale = 4  # 8192 in the real model: a 4-token prefix already moves the scale
    ids = torch.randint(4, 100, (1, 10))
    with torch.no_grad(), attention_session(model):
        with capture_prefix() as layers:
            model(ids[:, :4])
        prefix = SharedPrefix(layers, 4)
        with shared_prefix(prefix), pytest.raises(SinkbenchError, match="scales queries by their row index"):
            model(ids[:, 4:], position_ids=prefix.position_ids(1, 6))


@pytest.fixture
def small_profile(monkeypatch):
    """The suite's profile plan, shrunk (as in test_run.py): 100 texts and a 4k sweep are for real models."""
    from dataclasses import replace

    import sinkbench.grid.suite as suite

    plan = suite.ProfilePlan(T=16, n=4, sweep_lengths=(16,), sweep_texts=(2,), overmixing_sequences=2)
    monkeypatch.setitem(suite.SUITES, "quick", replace(suite.SUITES["quick"], profile=plan))


@pytest.mark.slow  # a whole grid per family, about 20 s each
@pytest.mark.needs_data  # the stress prefix is cut from War and Peace
@pytest.mark.parametrize("model_type", ["gpt_oss", "gemma2", "deepseek_v3", "qwen3_next"])
def test_a_whole_run_on_a_saved_checkpoint_of_the_family(model_type, tmp_path, small_profile):
    """Learned sinks, softcap + sliding windows, MLA, a hybrid: every condition of a custom grid runs
    (<bos> dropped, knockout, a shared prefix, window + sinks, and all of them at once) into a valid record."""
    from lm_tasks import write_tasks
    from sinkbench.grid.conditions import Condition
    from sinkbench.grid.conditions import role_of
    from sinkbench.grid.suite import GridCell
    from sinkbench.record.validate import problems
    from sinkbench.run.runner import RunConfig, run

    folder = tmp_path / model_type
    make_family_model(model_type).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    conditions = [Condition(), Condition(bos="drop"), Condition(knockout="all"), Condition(prefix_length=16),
                  Condition(window=8, sink_keys=4), Condition(bos="drop", prefix_length=16, window=8, sink_keys=4, knockout="0")]
    cells = tuple(GridCell(c, ("tiny_choice", "tiny_rolling"), role_of(c)) for c in conditions)
    config = RunConfig(model=str(folder), out=tmp_path / "out", cells=cells, include_path=write_tasks(tmp_path / "tasks"),
                       batch_size=2, limit=2)
    record = json.loads(run(config, log=lambda m: None).read_text())
    assert problems(record) == []
    assert [c["name"] for c in record["conditions"]] == [c.name for c in conditions]
    for condition in record["conditions"]:
        assert condition["sinks"]["tiny_choice"]["n_requests"] == 5, condition["name"]  # 3 + 2 choices, none skipped
        assert condition["scores"]["tiny_rolling"], condition["name"]
    assert record["model"]["architecture"] == type(make_family_model(model_type)).__name__
    # Every decoder layer at its true depth; alpha is null exactly where there is no softmax attention.
    layers, by_layer = record["profile"]["layers"], record["profile"]["alpha_by_layer"]
    assert [layer["index"] for layer in layers] == list(range(record["model"]["n_layers"])) and len(by_layer) == len(layers)
    assert all((value is None) == (layer["type"] == "none") for layer, value in zip(layers, by_layer))
    if model_type == "qwen3_next":
        assert {"none", "full"} <= {layer["type"] for layer in layers}
    if model_type == "gpt_oss":
        assert all(layer["learned_sink"] for layer in layers)
