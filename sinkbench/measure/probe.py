"""Capture sink statistics during a model's own forward pass, reduced as each layer runs.

    with SinkProbe(model, first_k=4) as probe:
        model(input_ids)
        stats = probe.collect()   # ForwardStats for that forward pass

Memory grows with L * H * T * first_k (per-query attention to the first keys), never with
L * H * T * T: the attention function recovers A[t, j] for j < first_k from the kernel's
logsumexp (see sinkbench.measure.attention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sinkbench.measure import metrics
from sinkbench.measure.attention import LayerAttention, MaskEdit, attention_session


@dataclass
class ForwardStats:
    """Per-query statistics of one forward pass. B batch, L layers, H heads, Tq queries, K first keys."""

    first_k_mass: torch.Tensor  # (B, L, H, Tq, K): attention on keys 0..k-1, cumulative over k
    learned_sink: torch.Tensor | None  # (B, L, H, Tq): mass on a learned sink logit, if the model has one
    value_norm_ratio: torch.Tensor  # (B, L, Hkv)
    massive_ratio: torch.Tensor  # (B, L): top |h| / median |h| of each layer's output
    massive_position: torch.Tensor  # (B, L)

    @property
    def first_key(self) -> torch.Tensor:
        """(B, L, H, Tq): attention of every query to key 0."""
        return self.first_k_mass[..., 0]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of decoder blocks (model.layers, transformer.h, gpt_neox.layers, ...)."""
    n_layers = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"could not find a ModuleList of {n_layers} decoder layers in {type(model).__name__}")


MEDIAN_POSITIONS = 512  # massive-activation median from <= 512 positions; exact up to 512 tokens


class SinkProbe:
    """Records first-key attention, value norms and massive activations for every layer."""

    def __init__(self, model: nn.Module, first_k: int = 4, edit: MaskEdit | None = None, activations: bool = True):
        self.model = model
        self.first_k = first_k
        self.edit = edit
        self.activations = activations
        self._attention: dict[int, tuple] = {}
        self._massive: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._hooks: list = []
        self._session = None
        self._layer_index = {}
        # Attention calls with fewer queries are not recorded: 2 keeps a generation's prompt
        # pass (prefill) and skips its one-token decoding steps.
        self.min_queries = 1

    # Recorder protocol, called from inside the attention function.
    def record(self, call: LayerAttention) -> None:
        if call.query.shape[2] < self.min_queries:
            return
        probs = call.key_attention(min(self.first_k, call.n_keys))  # (B, H, Tq, k)
        if probs.shape[-1] < self.first_k:  # fewer keys than asked: mass beyond them is 0
            probs = torch.nn.functional.pad(probs, (0, self.first_k - probs.shape[-1]))
        sink = None
        if call.learned_sink is not None:
            sink = torch.exp(call.learned_sink.float().view(1, -1, 1) - call.lse.float())
        self._attention[call.layer] = (probs.cumsum(-1), sink, metrics.value_norm_ratio(call.value_norms()))

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

    def collect(self) -> ForwardStats:
        """Stats of the forward pass(es) since the last collect(); clears them."""
        if not self._attention:
            raise RuntimeError("no attention was recorded: did the model run inside the probe?")
        layers = sorted(self._attention)
        mass = torch.stack([self._attention[l][0] for l in layers], dim=1)
        sinks = [self._attention[l][1] for l in layers]
        learned = torch.stack(sinks, dim=1) if all(s is not None for s in sinks) else None
        values = torch.stack([self._attention[l][2] for l in layers], dim=1)
        batch = mass.shape[0]
        if self._massive:
            ratio = torch.stack([self._massive[l][0] for l in sorted(self._massive)], dim=1)
            position = torch.stack([self._massive[l][1] for l in sorted(self._massive)], dim=1)
        else:
            ratio = torch.full((batch, len(layers)), float("nan"))
            position = torch.full((batch, len(layers)), -1)
        self._attention.clear()
        self._massive.clear()
        return ForwardStats(mass, learned, values, ratio, position)
