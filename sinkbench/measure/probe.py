"""Capture sink statistics during a model's own forward pass, reduced as each layer runs.

    with SinkProbe(model, first_k=4) as probe:
        model(input_ids)
        stats = probe.collect()          # QueryStats: every query of that pass

    with SinkProbe(model) as probe:
        probe.group(groups)              # (B, T) group id per query, -1 for none
        model(input_ids)
        stats = probe.collect()          # GroupStats: each group's mean over its queries

Grouped, memory grows with L * H * groups, never with the sequence length: each layer's
attention to the first keys is recovered from the kernel's logsumexp (sinkbench.measure.attention) and
summed into its groups at once. Per query, memory grows with L * H * T * first_k, never T * T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sinkbench.measure import metrics
from sinkbench.measure.attention import LayerAttention, MaskEdit, attention_session
from sinkbench.measure.layers import LayerKind, layer_table, text_config

MEDIAN_POSITIONS = 512  # massive-activation median from <= 512 positions; exact up to 512 tokens


@dataclass
class QueryStats:
    """Per-query statistics of one forward pass. B batch, L layers, H heads, Tq queries, K first keys.

    L counts every decoder layer; a layer without softmax attention holds NaN and sees nothing.
    """

    first_k_mass: torch.Tensor  # (B, L, H, Tq, K): attention on keys 0..k-1, cumulative over k
    key_mass: torch.Tensor | None  # (B, L, H, Tq, E): attention on each of the probe's `key_positions`
    learned_sink: torch.Tensor | None  # (B, L, H, Tq): mass on a learned sink logit, if the model has one
    value_norm_ratio: torch.Tensor | None  # (B, L, Hkv), when the probe measures values
    massive_ratio: torch.Tensor | None  # (B, L): top |h| / median |h| of each layer's output, when measured
    massive_position: torch.Tensor | None  # (B, L)
    sees_first: torch.Tensor  # (B, L, Tq) bool: the query can see key 0 in that layer (architecture, not condition)
    sees_keys: torch.Tensor | None  # (B, L, Tq, E) bool: likewise for each of `key_positions`
    layers: list[LayerKind]  # (L,) what each layer's attention sees

    @property
    def first_key(self) -> torch.Tensor:
        """(B, L, H, Tq): attention of every query to key 0."""
        return self.first_k_mass[..., 0]


@dataclass
class GroupStats:
    """Per-group means of one forward pass. G groups, L layers, H heads, K first keys.

    Attention to a key is averaged over the group's queries that can see that key in that layer
    (a sliding window, a chunk or a hybrid's recurrent layer hide it from some or all of them):
    NaN where none can.
    """

    first_k_mass: torch.Tensor  # (G, L, H, K): mean over the group's queries that see key 0, cumulative over k
    key_mass: torch.Tensor | None  # (G, L, H, E): mean over the queries that see each of `key_positions`
    learned_sink: torch.Tensor | None  # (G, L, H): mean over all the group's queries
    n_queries: torch.Tensor  # (G,)
    value_norm_ratio: torch.Tensor | None  # (B, L, Hkv), per row, when the probe measures values
    massive_ratio: torch.Tensor | None  # (B, L), per row, when measured
    massive_position: torch.Tensor | None  # (B, L)
    n_seeing_first: torch.Tensor  # (G, L): the group's queries that see key 0, per layer
    n_seeing_keys: torch.Tensor | None  # (G, L, E): likewise for each of `key_positions`
    layers: list[LayerKind]  # (L,)

    @property
    def alpha(self) -> torch.Tensor:
        """(G, L, H): each group's mean attention to the first token over the queries that see it."""
        return self.first_k_mass[..., 0]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of decoder blocks (model.layers, transformer.h, gpt_neox.layers, ...)."""
    n_layers = text_config(model.config).num_hidden_layers
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
        self._observed: dict[int, tuple[int | None, bool]] = {}  # layer -> (sliding window, learned sink)
        self.n_layers = text_config(model.config).num_hidden_layers
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
        extra_positions = [p for p in self.key_positions if p < call.n_keys]
        columns = list(range(n_first)) + extra_positions
        probs = call.key_attention(columns)  # (B, H, Tq, k + e)
        sees = call.sees([0] + extra_positions).expand(probs.shape[0], -1, -1)  # (B, Tq, 1 + e)
        first = probs[..., :n_first].cumsum(-1)
        if n_first < self.first_k:  # fewer keys than asked: mass beyond them is the whole row's
            first = torch.cat([first, first[..., -1:].expand(*first.shape[:-1], self.first_k - n_first)], dim=-1)
        extra = sees_extra = None
        if self.key_positions:
            extra = torch.zeros(*probs.shape[:-1], len(self.key_positions), device=probs.device)
            sees_extra = torch.zeros(*sees.shape[:-1], len(self.key_positions), dtype=torch.bool, device=sees.device)
            found = [i for i, p in enumerate(self.key_positions) if p < call.n_keys]
            extra[..., found] = probs[..., n_first:]
            sees_extra[..., found] = sees[..., 1:]
        sink = None
        if call.learned_sink_logits is not None:
            sink = torch.exp(call.learned_sink_logits.float().view(1, -1, 1) - call.lse.float())
        values = metrics.value_norm_ratio(call.value_norms()) if self.values else None
        sees_first = sees[..., 0]
        self._observed[call.layer] = (call.sliding_window, call.learned_sink_logits is not None)
        if self._groups is not None:
            counts_first = self._count(sees_first[..., None])[..., 0]  # (G,)
            counts_extra = self._count(sees_extra) if sees_extra is not None else None  # (G, E)
            first = self._reduce(first * sees_first[:, None, :, None])
            extra = self._reduce(extra * sees_extra[:, None]) if extra is not None else None
            sink = self._reduce(sink)
            self._attention[call.layer] = (first, extra, sink, values, counts_first, counts_extra)
        else:
            self._attention[call.layer] = (first, extra, sink, values, sees_first, sees_extra)

    def _count(self, per_query: torch.Tensor) -> torch.Tensor:
        """(B, Tq, E) bool -> (G, E): how many of each group's queries are True."""
        groups, n_groups = self._groups
        ids = groups.reshape(-1).to(per_query.device)
        keep = ids >= 0
        flat = per_query.reshape(-1, per_query.shape[-1])[keep].float()
        return torch.zeros(n_groups, per_query.shape[-1], device=per_query.device).index_add_(0, ids[keep], flat)

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

    def layers(self) -> list[LayerKind]:
        """The layer table as the attention calls so far reported it (see sinkbench.measure.layers)."""
        return layer_table(self.model.config, self._observed)

    def collect(self) -> QueryStats | GroupStats:
        """Stats of the forward pass(es) since the last collect(); clears them (and the grouping).

        Every decoder layer gets an entry: one whose softmax attention never ran (a hybrid's
        recurrent layers) holds NaN attention and no query that sees a key.
        """
        if not self._attention:
            raise RuntimeError("no attention was recorded: did the model run inside the probe?")
        recorded = self._attention
        n_layers = max(self.n_layers, max(recorded) + 1)
        some = next(iter(recorded.values()))

        def stacked(part: int, fill: float):
            """Part `part` of every layer's entry stacked on dim 1; `fill` for layers that did not run."""
            if any(entry[part] is None for entry in recorded.values()):
                return None
            blank = torch.full_like(some[part], fill)
            return torch.stack([recorded[layer][part] if layer in recorded else blank for layer in range(n_layers)], dim=1)

        nan = float("nan")
        first, extra, sink, values = (stacked(part, nan) for part in range(4))
        layers = layer_table(self.model.config, self._observed)
        massive_ratio = massive_position = None
        if self._massive:
            massive_ratio = torch.stack([self._massive[l][0] for l in sorted(self._massive)], dim=1)
            massive_position = torch.stack([self._massive[l][1] for l in sorted(self._massive)], dim=1)
        grouped = self._groups
        self._attention = {}
        self._massive.clear()
        self._groups = None
        if grouped is None:
            sees_first, sees_extra = stacked(4, False), stacked(5, False)
            return QueryStats(first, extra, sink, values, massive_ratio, massive_position, sees_first, sees_extra, layers)
        groups, n_groups = grouped
        counts = torch.bincount(groups[groups >= 0].reshape(-1).cpu(), minlength=n_groups).to(first.device)
        seeing_first, seeing_extra = stacked(4, False), stacked(5, False)  # (G, L), (G, L, E)

        def mean(sums, seen):
            """(G, L, H, X) sums over the queries that see a key, by their counts (G, L) or (G, L, X)."""
            if sums is None:
                return None
            divide = seen[:, :, None, None] if seen.ndim == 2 else seen[:, :, None, :]
            return torch.where(divide > 0, sums / divide.clamp(min=1), torch.full_like(sums, nan))

        sink_mean = None if sink is None else sink / counts.clamp(min=1).float().view(-1, 1, 1)
        return GroupStats(mean(first, seeing_first), mean(extra, seeing_extra), sink_mean, counts, values,
                          massive_ratio, massive_position, seeing_first, seeing_extra, layers)
