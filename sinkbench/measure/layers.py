"""What each decoder layer of a model can attend to: the layer table every sink metric is read against.

A sink metric averages a key's attention over the queries that can see that key (Gu et al.,
ICLR 2025), so it needs to know, per layer, what the layer's attention is:

* full: every later query sees the first token;
* sliding (span W): query t sees key j only when t - j < W, so only t < W see the first token;
* chunked (span C): query t sees keys of its own chunk of C tokens, so only t < C see it;
* none: no softmax attention (a linear-attention, recurrent, SSM or convolution layer of a
  hybrid model): attention to a key is undefined there, never 0.

A layer with softmax attention may also add a learned sink logit to its softmax (gpt-oss):
`learned_sink` says so; the mass it takes is reported beside the first token's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FULL, SLIDING, CHUNKED, NONE = "full", "sliding", "chunked", "none"
LAYER_TYPES = (FULL, SLIDING, CHUNKED, NONE)

# transformers' `config.layer_types` names, by what the layer's attention can see.
_FROM_CONFIG = {
    "full_attention": FULL, "hybrid": FULL, "indexed_attention": FULL, "reference_sliding_attention": FULL,
    "sliding_attention": SLIDING, "hybrid_sliding": SLIDING,
    "chunked_attention": CHUNKED,
    "linear_attention": NONE, "mamba": NONE, "conv": NONE, "mlp": NONE, "moe": NONE,
}


@dataclass(frozen=True)
class LayerKind:
    """One decoder layer: its index in the model's stack, what its attention sees, and its span."""

    index: int
    type: str  # one of LAYER_TYPES
    span: int | None = None  # window (sliding) or chunk size (chunked); None otherwise
    learned_sink: bool = False  # a learned sink logit joins the softmax (gpt-oss)

    def to_dict(self) -> dict:
        return asdict(self)

    def first_token_visible(self, position: int) -> bool:
        """Whether the query at true `position` can see the first token in this layer."""
        if self.type == NONE:
            return False
        return self.span is None or self.type == FULL or position < self.span


def text_config(config):
    """The decoder's own config (a multimodal config keeps it in `text_config`)."""
    getter = getattr(config, "get_text_config", None)
    return getter() if getter is not None else config


def layer_table(config, observed: dict[int, tuple[int | None, bool]] | None = None) -> list[LayerKind]:
    """The layer table of a model from its config, corrected by what its attention calls reported.

    observed: {layer index: (sliding window passed to the attention function, learned sink present)}
    for the layers whose softmax attention ran; when given, a layer missing from it has no softmax
    attention, and a window seen at run time wins over the config's.
    """
    config = text_config(config)
    n_layers = config.num_hidden_layers
    declared = getattr(config, "layer_types", None)
    window = getattr(config, "sliding_window", None)
    chunk = getattr(config, "attention_chunk_size", None)
    kinds = []
    for index in range(n_layers):
        if declared is not None and index < len(declared):
            kind = _FROM_CONFIG.get(declared[index], FULL)
        else:  # no per-layer types (Mistral, Starcoder2, Phi-3): a window, where set, is every layer's
            kind = SLIDING if window and getattr(config, "use_sliding_window", True) is not False else FULL
        span = window if kind == SLIDING else chunk if kind == CHUNKED else None
        learned = False
        if observed is not None:
            if index not in observed:
                kind, span = NONE, None
            else:
                seen_window, learned = observed[index]
                if seen_window is not None and kind != CHUNKED:
                    kind, span = SLIDING, int(seen_window)
                elif kind == SLIDING and seen_window is None:
                    kind, span = FULL, None
        kinds.append(LayerKind(index, kind, span, learned))
    return kinds


def visible_queries(kind: LayerKind, first_position: int, stop_position: int) -> int:
    """How many queries at true positions [first_position, stop_position) can see the first token."""
    if kind.type == NONE:
        return 0
    stop = stop_position if kind.type == FULL or kind.span is None else min(stop_position, kind.span)
    return max(0, stop - first_position)
