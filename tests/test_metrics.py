"""Metric functions on hand-built cases with known answers."""

import math

import pytest
import torch

from sinkbench.measure import metrics


def causal_uniform(T):
    """Each query spreads its attention evenly over the keys it can see."""
    mask = torch.ones(T, T).tril()
    return mask / mask.sum(-1, keepdim=True)


def test_all_mass_on_first_key_gives_alpha_one_and_full_sink_rate():
    pattern = torch.zeros(8, 8)
    pattern[:, 0] = 1
    first_key = pattern[:, 0].expand(3, 2, 4, 8)  # (N, L, H, T)
    alphas = metrics.alpha(first_key)
    assert torch.all(alphas == 1)
    assert metrics.sink_rates(alphas) == {"0.3": 1.0, "0.5": 1.0, "0.8": 1.0}


def test_uniform_causal_attention_alpha_is_mean_of_reciprocals():
    T = 6
    alpha = metrics.alpha(causal_uniform(T)[:, 0])
    assert alpha.item() == pytest.approx(sum(1 / (t + 1) for t in range(T)) / T)


def test_sink_rate_counts_heads_over_eps_then_averages_sequences():
    alphas = torch.tensor([[[0.9, 0.1], [0.6, 0.2]], [[0.4, 0.4], [0.4, 0.4]]])  # (2 seqs, 2 layers, 2 heads)
    assert metrics.sink_rate(alphas, 0.5) == pytest.approx((2 / 4 + 0 / 4) / 2)
    assert metrics.sink_rate(alphas, 0.3) == pytest.approx((2 / 4 + 4 / 4) / 2)
    assert metrics.sink_rate(alphas, 0.8) == pytest.approx((1 / 4) / 2)
    with pytest.raises(ValueError, match="sequences, layers, heads"):
        metrics.sink_rate(alphas[0], 0.5)


def test_alpha_ignores_invalid_query_rows():
    first_key = torch.tensor([[1.0, 0.5, 0.0, 0.0]])
    valid = torch.tensor([[True, True, False, False]])
    assert metrics.alpha(first_key, valid).item() == pytest.approx(0.75)


def test_first_k_mass_and_strongest_heads():
    cumulative = causal_uniform(4)[:, :2].cumsum(-1)  # (T, K)
    mass = metrics.first_k_mass(cumulative)
    assert mass.tolist() == pytest.approx([(1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, (1 + 1 + 2 / 3 + 2 / 4) / 4])
    table = torch.tensor([[0.1, 0.9], [0.5, 0.2]])
    assert metrics.strongest_heads(table, top=2) == [(0, 1, pytest.approx(0.9)), (1, 0, pytest.approx(0.5))]


def test_massive_activation_finds_the_outlier_position():
    hidden = torch.ones(1, 5, 4)
    hidden[0, 2, 1] = -300.0
    ratio, position = metrics.massive_activation(hidden)
    assert ratio.item() == pytest.approx(300.0)
    assert position.item() == 2


def test_value_norm_ratio():
    value = torch.ones(1, 1, 3, 2)
    value[0, 0, 0] = 0.1  # small first value: a no-op sink
    assert metrics.value_norm_ratio(value.norm(dim=-1)).item() == pytest.approx(0.1)


def test_overmixing_measures_only_later_positions():
    reference = torch.ones(2, 5, 3)
    perturbed = reference.clone()
    perturbed[1, 3:] *= 1.5  # layer 1 moved positions 3, 4 by half their norm
    perturbed[1, 0] = 99.0  # before the perturbed position: must be ignored
    change = metrics.overmixing(reference, perturbed, position=2)
    assert change.tolist() == pytest.approx([0.0, 0.5])


def test_representation_spread_zero_when_all_tokens_equal():
    collapsed = torch.ones(1, 4, 3)
    spread_out = torch.eye(3).unsqueeze(0)
    assert metrics.representation_spread(collapsed).item() == pytest.approx(0.0)
    assert metrics.representation_spread(spread_out).item() > 0.5


def test_massive_activation_median_sample_is_close_and_top_exact():
    torch.manual_seed(0)
    hidden = torch.randn(1, 4096, 64)
    hidden[0, 3000, 5] = 500.0
    exact_ratio, exact_position = metrics.massive_activation(hidden)
    ratio, position = metrics.massive_activation(hidden, median_positions=512)
    assert position.item() == exact_position.item() == 3000
    assert ratio.item() == pytest.approx(exact_ratio.item(), rel=0.02)
    short = torch.randn(1, 100, 8)
    assert torch.equal(metrics.massive_activation(short, 512)[0], metrics.massive_activation(short)[0])


def test_undefined_layers_are_left_out_of_every_average():
    """Hand-made: 2 sequences, 3 layers, 2 heads; layer 2 has no softmax attention (NaN), and in
    sequence 1 layer 1 is a sliding layer no query of it could see the first token through."""
    nan = float("nan")
    alphas = torch.tensor([
        [[0.9, 0.1], [0.5, 0.2], [nan, nan]],
        [[0.4, 0.35], [nan, nan], [nan, nan]],
    ])
    # Sequence 0: 4 defined pairs, above 0.3: 0.9, 0.5 -> 2/4; sequence 1: 2 defined, both above -> 1.
    assert metrics.sink_rate(alphas, 0.3) == pytest.approx((0.5 + 1.0) / 2)
    # Above 0.8: only 0.9 -> 1/4 and 0/2.
    assert metrics.sink_rate(alphas, 0.8) == pytest.approx(0.125)
    # A sequence's mean alpha over its defined pairs: (0.9 + 0.1 + 0.5 + 0.2) / 4 and (0.4 + 0.35) / 2.
    per_sequence = metrics.mean_defined(alphas, (1, 2))
    torch.testing.assert_close(per_sequence, torch.tensor([0.425, 0.375]))
    # A layer's mean over the sequences where it is defined; null where it is nowhere.
    by_layer = metrics.mean_defined(alphas, (0, 2))
    assert by_layer[0].item() == pytest.approx((0.9 + 0.1 + 0.4 + 0.35) / 4)
    assert by_layer[1].item() == pytest.approx(0.35)
    assert metrics.listed(by_layer, 3)[2] is None
    # Nothing defined anywhere: NaN, never 0.
    assert math.isnan(metrics.sink_rate(torch.full((1, 2, 2), nan), 0.3))
    # Undefined heads never rank among the strongest.
    # Means over sequences: (0,0) 0.65, (0,1) 0.225, (1,0) 0.5, (1,1) 0.2, layer 2 undefined.
    strongest = metrics.strongest_heads(metrics.mean_defined(alphas, 0), top=5)
    assert [(l, h) for l, h, _ in strongest] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert strongest[0][2] == pytest.approx(0.65)


def test_alpha_with_no_visible_query_is_undefined():
    first_key = torch.tensor([[0.6, 0.2, 0.0, 0.0]])
    sees = torch.tensor([[True, True, False, False]])
    assert metrics.alpha(first_key, sees).item() == pytest.approx(0.4)  # over the two queries that see key 0
    assert math.isnan(metrics.alpha(first_key, torch.zeros_like(sees)).item())
