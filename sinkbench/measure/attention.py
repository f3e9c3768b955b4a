"""One attention function for every architecture: SDPA's kernel plus first-key statistics and condition masks.

transformers 5.x routes the attention of Llama, Gemma 3, Qwen2, Mistral, GPT-2, GPT-NeoX and
the rest through `ALL_ATTENTION_FUNCTIONS`. We register `sinkbench` there. It computes the
layer's output with a fused kernel that also returns the softmax normaliser (logsumexp), so the
attention of every query to a few keys costs O(T * k * head_dim) to recover, never an O(T * T)
weight matrix. It also applies the `window`/`sinks`/`knockout` masks of a condition.

Two ways of sharing work between sequences are handled here:
* a *shared prefix* (`shared_prefix()`): keys and values of tokens that every row of a batch
  starts with (the stress prefix), stored once per layer; each batch attends to them as one
  grouped kernel call merged with the rows' own attention by logsumexp. Nothing is copied per row.
* *packed rows* (`packed_rows()`): one row holds a context and several continuations after it
  (the choices of a multiple-choice question), each continuation seeing the context and itself
  only, at its own true positions. The mask is built here from true positions and segments, so
  sliding windows and condition masks apply to what each sequence really is.

The function reads what to do from a module-level session set by `attention_session()`:
outside a session it behaves exactly like SDPA.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition, knockout_layers

ATTENTION_NAME = "sinkbench"
QUERY_CHUNK = 1024  # query rows per block in the fallback path: B*H*1024*T floats at a time
PADDING = -1  # the segment of padded positions in packed rows


@dataclass(frozen=True)
class MaskEdit:
    """Attention restrictions of a condition, applied on top of the model's own mask.

    window/sink_keys (StreamingLLM): query t sees key j only if j < sink_keys or t - j < window.
    knockout: in the listed layers, no query but the first sees key 0.
    """

    window: int | None = None
    sink_keys: int = 0
    knockout_layers: frozenset[int] = frozenset()

    @classmethod
    def for_condition(cls, condition: Condition, n_layers: int) -> "MaskEdit | None":
        if condition.window is None and condition.knockout is None:
            return None
        layers = knockout_layers(condition.knockout, n_layers) if condition.knockout else frozenset()
        return cls(window=condition.window, sink_keys=condition.sink_keys, knockout_layers=layers)

    def touches(self, layer: int | None) -> bool:
        return self.window is not None or (layer is not None and layer in self.knockout_layers)

    def allowed(self, layer: int | None, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Boolean (..., Tq, Tk) mask from true positions (..., Tq) and (..., Tk), causality included."""
        q, k = q_pos[..., :, None], k_pos[..., None, :]
        allowed = k <= q
        if self.window is not None:
            allowed = allowed & (((q - k) < self.window) | (k < self.sink_keys))
        if layer is not None and layer in self.knockout_layers:
            # Query 0 keeps key 0: a row with no key at all has no softmax.
            allowed = allowed & ~((k == 0) & (q > 0))
        return allowed


@dataclass
class PrefixLayer:
    """One layer's keys and values of a shared prefix: (1, Hkv, P, d) each."""

    key: torch.Tensor
    value: torch.Tensor
    value_norms: torch.Tensor = field(init=False)  # (1, Hkv, P)

    def __post_init__(self):
        self.value_norms = self.value.float().norm(dim=-1)

    @property
    def length(self) -> int:
        return self.key.shape[2]


@dataclass
class SharedPrefix:
    """Keys and values of a token prefix that every sequence of a batch starts with.

    Made once by `capture_prefix()`; then, inside `shared_prefix()`, a forward pass over the
    tokens after the prefix (with `position_ids` shifted by `length`) is exact: every query
    attends to the stored prefix keys and to its own row's keys, as if the whole sequence ran.
    """

    layers: dict[int, PrefixLayer]
    length: int

    def position_ids(self, batch: int, length: int, device=None) -> torch.Tensor:
        """Positions of `length` tokens that follow the prefix, for every row: (batch, length)."""
        return torch.arange(self.length, self.length + length, device=device).expand(batch, -1)


@dataclass(frozen=True)
class PackedRows:
    """Where each token of a batch of packed rows really is (see the module docstring).

    positions: (B, T) true position of every token (a shared prefix, if any, comes before them).
    segments: (B, T) 0 for the part every sequence of the row shares (the context), k >= 1 for
    the k-th continuation, PADDING for padding. A query sees a key when the key is no later in
    the row, and is shared or of its own segment.
    """

    positions: torch.Tensor
    segments: torch.Tensor


@dataclass
class LayerAttention:
    """What one attention call hands to a recorder. Shapes: B batch, H query heads, Hkv key heads.

    The keys a query may see are `prefix.key` (a shared stress prefix, if any) followed by `key`;
    key column j of `mask` is the token at true position j of the sequence.
    """

    layer: int | None
    query: torch.Tensor  # (B, H, Tq, d), after RoPE and norms
    key: torch.Tensor  # (B, Hkv, Tk, d), as the layer produced it (Hkv < H under GQA)
    value: torch.Tensor  # (B, Hkv, Tk, d)
    mask: torch.Tensor | None  # additive (B|1, 1|H, Tq, P + Tk) over all keys; None means plain causal
    lse: torch.Tensor  # (B, H, Tq) logsumexp of each query's scores (learned sink included)
    scale: float
    softcap: float | None
    learned_sink_logits: torch.Tensor | None  # (H,) sink logits (gpt-oss), or None
    prefix: PrefixLayer | None = None  # shared keys before `key`, seen by every row
    # What the architecture lets each query see (causality, the layer's sliding window or chunk,
    # padding, packed segments), without a condition's mask edit: additive like `mask`, or None
    # for plain causal. A sink metric averages a key's attention over the queries that can see it.
    architecture_mask: torch.Tensor | None = None
    sliding_window: int | None = None  # the layer's window as the model passed it, None for a full layer

    def sees(self, columns: list[int]) -> torch.Tensor:
        """Whether each query can see the keys at `columns` under the architecture: (B|1, Tq, len(columns)) bool."""
        index = torch.tensor(columns, device=self.query.device)
        if self.architecture_mask is None:
            tq = self.query.shape[2]
            q_pos = torch.arange(tq, device=index.device) + (self.n_keys - tq)
            return (index[None, :] <= q_pos[:, None])[None]
        chosen = self.architecture_mask.index_select(-1, index)[:, 0]  # one head: masks are per row, not per head
        if chosen.dtype == torch.bool:
            return chosen
        return chosen > torch.finfo(chosen.dtype).min / 2  # -inf, or the dtype's minimum some models add

    @property
    def n_keys(self) -> int:
        return self.key.shape[2] + (self.prefix.length if self.prefix is not None else 0)

    def keys_at(self, columns: list[int]) -> torch.Tensor:
        """Keys at the given key columns of the whole sequence: (B, Hkv, len(columns), d)."""
        length = self.prefix.length if self.prefix is not None else 0
        batch = self.key.shape[0]
        parts = []
        for column in columns:
            if column < length:
                parts.append(self.prefix.key[:, :, column : column + 1].expand(batch, -1, -1, -1))
            else:
                parts.append(self.key[:, :, column - length : column - length + 1])
        return torch.cat(parts, dim=2)

    def key_logits(self, columns: list[int]) -> torch.Tensor:
        """Masked scores of every query against the keys at `columns`: (B, H, Tq, len(columns)), float32."""
        keys = _repeat_heads(self.keys_at(columns), self.query.shape[1])
        logits = torch.matmul(self.query, keys.transpose(-1, -2)).float() * self.scale
        if self.softcap is not None:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        index = torch.tensor(columns, device=logits.device)
        if self.mask is not None:
            logits = logits + self.mask.index_select(-1, index).float()
        else:
            tq = self.query.shape[2]
            q_pos = torch.arange(tq, device=logits.device) + (self.n_keys - tq)
            logits = logits.masked_fill(index[None, :] > q_pos[:, None], float("-inf"))
        return logits

    def key_attention(self, columns: list[int]) -> torch.Tensor:
        """Attention weights A[t, j] for the keys at `columns`: (B, H, Tq, len(columns)).
        A key a query may not see gives 0."""
        probs = torch.exp(self.key_logits(columns) - self.lse.float().unsqueeze(-1))
        return torch.nan_to_num(probs, nan=0.0)

    def value_norms(self) -> torch.Tensor:
        """||v_j|| of every key, prefix included: (B, Hkv, P + Tk)."""
        own = self.value.detach().float().norm(dim=-1)
        if self.prefix is None:
            return own
        return torch.cat([self.prefix.value_norms.expand(own.shape[0], -1, -1), own], dim=-1)


class Recorder(Protocol):
    def record(self, call: LayerAttention) -> None: ...


class _Session:
    edit: MaskEdit | None = None
    recorder: Recorder | None = None
    prefix: SharedPrefix | None = None
    packed: PackedRows | None = None
    capture: dict[int, PrefixLayer] | None = None


_SESSION = _Session()


def _repeat_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """Key/value heads repeated to the query heads (GQA): head h of the query uses kv head h // n_rep."""
    n_rep = heads // tensor.shape[1]
    return tensor if n_rep == 1 else tensor.repeat_interleave(n_rep, dim=1)


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean allowed-mask as 0 / -inf (masks already additive pass through, cast)."""
    if mask is None or mask.dtype != torch.bool:
        return None if mask is None else mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def _attend_chunked(q, k, v, mask, scale, causal, softcap):
    """Reference path for any device/dtype/softcap: exact softmax in query blocks."""
    tq, tk = q.shape[2], k.shape[2]
    outs, lses = [], []
    for start in range(0, tq, QUERY_CHUNK):
        stop = min(start + QUERY_CHUNK, tq)
        scores = torch.matmul(q[:, :, start:stop], k.transpose(-1, -2)).float() * scale  # (B, H, C, Tk)
        if softcap is not None:
            scores = softcap * torch.tanh(scores / softcap)
        if mask is not None:
            scores = scores + mask[:, :, start:stop].float()
        elif causal:
            q_pos = torch.arange(start, stop, device=q.device) + (tk - tq)
            scores = scores.masked_fill(torch.arange(tk, device=q.device)[None, :] > q_pos[:, None], float("-inf"))
        lse = torch.logsumexp(scores, dim=-1)  # (B, H, C)
        probs = torch.nan_to_num(torch.exp(scores - lse.unsqueeze(-1)), nan=0.0)
        outs.append(torch.matmul(probs.to(v.dtype), v))
        lses.append(lse)
    return torch.cat(outs, dim=2), torch.cat(lses, dim=2)


def _attend(q, k, v, mask, scale, causal, softcap):
    """(output (B, H, Tq, d), logsumexp (B, H, Tq)) from the fastest kernel that returns both.

    k and v may have fewer heads than q (GQA): the CPU flash kernel takes them as they are
    (no copy); the other paths repeat them first. Values may have another head size than
    queries and keys (MLA, DeepSeek-V2/V3): the fused kernels want one size, so the smaller of
    the two is padded with zeros (exact: a zero column adds nothing to a score, a zero value
    column gives a zero output column, cut off again).
    """
    dim_qk, dim_v = q.shape[-1], v.shape[-1]
    if dim_qk != dim_v and softcap is None and q.device.type in ("cpu", "cuda"):
        if dim_v < dim_qk:
            out, lse = _attend(q, k, F.pad(v, (0, dim_qk - dim_v)), mask, scale, causal, softcap)
        else:
            out, lse = _attend(F.pad(q, (0, dim_v - dim_qk)), F.pad(k, (0, dim_v - dim_qk)), v, mask, scale, causal, softcap)
        return out[..., :dim_v], lse
    if softcap is None and q.device.type == "cpu":
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, causal, attn_mask=mask, scale=scale
        )
    k, v = _repeat_heads(k, q.shape[1]), _repeat_heads(v, q.shape[1])
    if softcap is None and q.device.type == "cuda":
        try:
            # Memory-efficient kernel: takes masks, returns logsumexp padded to a multiple of 32.
            out, lse, _, _ = torch.ops.aten._scaled_dot_product_efficient_attention(
                q, k, v, mask, True, 0.0, causal, scale=scale
            )
            return out, lse[..., : q.shape[2]]
        except RuntimeError:
            pass
    return _attend_chunked(q, k, v, mask, scale, causal, softcap)


def _attend_shared(query, prefix: PrefixLayer, scale, softcap):
    """Attention of every query of every row to the shared prefix keys, as one kernel call.

    All rows see the same keys, so the queries of a key head's group, over all rows, form one
    long query block: (B, H, T, d) -> (1, Hkv, B * H/Hkv * T, d). No key is copied per row.
    """
    batch, heads, tq, dim = query.shape
    kv_heads, dim_v = prefix.key.shape[1], prefix.value.shape[-1]  # dim_v != dim under MLA
    group = heads // kv_heads  # query head h reads key head h // group
    grouped = query.reshape(batch, kv_heads, group, tq, dim).transpose(0, 1).reshape(1, kv_heads, -1, dim)
    out, lse = _attend(grouped, prefix.key, prefix.value, None, scale, False, softcap)
    out = out.reshape(kv_heads, batch, group, tq, dim_v).transpose(0, 1).reshape(batch, heads, tq, dim_v)
    lse = lse.reshape(kv_heads, batch, group, tq).transpose(0, 1).reshape(batch, heads, tq)
    return out, lse


def _merge(out_a, lse_a, out_b, lse_b, dtype):
    """Two partial softmax attentions over disjoint keys, joined exactly by their logsumexps."""
    lse_a, lse_b = lse_a.float(), lse_b.float()
    lse = torch.logaddexp(lse_a, lse_b)
    out = out_a.float() * torch.exp(lse_a - lse).unsqueeze(-1) + out_b.float() * torch.exp(lse_b - lse).unsqueeze(-1)
    return out.to(dtype), lse


@dataclass(frozen=True)
class _Layout:
    """True positions and segments of one call's queries and keys (prefix keys first)."""

    q_pos: torch.Tensor  # (B|1, Tq)
    k_pos: torch.Tensor  # (B|1, P + Tk)
    q_seg: torch.Tensor | None  # (B, Tq) under packed rows, else None
    k_seg: torch.Tensor | None  # (B, P + Tk)

    def visible(self, layer, sliding: int | None, edit: MaskEdit | None, chunk: int | None = None) -> torch.Tensor:
        """Boolean (B|1, Tq, P + Tk): which key each query sees."""
        allowed = (edit or MaskEdit()).allowed(layer, self.q_pos, self.k_pos)
        if sliding is not None:
            allowed = allowed & ((self.q_pos[..., :, None] - self.k_pos[..., None, :]) < sliding)
        if chunk is not None:  # chunked attention (Llama 4): a query sees the keys of its own chunk only
            allowed = allowed & ((self.q_pos[..., :, None] // chunk) == (self.k_pos[..., None, :] // chunk))
        if self.q_seg is not None:
            q_seg, k_seg = self.q_seg[..., :, None], self.k_seg[..., None, :]
            allowed = allowed & ((k_seg == 0) | (k_seg == q_seg)) & (k_seg != PADDING)
            # A padded query sees itself only, so that no NaN is ever made (it would reach real
            # queries through 0 * NaN in the next layer's values).
            tq, length = self.q_pos.shape[-1], self.k_pos.shape[-1] - self.q_pos.shape[-1]
            own = torch.zeros_like(allowed)
            own[..., torch.arange(tq), torch.arange(length, length + tq)] = True
            allowed = torch.where(q_seg == PADDING, own, allowed)
        return allowed


def _layout(query, key, prefix_length: int, packed: PackedRows | None) -> _Layout:
    tq, tk, device = query.shape[2], key.shape[2], query.device
    if packed is None:
        k_pos = torch.arange(prefix_length + tk, device=device)[None]
        return _Layout(k_pos[:, prefix_length + tk - tq :], k_pos, None, None)
    if packed.positions.shape[1] != tq or tq != tk:
        raise RuntimeError("packed rows need a fresh pass over their tokens (no other KV cache)")
    batch = query.shape[0]
    shared = torch.arange(prefix_length, device=device).expand(batch, -1)
    k_pos = torch.cat([shared, packed.positions], dim=1)
    k_seg = torch.cat([torch.zeros_like(shared), packed.segments], dim=1)
    return _Layout(packed.positions, k_pos, packed.segments, k_seg)


def _chunk_size(module) -> int | None:
    """The chunk length of a chunked-attention layer (Llama 4), else None. transformers says it only
    through the mask it builds, from positions 0..T-1: not the true ones under a shared prefix or
    packed rows, so the general path below applies it from true positions itself."""
    config, layer = getattr(module, "config", None), getattr(module, "layer_idx", None)
    types = getattr(config, "layer_types", None)
    if layer is None or not types or types[layer] != "chunked_attention":
        return None
    return config.attention_chunk_size


def _model_mask_is_structure(attention_mask, tq: int, chunk: int) -> bool:
    """Whether a chunked layer's mask holds nothing but causality and chunks over positions 0..T-1
    (no padding): then, under a shared prefix, it may be replaced by the one from true positions."""
    allowed = attention_mask if attention_mask.dtype == torch.bool else attention_mask == 0
    pos = torch.arange(tq, device=allowed.device)
    own = (pos[None, :] <= pos[:, None]) & ((pos[None, :] // chunk) == (pos[:, None] // chunk))
    return bool((allowed[..., -tq:, -tq:] == own).all())


def _check_query_scaling(module, q_pos: torch.Tensor) -> None:
    """Llama 4's NoPE layers scale queries by their position (attention temperature tuning), read
    from the row index rather than position_ids; under a shared prefix or packed rows the two differ.
    Refuse where the scales would differ, instead of measuring a different model."""
    if not getattr(module, "attn_temperature_tuning", False) or getattr(module, "use_rope", True):
        return
    floor_scale = module.floor_scale
    row = torch.arange(q_pos.shape[-1], device=q_pos.device)
    if not torch.equal(((row + 1) // floor_scale).expand_as(q_pos), (q_pos + 1) // floor_scale):
        raise SinkbenchError(f"layer {module.layer_idx} of this model scales queries by their row index (attention "
                             f"temperature tuning, from position {floor_scale - 1} on): a shared stress prefix or packed "
                             "choices would change that scale, so this condition cannot be measured exactly")


def sinkbench_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """Drop-in for transformers' sdpa_attention_forward; see the module docstring."""
    layer = getattr(module, "layer_idx", None)
    tq, tk = query.shape[2], key.shape[2]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    softcap = kwargs.get("softcap")
    sliding = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    chunk = _chunk_size(module)
    edit = _SESSION.edit if _SESSION.edit is not None and _SESSION.edit.touches(layer) else None
    if _SESSION.capture is not None:
        if layer is None:
            raise RuntimeError(f"{type(module).__name__} has no layer_idx: its prefix keys cannot be stored")
        _SESSION.capture[layer] = PrefixLayer(key.detach(), value.detach())
    prefix = _SESSION.prefix.layers.get(layer) if _SESSION.prefix is not None else None
    if _SESSION.prefix is not None and prefix is None:
        raise RuntimeError(f"no stored prefix keys for layer {layer}")
    length = prefix.length if prefix is not None else 0
    if prefix is not None and tq != tk:
        raise RuntimeError("a shared prefix needs a fresh pass over new tokens (no other KV cache)")
    packed = _SESSION.packed
    model_mask = _additive(attention_mask, query.dtype)
    if packed is None and edit is None and prefix is None:
        # The model's own attention, exactly as SDPA would run it.
        causal = model_mask is None and tq > 1 and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
        mask = model_mask
        if causal and tq != tk:  # SDPA's is_causal aligns top-left; under a KV cache we need bottom-right
            k_pos = torch.arange(tk, device=query.device)
            mask, causal = _additive(k_pos[None, :] <= k_pos[tk - tq :, None], query.dtype)[None, None], False
        out, lse = _attend(query, key, value, mask, scale, causal, softcap)
        architecture = mask
    else:
        positions = _layout(query, key, length, packed)
        _check_query_scaling(module, positions.q_pos)
        reach = int(positions.q_pos.max()) + 1  # the longest true sequence in this call
        if prefix is not None and edit is None and (sliding is None or reach <= sliding) and (chunk is None or reach <= chunk):
            # Every query sees the whole prefix: the rows' own attention and one grouped prefix
            # kernel, merged by logsumexp.
            if packed is None:
                own_mask, causal = model_mask, model_mask is None and tq > 1
            else:
                own = _Layout(positions.q_pos, positions.k_pos[:, length:], positions.q_seg, positions.k_seg[:, length:])
                own_mask, causal = _additive(own.visible(layer, None, None), query.dtype)[:, None], False
            out_own, lse_own = _attend(query, key, value, own_mask, scale, causal, softcap)
            out_pre, lse_pre = _attend_shared(query, prefix, scale, softcap)
            out, lse = _merge(out_own, lse_own, out_pre, lse_pre, query.dtype)
            mask = None if own_mask is None else F.pad(own_mask, (length, 0))
            architecture = mask
        else:
            # One kernel over prefix + own keys under a mask built from true positions. Under a
            # sliding window (and nothing else), prefix keys before every query's window are
            # seen by none: they are left out of the kernel call.
            visible = positions.visible(layer, sliding, edit, chunk)
            mask = _additive(visible, query.dtype)[:, None]
            if chunk is not None and prefix is not None and model_mask is not None:
                if not _model_mask_is_structure(attention_mask, tq, chunk):
                    raise RuntimeError("a padding mask under a shared prefix in a chunked-attention layer is not supported")
                model_mask = None  # chunks from positions 0..T-1: replaced by `visible`, from true positions
            if packed is None and model_mask is not None:
                mask = F.pad(model_mask, (length, 0)) + mask  # the model's own (padding) mask too
            architecture = mask
            if edit is not None:  # the same without the condition's edit
                architecture = _additive(positions.visible(layer, sliding, None), query.dtype)[:, None]
                if packed is None and model_mask is not None:
                    architecture = F.pad(model_mask, (length, 0)) + architecture
            start = 0
            if prefix is not None and edit is None and sliding is not None:
                start = min(length, max(0, int(positions.q_pos.min()) - sliding + 1))
            keys, values = key, value
            if prefix is not None:
                batch = query.shape[0]
                keys = torch.cat([prefix.key[:, :, start:].expand(batch, -1, -1, -1), key], dim=2)
                values = torch.cat([prefix.value[:, :, start:].expand(batch, -1, -1, -1), value], dim=2)
            out, lse = _attend(query, keys, values, mask[..., start:], scale, False, softcap)
    sink_logits = kwargs.get("s_aux")
    if sink_logits is not None:
        # A learned sink logit joins the softmax as an extra column with no value vector:
        # renormalise the output and the logsumexp by it.
        total = torch.logaddexp(lse.float(), sink_logits.float().view(1, -1, 1))
        out = out * torch.exp(lse.float() - total).unsqueeze(-1).to(out.dtype)
        lse = total
    recorder = _SESSION.recorder
    if recorder is not None and _SESSION.capture is None:  # a prefix being stored is no request's
        recorder.record(LayerAttention(layer, query, key, value, mask, lse, scale, softcap, sink_logits, prefix,
                                       architecture, sliding))
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `attn_implementation="sinkbench"` known to transformers (idempotent)."""
    AttentionInterface.register(ATTENTION_NAME, sinkbench_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION_NAME, sdpa_mask)


@contextmanager
def attention_session(model, *, edit: MaskEdit | None = None, recorder: Recorder | None = None):
    """Run `model` through sinkbench attention with the given mask edit and recorder, then restore it."""
    register()
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION_NAME)
    saved = (_SESSION.edit, _SESSION.recorder)
    _SESSION.edit, _SESSION.recorder = edit, recorder
    try:
        yield
    finally:
        _SESSION.edit, _SESSION.recorder = saved
        model.set_attn_implementation(previous)


@contextmanager
def capture_prefix() -> Iterator[dict[int, PrefixLayer]]:
    """Store every layer's keys and values of the forward pass run inside (within a session).
    A recorder sees nothing of that pass.

        with attention_session(model), capture_prefix() as layers:
            model(prefix_ids)
        prefix = SharedPrefix(layers, len(prefix_ids[0]))
    """
    saved, _SESSION.capture = _SESSION.capture, {}
    try:
        yield _SESSION.capture
    finally:
        _SESSION.capture = saved


@contextmanager
def shared_prefix(prefix: SharedPrefix) -> Iterator[None]:
    """Forward passes inside attend to `prefix` before their own tokens (within a session).

    Pass `position_ids=prefix.position_ids(batch, length)` to the model.
    """
    if prefix.length < 1 or not prefix.layers:
        raise ValueError("an empty prefix: run without shared_prefix()")
    saved, _SESSION.prefix = _SESSION.prefix, prefix
    try:
        yield
    finally:
        _SESSION.prefix = saved


@contextmanager
def packed_rows(rows: PackedRows) -> Iterator[None]:
    """Forward passes inside treat their rows as packed (within a session); pass
    `position_ids=rows.positions` to the model."""
    saved, _SESSION.packed = _SESSION.packed, rows
    try:
        yield
    finally:
        _SESSION.packed = saved
