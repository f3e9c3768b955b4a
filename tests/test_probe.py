"""The probe's numbers equal a naive computation from full attention matrices, on every architecture."""

import pytest
import torch

from conftest import ARCHS, make_model
from sinkbench.measure import metrics
from sinkbench.measure.attention import (PADDING, MaskEdit, PackedRows, SharedPrefix, attention_session, capture_prefix,
                                         packed_rows, shared_prefix)
from sinkbench.measure.probe import SinkProbe


def eager_attentions(model, ids):
    """Full (B, H, T, T) attention matrices per layer, the slow way."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        return model(ids, output_attentions=True).attentions
    finally:
        model.set_attn_implementation(previous)


@pytest.mark.parametrize("arch", ARCHS)
@torch.no_grad()
def test_probe_matches_full_attention_matrices(arch):
    model = make_model(arch)
    ids = torch.randint(4, 100, (2, 24), generator=torch.Generator().manual_seed(1))
    reference_logits = model(ids).logits
    with SinkProbe(model, first_k=3) as probe:
        logits = model(ids).logits
        stats = probe.collect()
    assert torch.equal(logits, reference_logits), "the probe changed the model's output"
    attentions = eager_attentions(model, ids)
    expected = torch.stack([a[..., :3].cumsum(-1) for a in attentions], dim=1)  # (B, L, H, T, 3)
    assert stats.first_k_mass.shape == expected.shape
    torch.testing.assert_close(stats.first_k_mass, expected, atol=1e-5, rtol=1e-5)
    naive_alpha = torch.stack([a[..., 0].mean(-1) for a in attentions], dim=1)  # (B, L, H)
    torch.testing.assert_close(metrics.alpha(stats.first_key), naive_alpha, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_gemma3_sliding_layer_sees_no_first_key_beyond_window():
    model = make_model("gemma3")  # layer 0 slides over 8 keys
    ids = torch.randint(4, 100, (1, 20))
    with SinkProbe(model) as probe:
        model(ids)
        stats = probe.collect()
    assert torch.all(stats.first_key[0, 0, :, 8:] == 0)
    assert torch.all(stats.first_key[0, 1, :, 8:] > 0)


@torch.no_grad()
def test_learned_sink_logit_rows_sum_below_one():
    model = make_model("gpt_oss")
    ids = torch.randint(4, 100, (2, 12))
    reference = model(ids).logits
    with SinkProbe(model, first_k=2) as probe:
        logits = model(ids).logits
        stats = probe.collect()
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-4)
    attentions = eager_attentions(model, ids)  # rows exclude the sink column
    expected_first = torch.stack([a[..., 0] for a in attentions], dim=1)
    torch.testing.assert_close(stats.first_key, expected_first, atol=1e-5, rtol=1e-5)
    expected_sink = torch.stack([1 - a.sum(-1) for a in attentions], dim=1)
    assert stats.learned_sink is not None
    torch.testing.assert_close(stats.learned_sink, expected_sink, atol=1e-5, rtol=1e-5)
    assert expected_sink.min() > 0


@torch.no_grad()
def test_massive_activation_hook_matches_hidden_states():
    model = make_model("llama")
    ids = torch.randint(4, 100, (2, 16))
    hidden = model(ids, output_hidden_states=True).hidden_states
    with SinkProbe(model) as probe:
        model(ids)
        stats = probe.collect()
    # hidden_states[-1] is after the final norm; layer outputs are hidden_states[1:-1] plus the last raw one
    ratio, position = metrics.massive_activation(hidden[1])
    torch.testing.assert_close(stats.massive_ratio[:, 0], ratio)
    assert torch.equal(stats.massive_position[:, 0], position)


@torch.no_grad()
def test_knockout_and_window_masks():
    model = make_model("llama")
    ids = torch.randint(4, 100, (1, 16))
    with SinkProbe(model, edit=MaskEdit(knockout_layers=frozenset({1}))) as probe:
        model(ids)
        stats = probe.collect()
    assert torch.all(stats.first_key[0, 1, :, 1:] == 0)
    assert torch.all(stats.first_key[0, 0, :, 1:] > 0)
    with SinkProbe(model, edit=MaskEdit(window=4, sink_keys=0)) as probe:
        model(ids)
        windowed = probe.collect()
    assert torch.all(windowed.first_key[..., 4:] == 0) and torch.all(windowed.first_key[..., :4] > 0)
    with SinkProbe(model, edit=MaskEdit(window=4, sink_keys=1)) as probe:
        model(ids)
        with_sink = probe.collect()
    assert torch.all(with_sink.first_key > 0)
    # window + sinks must equal eager attention under the same explicit mask
    t = torch.arange(16)
    allowed = (t[None, :] <= t[:, None]) & (((t[:, None] - t[None, :]) < 4) | (t[None, :] < 1))
    additive = torch.zeros(1, 1, 16, 16).masked_fill(~allowed, float("-inf"))
    model.set_attn_implementation("eager")
    try:
        eager = model(ids, attention_mask=additive, output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    torch.testing.assert_close(with_sink.first_key[0], torch.stack([a[0, ..., 0] for a in eager]), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_session_restores_attention_implementation():
    model = make_model("llama")
    with attention_session(model):
        assert model.config._attn_implementation == "sinkbench"
    assert model.config._attn_implementation == "sdpa"


@torch.no_grad()
def test_cached_decoding_matches_full_pass():
    """With a KV cache the queries are offset: first-key attention must still be right."""
    model = make_model("llama")
    ids = torch.randint(4, 100, (1, 20))
    with SinkProbe(model) as probe:
        model(ids)
        full = probe.collect().first_key
        out = model(ids[:, :12], use_cache=True)
        probe.collect()
        model(ids[:, 12:], past_key_values=out.past_key_values)
        tail = probe.collect().first_key
    torch.testing.assert_close(tail, full[..., 12:], atol=1e-5, rtol=1e-5)


SHARED_PREFIX_CASES = [(arch, 12, None) for arch in [*ARCHS, "gpt_oss"]] + [
    ("gemma3", 2, None),  # prefix + rows fit the sliding window: the merged two-kernel path
    ("gemma3", 12, MaskEdit(window=5, sink_keys=2)),
    ("gpt_oss", 12, MaskEdit(window=4, sink_keys=1)),
    ("llama", 12, MaskEdit(knockout_layers=frozenset({1}))),
    ("llama", 2, MaskEdit(window=3, sink_keys=0)),
]


@pytest.mark.parametrize("arch,length,edit", SHARED_PREFIX_CASES)
@torch.no_grad()
def test_shared_prefix_equals_running_the_whole_sequence(arch, length, edit):
    """Rows attending to a stored prefix get the logits and sink statistics of the full sequences."""
    model = make_model(arch)
    generator = torch.Generator().manual_seed(2)
    prefix_ids = torch.randint(4, 100, (1, length), generator=generator)
    rows = torch.randint(4, 100, (3, 5), generator=generator)
    whole = torch.cat([prefix_ids.expand(3, -1), rows], dim=1)
    with SinkProbe(model, first_k=3, edit=edit) as probe:
        reference = model(whole).logits[:, length:]
        expected = probe.collect()
        with capture_prefix() as layers:
            model(prefix_ids)  # a prefix being stored is recorded for no one
        prefix = SharedPrefix(layers, length)
        with shared_prefix(prefix):
            logits = model(rows, position_ids=prefix.position_ids(3, 5)).logits
        stats = probe.collect()
    torch.testing.assert_close(logits, reference, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stats.first_k_mass, expected.first_k_mass[..., length:, :], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats.value_norm_ratio, expected.value_norm_ratio, atol=1e-5, rtol=1e-5)
    if expected.learned_sink is not None:
        torch.testing.assert_close(stats.learned_sink, expected.learned_sink[..., length:], atol=1e-5, rtol=1e-5)


def test_shared_prefix_refuses_a_second_cache():
    model = make_model("llama")
    ids = torch.randint(4, 100, (1, 8))
    with torch.no_grad(), attention_session(model):
        with capture_prefix() as layers:
            out = model(ids[:, :4], use_cache=True)
        prefix = SharedPrefix(layers, 4)
        with shared_prefix(prefix), pytest.raises(RuntimeError, match="no other KV cache"):
            model(ids[:, 4:5], past_key_values=out.past_key_values, position_ids=prefix.position_ids(1, 1))


@torch.no_grad()
def test_grouped_stats_are_the_means_of_the_per_query_stats():
    """Query groups (what the backend and the profile ask for) reduce exactly what per-query stats hold."""
    model = make_model("gpt_oss")  # a learned sink too
    ids = torch.randint(4, 100, (2, 14), generator=torch.Generator().manual_seed(3))
    groups = torch.full((2, 14), -1)
    groups[0, 2:9], groups[0, 9:], groups[1, 5:6], groups[1, 6:] = 0, 1, 2, 3
    with SinkProbe(model, first_k=3, key_positions=(5,)) as probe:
        model(ids)
        per_query = probe.collect()
        probe.group(groups)
        model(ids)
        grouped = probe.collect()
    # Layer 0 slides over 8 keys: only queries 0..7 see key 0 there, so group (0, 9..14) has no
    # query that sees it (NaN, never 0) and group (0, 2..9) averages over its queries 2..7.
    assert per_query.layers[0].type == "sliding" and per_query.layers[0].span == 8
    assert per_query.layers[1].type == "full" and per_query.layers[0].learned_sink
    for group, (row, start, stop) in enumerate([(0, 2, 9), (0, 9, 14), (1, 5, 6), (1, 6, 14)]):
        sees = per_query.sees_first[row, :, start:stop]  # (L, q)
        assert sees[0].tolist() == [t < 8 for t in range(start, stop)] and bool(sees[1].all())
        weights = sees[:, None, :, None].float()
        expected = (per_query.first_k_mass[row, :, :, start:stop] * weights).sum(-2) / weights.sum(-2)
        torch.testing.assert_close(grouped.first_k_mass[group], expected, equal_nan=True)
        assert grouped.n_seeing_first[group].tolist() == sees.sum(-1).tolist()
        key_sees = per_query.sees_keys[row, :, start:stop, :][:, None].float()  # (L, 1, q, 1)
        expected_key = (per_query.key_mass[row, :, :, start:stop] * key_sees).sum(-2) / key_sees.sum(-2)
        torch.testing.assert_close(grouped.key_mass[group], expected_key, equal_nan=True)
        torch.testing.assert_close(grouped.learned_sink[group], per_query.learned_sink[row, :, :, start:stop].mean(-1))
        assert grouped.n_queries[group] == stop - start
    assert torch.isnan(grouped.alpha[1, 0]).all() and not torch.isnan(grouped.alpha[1, 1]).any()


@torch.no_grad()
def test_sliding_layer_alpha_counts_only_queries_that_see_the_first_token():
    """A hand-made case: a sliding layer of window 8 over 20 queries. Key 0 is seen by queries 0..7
    only, so alpha there is the mean of those 8 queries' attention to it (queries 8..19 give 0
    because they cannot see it, not because they ignore it); the full layer averages all 20."""
    model = make_model("gemma3")  # layer 0 slides over 8 keys, layer 1 is global
    ids = torch.randint(4, 100, (1, 20), generator=torch.Generator().manual_seed(5))
    attentions = eager_attentions(model, ids)
    with SinkProbe(model) as probe:
        probe.group(torch.zeros(1, 20, dtype=torch.long), 1)
        model(ids)
        grouped = probe.collect()
    sliding_by_hand = attentions[0][0, :, :8, 0].mean(-1)  # (H,) over queries 0..7
    full_by_hand = attentions[1][0, :, :, 0].mean(-1)  # (H,) over all 20
    torch.testing.assert_close(grouped.alpha[0, 0], sliding_by_hand, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grouped.alpha[0, 1], full_by_hand, atol=1e-5, rtol=1e-5)
    assert grouped.n_seeing_first[0].tolist() == [8, 20]
    # The old average over every query would have diluted the sliding layer by 8/20.
    assert not torch.allclose(grouped.alpha[0, 0], attentions[0][0, :, :, 0].mean(-1))
    # Queries 12..19 only: none sees key 0 in the sliding layer, so alpha is undefined there.
    groups = torch.full((1, 20), -1)
    groups[0, 12:] = 0
    with SinkProbe(model) as probe:
        probe.group(groups, 1)
        model(ids)
        late = probe.collect()
    assert torch.isnan(late.alpha[0, 0]).all() and late.n_seeing_first[0].tolist() == [0, 8]
    torch.testing.assert_close(late.alpha[0, 1], attentions[1][0, :, 12:, 0].mean(-1), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_attention_to_a_key_position_matches_full_attention_matrices():
    model = make_model("qwen2")
    ids = torch.randint(4, 100, (2, 12), generator=torch.Generator().manual_seed(4))
    with SinkProbe(model, key_positions=(3, 7, 40)) as probe:  # 40 is past the end: attention 0
        model(ids)
        stats = probe.collect()
    attentions = eager_attentions(model, ids)
    expected = torch.stack([a[..., [3, 7]] for a in attentions], dim=1)  # (B, L, H, T, 2)
    torch.testing.assert_close(stats.key_mass[..., :2], expected, atol=1e-5, rtol=1e-5)
    assert torch.all(stats.key_mass[..., 2] == 0)


def _packed(context: list[int], continuations: list[list[int]], start: int = 0, width: int | None = None):
    """One packed row: the context, then each continuation but its last token, at true positions."""
    ids, positions, segments = list(context), list(range(start, start + len(context))), [0] * len(context)
    offsets = []
    for number, tokens in enumerate(continuations, start=1):
        offsets.append(len(ids))
        ids += tokens
        positions += range(start + len(context), start + len(context) + len(tokens))
        segments += [number] * len(tokens)
    pad = (width or len(ids)) - len(ids)
    return ids + [0] * pad, positions + [positions[-1]] * pad, segments + [PADDING] * pad, offsets


PACKED_CASES = [(arch, None, 0) for arch in [*ARCHS, "gpt_oss"]] + [
    ("gemma3", None, 6),  # sliding window of 8 over true positions, after a shared prefix
    ("gemma3", None, 12),  # prefix keys before every query's window are left out of the kernel
    ("llama", MaskEdit(knockout_layers=frozenset({0, 1})), 0),
    ("llama", MaskEdit(knockout_layers=frozenset({1})), 5),
    ("gemma3", MaskEdit(window=4, sink_keys=1), 0),
    ("qwen2", MaskEdit(window=3, sink_keys=2), 4),
]


@pytest.mark.parametrize("arch,edit,prefix_length", PACKED_CASES)
@torch.no_grad()
def test_packed_rows_equal_running_each_sequence_alone(arch, edit, prefix_length):
    """A context with its continuations packed in one row gives every continuation the logits and
    first-key attention of its own whole sequence (tree mask from true positions and segments)."""
    model = make_model(arch)
    generator = torch.Generator().manual_seed(5)
    prefix_ids = torch.randint(4, 100, (prefix_length,), generator=generator).tolist()
    contexts = [torch.randint(4, 100, (n,), generator=generator).tolist() for n in (5, 7)]
    choices = [[torch.randint(4, 100, (n,), generator=generator).tolist() for n in lengths] for lengths in ((3, 1, 4), (2, 2))]
    rows = [_packed(c, conts, prefix_length) for c, conts in zip(contexts, choices)]
    width = max(len(r[0]) for r in rows)
    rows = [_packed(c, conts, prefix_length, width) for c, conts in zip(contexts, choices)]
    ids = torch.tensor([r[0] for r in rows])
    packing = PackedRows(torch.tensor([r[1] for r in rows]), torch.tensor([r[2] for r in rows]))
    with SinkProbe(model, first_k=3, edit=edit) as probe:
        shared = None
        if prefix_length:
            with capture_prefix() as layers:
                model(torch.tensor([prefix_ids]))
            shared = SharedPrefix(layers, prefix_length)
        with packed_rows(packing), (shared_prefix(shared) if shared else attention_session(model, edit=edit, recorder=probe)):
            logits = model(ids, position_ids=packing.positions).logits
        packed = probe.collect()
        for row, (context, conts) in enumerate(zip(contexts, choices)):
            offsets = rows[row][3]
            for tokens, offset in zip(conts, offsets):
                whole = torch.tensor([prefix_ids + context + tokens])
                alone = model(whole).logits[0, prefix_length:]
                alone_stats = probe.collect()
                n = len(context)
                # the context's own positions, then the continuation's
                torch.testing.assert_close(logits[row, :n], alone[:n], atol=1e-5, rtol=1e-4)
                torch.testing.assert_close(logits[row, offset : offset + len(tokens)], alone[n:], atol=1e-5, rtol=1e-4)
                first = alone_stats.first_k_mass[0, ..., prefix_length:, :]
                torch.testing.assert_close(packed.first_k_mass[row, ..., :n, :], first[..., :n, :], atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(packed.first_k_mass[row, ..., offset : offset + len(tokens), :],
                                           first[..., n:, :], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_a_packing_error_would_be_caught():
    """Mutation check: a continuation allowed to see another continuation's tokens changes its logits."""
    model = make_model("llama")
    context, conts = [10, 11, 12, 13], [[20, 21, 22], [30, 31]]
    ids, positions, segments, offsets = _packed(context, conts)
    wrong = PackedRows(torch.tensor([positions]), torch.zeros(1, len(ids), dtype=torch.long))  # every token "shared"
    with attention_session(model), packed_rows(wrong):
        logits = model(torch.tensor([ids]), position_ids=wrong.positions).logits
    alone = model(torch.tensor([context + conts[1]])).logits
    assert not torch.allclose(logits[0, offsets[1] : offsets[1] + 2], alone[0, 4:], atol=1e-3)
