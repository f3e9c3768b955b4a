"""Sink metrics as pure functions of tensors. Combining across documents is the caller's job.

Definitions (see shared/DESIGN.md):
* alpha^{l,h} = mean over the queries t that can see key 0 of A^{l,h}[t, 0]  (Gu et al., ICLR 2025:
  a key's attention is averaged over the queries that can attend to it). Undefined (NaN) in a
  layer where no query can see it: a sliding window or chunk past it, or no softmax attention.
* Sink^eps = mean over the (l, h) where alpha is defined of 1[alpha^{l,h} > eps], averaged over
  sequences (Gu et al. use eps = 0.3; Barbero et al. 2025 use eps = 0.8)
* massive activation ratio = top |h| / median |h| per layer (Sun et al. 2024)
* over-mixing: relative movement of other positions' hidden states after perturbing one token
  (Barbero et al. 2025)
"""

from __future__ import annotations

import torch

from sinkbench.grid.suite import DEFAULT_EPS


def alpha(first_key_attention: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention to key 0 over the query axis (last): (..., T) -> (...).

    `valid` (broadcastable to the input, bool) says which queries count: those that can see
    key 0 (and are no padding). NaN where no query counts.
    """
    if valid is None:
        return first_key_attention.float().mean(dim=-1)
    weights = valid.to(torch.float32).expand_as(first_key_attention)
    total = (first_key_attention.float().nan_to_num(0.0) * weights).sum(-1)
    count = weights.sum(-1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def mean_defined(values: torch.Tensor, dims) -> torch.Tensor:
    """Mean over `dims` of the defined (non-NaN) entries; NaN where none is."""
    defined = ~torch.isnan(values)
    count = defined.float().sum(dim=dims)
    total = values.nan_to_num(0.0).float().sum(dim=dims)
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def sink_rate_per_sequence(alphas: torch.Tensor, eps: float) -> torch.Tensor:
    """(N, L, H) -> (N,): each sequence's share of its defined (l, h) with alpha > eps; NaN if none."""
    above = torch.where(torch.isnan(alphas), alphas, (alphas > eps).float())
    return mean_defined(above, (1, 2))


def sink_rate(alphas: torch.Tensor, eps: float) -> float:
    """Sink^eps for alphas of shape (N sequences, L, H): per sequence over its defined (l, h), then the
    mean over the sequences where any is defined (NaN if none is)."""
    if alphas.ndim != 3:
        raise ValueError(f"alphas must be (sequences, layers, heads), got shape {tuple(alphas.shape)}")
    return mean_defined(sink_rate_per_sequence(alphas, eps), 0).item()


def sink_rates(alphas: torch.Tensor, eps_values=DEFAULT_EPS) -> dict[str, float]:
    return {f"{eps:g}": sink_rate(alphas, eps) for eps in eps_values}


def first_k_mass(cumulative_mass: torch.Tensor) -> torch.Tensor:
    """Mean over queries of the attention on keys 0..k-1: (..., T, K) -> (..., K)."""
    return cumulative_mass.float().mean(dim=-2)


def listed(values: torch.Tensor, digits: int | None = None) -> list:
    """A tensor as (nested) lists for JSON, NaN (undefined) as None."""

    def clean(item):
        if isinstance(item, list):
            return [clean(x) for x in item]
        return None if item != item else (round(item, digits) if digits is not None else item)

    return clean(values.tolist())


def strongest_heads(mean_alpha: torch.Tensor, top: int = 5) -> list[tuple[int, int, float]]:
    """The `top` (layer, head, alpha) triples with the largest alpha in an (L, H) table."""
    flat = mean_alpha.flatten().nan_to_num(float("-inf"))  # undefined layers never rank
    values, index = flat.topk(min(top, int(torch.isfinite(flat).sum())))
    heads = mean_alpha.shape[1]
    return [(int(i) // heads, int(i) % heads, float(v)) for v, i in zip(values, index)]


def massive_activation(hidden: torch.Tensor, median_positions: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top |h| over median |h|, and the position holding the top, per sequence.

    hidden: (B, T, D) -> (ratio (B,), position (B,)). The top is always exact. With
    `median_positions`, the median is taken over that many evenly spaced positions (all
    hidden dimensions): an exact median costs ~10% of a forward pass at 4k tokens, and a
    median of ~300k values moves little. No copy of the whole (B, T, D) tensor is made.
    """
    hidden = hidden.detach()
    per_position_max = torch.maximum(hidden.amax(dim=-1), -hidden.amin(dim=-1)).float()  # (B, T): max |h|
    top, position = per_position_max.max(dim=-1)  # (B,)
    sample = hidden
    if median_positions is not None and hidden.shape[1] > median_positions:
        index = torch.linspace(0, hidden.shape[1] - 1, median_positions, device=hidden.device).round().long()
        sample = hidden[:, index]
    median = sample.float().abs().flatten(1).median(dim=-1).values  # (B,)
    return top / median.clamp(min=torch.finfo(torch.float32).tiny), position


def value_norm_ratio(norms: torch.Tensor) -> torch.Tensor:
    """||v_0|| over the mean ||v_j|| of the other positions, from the norms: (B, H, T) -> (B, H).

    Sink heads often pair heavy attention to key 0 with a small value vector there, so the
    sink adds little to the output (a "no-op" head).
    """
    if norms.shape[-1] < 2:
        return torch.full(norms.shape[:-1], float("nan"))
    return norms[..., 0] / norms[..., 1:].mean(dim=-1).clamp(min=torch.finfo(torch.float32).tiny)


def overmixing(reference: torch.Tensor, perturbed: torch.Tensor, position: int) -> torch.Tensor:
    """How far a one-token perturbation at `position` moved the later positions, per layer.

    reference, perturbed: hidden states (L, T, D) of the same sequence before and after the
    change. Returns (L,): mean over t > position of ||h'_t - h_t|| / ||h_t||. Causal attention
    leaves t < position untouched, and t = position moves by construction.
    """
    later = slice(position + 1, None)
    diff = (perturbed[:, later] - reference[:, later]).float().norm(dim=-1)  # (L, T')
    base = reference[:, later].float().norm(dim=-1).clamp(min=torch.finfo(torch.float32).tiny)
    return (diff / base).mean(dim=-1)


def representation_spread(hidden: torch.Tensor) -> torch.Tensor:
    """||H - mean_t H||_F / ||H||_F per layer: (L, T, D) -> (L,). Near 0 means rank collapse."""
    hidden = hidden.float()
    centred = hidden - hidden.mean(dim=-2, keepdim=True)
    return centred.flatten(1).norm(dim=-1) / hidden.flatten(1).norm(dim=-1).clamp(min=torch.finfo(torch.float32).tiny)
