"""Sink metrics over what each layer can see: the layer table, and the profile of a sliding-window model."""

import math

import pytest
import torch
import transformers as tf

from conftest import make_model, make_tokenizer
from sinkbench.measure.layers import layer_table
from sinkbench.measure.models import LoadedModel, ModelIdentity
from sinkbench.measure.profile import probe_sequences, random_token_sequences, sink_profile
from sinkbench.grid.suite import ProfilePlan


def test_layer_table_from_config_and_observed_calls():
    config = tf.Gemma3TextConfig(num_hidden_layers=4, sliding_window=8,
                                 layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"])
    table = layer_table(config)
    assert [(k.type, k.span) for k in table] == [("sliding", 8)] * 3 + [("full", None)]
    # A hybrid: layers whose softmax attention never ran have none.
    hybrid = tf.LlamaConfig(num_hidden_layers=4)
    observed = {1: (None, False), 3: (None, True)}
    kinds = layer_table(hybrid, observed)
    assert [k.type for k in kinds] == ["none", "full", "none", "full"]
    assert [k.learned_sink for k in kinds] == [False, False, False, True]
    # Mistral-style: one window for every layer, no per-layer types.
    mistral = tf.MistralConfig(num_hidden_layers=2, sliding_window=16)
    assert [(k.type, k.span) for k in layer_table(mistral)] == [("sliding", 16), ("sliding", 16)]
    chunked = tf.Llama4TextConfig(num_hidden_layers=2, attention_chunk_size=32,
                                  layer_types=["chunked_attention", "full_attention"])
    assert [(k.type, k.span) for k in layer_table(chunked)] == [("chunked", 32), ("full", None)]


def _loaded(arch: str) -> LoadedModel:
    model = make_model(arch)
    tokenizer = make_tokenizer(adds_bos=True)
    config = model.config
    identity = ModelIdentity(name=f"tiny-{arch}", source="local", family=arch, architecture=type(model).__name__,
                             revision=None, weights_sha256=None, n_parameters=1, dtype="float32",
                             n_layers=config.num_hidden_layers, n_heads=config.num_attention_heads,
                             n_kv_heads=config.num_key_value_heads, max_context=1024, bos_token="<bos>",
                             bos_token_id=2, adds_bos=True, weights=None, attention_implementation="sinkbench")
    return LoadedModel(model, tokenizer, identity)


@torch.no_grad()
def test_profile_of_a_sliding_model_counts_only_queries_that_see_the_first_token():
    """Tiny Gemma 3: layer 0 slides over 8 keys, layer 1 is global. On sequences of 20 tokens,
    layer 0's alpha is the mean of queries 0..7 (by hand from eager attention), never diluted by
    the 12 queries that cannot see token 0; the layer table says so with 8 and 20 visible queries."""
    loaded = _loaded("gemma3")
    sequences = [[2] + [(7 * i + j) % 90 + 4 for j in range(19)] for i in range(3)]
    plan = ProfilePlan(T=20, n=3, batch_size=2, sweep_lengths=(), sweep_texts=(), random_sequences=0)
    measured = probe_sequences(loaded, sequences, plan, progress=False)
    model = loaded.model
    model.set_attn_implementation("eager")
    attentions = model(torch.tensor(sequences), output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    by_hand_sliding = attentions[0][:, :, :8, 0].mean(-1)  # (N, H)
    by_hand_full = attentions[1][:, :, :, 0].mean(-1)
    torch.testing.assert_close(measured["alpha"][:, 0], by_hand_sliding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(measured["alpha"][:, 1], by_hand_full, atol=1e-5, rtol=1e-5)
    assert measured["seeing"].tolist() == [[8, 20]] * 3
    assert [(k.type, k.span) for k in measured["layers"]] == [("sliding", 8), ("full", None)]


@torch.no_grad()
def test_profile_records_layers_types_and_random_tokens():
    loaded = _loaded("gemma3")
    texts = [" ".join(["the cat sat on the red road and saw a big dog"] * 4)] * 4
    plan = ProfilePlan(T=24, n=4, batch_size=4, sweep_lengths=(), sweep_texts=(), overmixing_sequences=1,
                       random_sequences=6, random_T=12)
    profile = sink_profile(loaded, plan, texts, "test", progress=False)
    assert [layer["type"] for layer in profile["layers"]] == ["sliding", "full"]
    assert [layer["queries_seeing_first"] for layer in profile["layers"]] == [8, 24]
    assert set(profile["alpha_mean_by_type"]) == {"sliding", "full"}
    # The mean over layers of a text is the mean of its two layers' alphas (both defined at T=24).
    per_text = profile["per_text"]["alpha_mean"]
    assert per_text[0] == pytest.approx(sum(profile["alpha_by_layer"]) / 2, abs=1e-5)
    random = profile["random_tokens"]
    assert random["T"] == 12 and random["n_sequences"] == 6 and len(random["per_text"]["alpha_mean"]) == 6
    assert 0 <= random["sink_rate"]["0.3"] <= 1 and not math.isnan(random["alpha_mean"])


def test_random_tokens_are_seeded_uniform_and_never_special():
    loaded = _loaded("llama")
    plan = ProfilePlan(T=1024, n=1, random_sequences=50, seed=3)  # random_T stays Gu et al.'s 64
    sequences = random_token_sequences(loaded, plan)
    assert len(sequences) == 50 and all(len(s) == 64 for s in sequences)
    assert all(s[0] == 2 for s in sequences)  # the plan's head: <bos> kept
    special = set(loaded.tokenizer.all_special_ids)
    drawn = [t for s in sequences for t in s[1:]]
    assert not special & set(drawn)
    assert sequences == random_token_sequences(loaded, plan)  # seeded
    assert sequences != random_token_sequences(loaded, ProfilePlan(T=1024, n=1, random_sequences=50, seed=4))
    # Uniform over the tokenizer's non-special ids (its vocabulary, not the model's padded embedding
    # table): 50 x 63 draws touch every one of them.
    assert set(drawn) == set(range(len(loaded.tokenizer))) - special
