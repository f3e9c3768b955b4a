"""Capture sink statistics during a model's own forward pass, reduced as each layer runs.

    with SinkProbe(model, first_k=4) as probe:
        model(input_ids)
        stats = probe.collect()          # QueryStats: every query of that pass

    with SinkProbe(model) as probe:
        probe.group(groups)              # (B, T) group id per query, -1 for none
        model(input_ids)
        stats = probe.collect()          # GroupStats: each group's mean over its queries

Grouped, memory grows with L * H * groups, never with the sequence length: each layer's
attention to the first keys is recovered from the kernel's logsumexp (sinkbench.attention) and
summed into its groups at once. Per query, memory grows with L * H * T * first_k, never T * T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sinkbench.measure import metrics
from sinkbench.measure.attention import LayerAttention, MaskEdit, attention_session

MEDIAN_POSITIONS = 512  # massive-activation median from <= 512 positions; exact up to 512 tokens


@dataclass
class QueryStats:
    """Per-query statistics of one forward pass. B batch, L layers, H heads, Tq queries, K first keys."""

    first_k_mass: torch.Tensor  # (B, L, H, Tq, K): attention on keys 0..k-1, cumulative over k
    key_mass: torch.Tensor | None  # (B, L, H, Tq, E): attention on each of the probe's `key_positions`
    learned_sink: torch.Tensor | None  # (B, L, H, Tq): mass on a learned sink logit, if the model has one
    value_norm_ratio: torch.Tensor | None  # (B, L, Hkv), when the probe measures values
    massive_ratio: torch.Tensor | None  # (B, L): top |h| / median |h| of each layer's output, when measured
    massive_position: torch.Tensor | None  # (B, L)

    @property
    def first_key(self) -> torch.Tensor:
        """(B, L, H, Tq): attention of every query to key 0."""
        return self.first_k_mass[..., 0]


@dataclass
class GroupStats:
    """Per-group means of one forward pass. G groups, L layers, H heads, K first keys."""

    first_k_mass: torch.Tensor  # (G, L, H, K): mean over the group's queries, cumulative over k
    key_mass: torch.Tensor | None  # (G, L, H, E): mean attention on each of the probe's `key_positions`
    learned_sink: torch.Tensor | None  # (G, L, H)
    n_queries: torch.Tensor  # (G,)
    value_norm_ratio: torch.Tensor | None  # (B, L, Hkv), per row, when the probe measures values
    massive_ratio: torch.Tensor | None  # (B, L), per row, when measured
    massive_position: torch.Tensor | None  # (B, L)

    @property
    def alpha(self) -> torch.Tensor:
        """(G, L, H): each group's mean attention to the first token."""
        return self.first_k_mass[..., 0]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of decoder blocks (model.layers, transformer.h, gpt_neox.layers, ...)."""
    n_layers = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"could not find a ModuleList of {n_layers} decoder layers in {type(model).__name__}")


class SinkProbe:
    """Records attention to the first keys (and to any `key_positions`) for every layer.

    values: also the value-norm ratio per layer; activations: massive activations per layer
    (both cost a little per pass, so only the sink profile asks for them).
    """

    def __init__(self, model: nn.Module, first_k: int = 4, edit: MaskEdit | None = None,
                 key_positions: tuple[int, ...] = (), values: bool = True, activations: bool = True):
        self.model = model
        self.first_k = first_k
        self.edit = edit
        self.key_positions = tuple(key_positions)
        self.values = values
        self.activations = activations
        self._attention: dict[int, tuple] = {}
        self._massive: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._groups: tuple[torch.Tensor, int] | None = None
        self._hooks: list = []
        self._session = None
        self._layer_index = {}
        # Attention calls with fewer queries are not recorded: 2 keeps a generation's prompt
        # pass (prefill) and skips its one-token decoding steps.
        self.min_queries = 1

    def group(self, groups: torch.Tensor | None, n_groups: int | None = None) -> None:
        """Reduce the next forward pass by query groups: (B, Tq) ids in [0, n_groups), -1 for none."""
        if groups is None:
            self._groups = None
            return
        self._groups = (groups, int(groups.max()) + 1 if n_groups is None else n_groups)

    # Recorder protocol, called from inside the attention function.
    def record(self, call: LayerAttention) -> None:
        if call.query.shape[2] < self.min_queries:
            return
        n_first = min(self.first_k, call.n_keys)
        columns = list(range(n_first)) + [p for p in self.key_positions if p < call.n_keys]
        probs = call.key_attention(columns)  # (B, H, Tq, k + e)
        first = probs[..., :n_first].cumsum(-1)
        if n_first < self.first_k:  # fewer keys than asked: mass beyond them is the whole row's
            first = torch.cat([first, first[..., -1:].expand(*first.shape[:-1], self.first_k - n_first)], dim=-1)
        extra = None
        if self.key_positions:
            extra = torch.zeros(*probs.shape[:-1], len(self.key_positions), device=probs.device)
            found = [i for i, p in enumerate(self.key_positions) if p < call.n_keys]
            extra[..., found] = probs[..., n_first:]
        sink = None
        if call.learned_sink_logits is not None:
            sink = torch.exp(call.learned_sink_logits.float().view(1, -1, 1) - call.lse.float())
        values = metrics.value_norm_ratio(call.value_norms()) if self.values else None
        if self._groups is not None:
            first, extra, sink = (self._reduce(part) for part in (first, extra, sink))
        self._attention[call.layer] = (first, extra, sink, values)

    def _reduce(self, per_query: torch.Tensor | None) -> torch.Tensor | None:
        """(B, H, Tq, ...) -> (G, H, ...): the sum over each group's queries."""
        if per_query is None:
            return None
        groups, n_groups = self._groups
        batch, heads, tq = per_query.shape[:3]
        flat = per_query.movedim(2, 1).reshape(batch * tq, heads, *per_query.shape[3:])  # (B*Tq, H, ...)
        ids = groups.reshape(-1).to(per_query.device)
        keep = ids >= 0
        out = torch.zeros(n_groups, heads, *per_query.shape[3:], device=per_query.device)
        return out.index_add_(0, ids[keep], flat[keep].float())

    def _on_layer_output(self, module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        self._massive[self._layer_index[id(module)]] = metrics.massive_activation(hidden, MEDIAN_POSITIONS)

    def __enter__(self) -> "SinkProbe":
        self._session = attention_session(self.model, edit=self.edit, recorder=self)
        self._session.__enter__()
        if self.activations:
            for index, layer in enumerate(decoder_layers(self.model)):
                self._layer_index[id(layer)] = index
                self._hooks.append(layer.register_forward_hook(self._on_layer_output))
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self._session.__exit__(*exc)

    def collect(self) -> QueryStats | GroupStats:
        """Stats of the forward pass(es) since the last collect(); clears them (and the grouping)."""
        if not self._attention:
            raise RuntimeError("no attention was recorded: did the model run inside the probe?")
        layers = sorted(self._attention)

        def stacked(part: int):
            items = [self._attention[layer][part] for layer in layers]
            return torch.stack(items, dim=1) if all(item is not None for item in items) else None

        first, extra, sink, values = (stacked(part) for part in range(4))
        massive_ratio = massive_position = None
        if self._massive:
            massive_ratio = torch.stack([self._massive[l][0] for l in sorted(self._massive)], dim=1)
            massive_position = torch.stack([self._massive[l][1] for l in sorted(self._massive)], dim=1)
        grouped = self._groups
        self._attention.clear()
        self._massive.clear()
        self._groups = None
        if grouped is None:
            return QueryStats(first, extra, sink, values, massive_ratio, massive_position)
        groups, n_groups = grouped
        counts = torch.bincount(groups[groups >= 0].reshape(-1).cpu(), minlength=n_groups).to(first.device)
        divide = counts.clamp(min=1).float()

        def mean(sums):
            return None if sums is None else sums / divide.view(-1, *([1] * (sums.ndim - 1)))

        return GroupStats(mean(first), mean(extra), mean(sink), counts, values, massive_ratio, massive_position)
