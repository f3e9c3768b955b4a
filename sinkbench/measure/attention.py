"""One attention function for every architecture: SDPA's kernel plus first-key statistics and condition masks.

transformers 5.x routes the attention of Llama, Gemma 3, Qwen2, Mistral, GPT-2, GPT-NeoX and
the rest through `ALL_ATTENTION_FUNCTIONS`. We register `sinkbench` there. It computes the
layer's output with a fused kernel that also returns the softmax normaliser (logsumexp), so the
attention of every query to the first few keys costs O(T * k * head_dim) to recover, never an
O(T * T) weight matrix. It also applies the `window`/`sinks`/`knockout` masks of a condition.

A stress prefix shared by every row of a batch is handled here too (`shared_prefix()`): its keys
and values are stored once per layer, and each batch attends to them as one grouped kernel call
(queries of all rows against the same keys) whose softmax is merged with the rows' own attention
by logsumexp. Nothing is copied per row, and no KV cache is concatenated.

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

ATTENTION_NAME = "sinkbench"
QUERY_CHUNK = 1024  # query rows per block in the fallback path: B*H*1024*T floats at a time


@dataclass(frozen=True)
class MaskEdit:
    """Attention restrictions of a condition, applied on top of the model's own mask.

    window/sinks (StreamingLLM): query t sees key j only if j < sinks or t - j < window.
    knockout: in the listed layers, no query but the first sees key 0.
    """

    window: int | None = None
    sinks: int = 0
    knockout_layers: frozenset[int] = frozenset()

    def touches(self, layer: int | None) -> bool:
        return self.window is not None or (layer is not None and layer in self.knockout_layers)

    def allowed(self, layer: int | None, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Boolean (Tq, Tk) mask, True where attention stays allowed (causality included)."""
        allowed = k_pos[None, :] <= q_pos[:, None]
        if self.window is not None:
            recent = (q_pos[:, None] - k_pos[None, :]) < self.window
            allowed &= recent | (k_pos[None, :] < self.sinks)
        if layer is not None and layer in self.knockout_layers:
            # Query 0 keeps key 0: a row with no key at all has no softmax.
            allowed &= ~((k_pos[None, :] == 0) & (q_pos[:, None] > 0))
        return allowed


@dataclass
class LayerAttention:
    """What one attention call hands to a recorder. Shapes: B batch, H query heads, Hkv key heads.

    The keys a query may see are `prefix.key` (a shared stress prefix, if any) followed by `key`.
    """

    layer: int | None
    query: torch.Tensor  # (B, H, Tq, d), after RoPE and norms
    key: torch.Tensor  # (B, Hkv, Tk, d), as the layer produced it (Hkv < H under GQA)
    value: torch.Tensor  # (B, Hkv, Tk, d)
    mask: torch.Tensor | None  # additive (B|1, 1|H, Tq, P + Tk) over all keys; None means plain causal
    lse: torch.Tensor  # (B, H, Tq) logsumexp of each query's scores (learned sink included)
    scale: float
    softcap: float | None
    learned_sink: torch.Tensor | None  # (H,) sink logits (gpt-oss), or None
    prefix: "PrefixLayer | None" = None  # shared keys before `key`, seen by every row

    @property
    def n_keys(self) -> int:
        return self.key.shape[2] + (self.prefix.length if self.prefix is not None else 0)

    def first_keys(self, n_keys: int) -> torch.Tensor:
        """Keys at positions 0..n_keys-1 of the whole sequence: (B, Hkv, n_keys, d)."""
        if self.prefix is None:
            return self.key[:, :, :n_keys]
        head = self.prefix.key[:, :, :n_keys].expand(self.key.shape[0], -1, -1, -1)
        if n_keys > head.shape[2]:
            head = torch.cat([head, self.key[:, :, : n_keys - head.shape[2]]], dim=2)
        return head

    def key_logits(self, n_keys: int) -> torch.Tensor:
        """Masked scores of every query against the first `n_keys` keys: (B, H, Tq, n_keys), float32."""
        keys = _repeat_heads(self.first_keys(n_keys), self.query.shape[1])
        logits = torch.matmul(self.query, keys.transpose(-1, -2)).float() * self.scale
        if self.softcap is not None:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        if self.mask is not None:
            logits = logits + self.mask[..., :n_keys].float()
        else:
            tq = self.query.shape[2]
            q_pos = torch.arange(tq, device=logits.device) + (self.n_keys - tq)
            k_pos = torch.arange(n_keys, device=logits.device)
            logits = logits.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf"))
        return logits

    def key_attention(self, n_keys: int) -> torch.Tensor:
        """Attention weights A[t, j] for j < n_keys: (B, H, Tq, n_keys). Rows with no visible key give 0."""
        probs = torch.exp(self.key_logits(n_keys) - self.lse.float().unsqueeze(-1))
        return torch.nan_to_num(probs, nan=0.0)

    def value_norms(self) -> torch.Tensor:
        """||v_j|| of every key, prefix included: (B, Hkv, P + Tk)."""
        own = self.value.detach().float().norm(dim=-1)
        if self.prefix is None:
            return own
        return torch.cat([self.prefix.value_norms.expand(own.shape[0], -1, -1), own], dim=-1)


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


class Recorder(Protocol):
    def record(self, call: LayerAttention) -> None: ...


class _Session:
    edit: MaskEdit | None = None
    recorder: Recorder | None = None
    prefix: SharedPrefix | None = None
    capture: dict[int, PrefixLayer] | None = None


_SESSION = _Session()


def _repeat_heads(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """Key/value heads repeated to the query heads (GQA): head h of the query uses kv head h // n_rep."""
    n_rep = heads // tensor.shape[1]
    return tensor if n_rep == 1 else tensor.repeat_interleave(n_rep, dim=1)


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
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
    (no copy); the other paths repeat them first.
    """
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
    kv_heads = prefix.key.shape[1]
    group = heads // kv_heads  # query head h reads key head h // group
    grouped = query.reshape(batch, kv_heads, group, tq, dim).transpose(0, 1).reshape(1, kv_heads, -1, dim)
    out, lse = _attend(grouped, prefix.key, prefix.value, None, scale, False, softcap)
    out = out.reshape(kv_heads, batch, group, tq, dim).transpose(0, 1).reshape(batch, heads, tq, dim)
    lse = lse.reshape(kv_heads, batch, group, tq).transpose(0, 1).reshape(batch, heads, tq)
    return out, lse


def _attend_after_prefix(layer, query, key, value, mask, scale, softcap, sliding, edit, prefix: PrefixLayer):
    """(output, logsumexp, mask over prefix + own keys or None) for queries that follow a shared prefix.

    Fast path (every query sees the whole prefix): two kernels, the rows' own causal attention
    and the grouped prefix attention, merged by logsumexp. Otherwise (a sliding window shorter
    than the sequence, window/sinks/knockout) the visible prefix keys are joined to each row's
    keys under a mask built from absolute positions.
    """
    tq, tk, length = query.shape[2], key.shape[2], prefix.length
    if tq != tk:
        raise RuntimeError("a shared prefix needs a fresh pass over new tokens (no other KV cache)")
    edited = edit is not None and edit.touches(layer)
    if not edited and (sliding is None or length + tq <= sliding):
        causal = mask is None and tq > 1
        out_own, lse_own = _attend(query, key, value, mask, scale, causal, softcap)
        out_pre, lse_pre = _attend_shared(query, prefix, scale, softcap)
        lse_own, lse_pre = lse_own.float(), lse_pre.float()
        lse = torch.logaddexp(lse_own, lse_pre)
        out = out_own.float() * torch.exp(lse_own - lse).unsqueeze(-1) + out_pre.float() * torch.exp(lse_pre - lse).unsqueeze(-1)
        full_mask = None if mask is None else F.pad(mask, (length, 0))
        return out.to(query.dtype), lse, full_mask
    q_pos = torch.arange(length, length + tq, device=query.device)
    k_pos = torch.arange(length + tk, device=query.device)
    allowed = (edit or MaskEdit()).allowed(layer, q_pos, k_pos)
    start = 0
    if sliding is not None:
        allowed &= (q_pos[:, None] - k_pos[None, :]) < sliding
        if not edited:  # keys before the first query's window are seen by no query
            start = max(0, length - sliding + 1)
    full_mask = _additive(allowed, query.dtype)[None, None]
    if mask is not None:
        full_mask = F.pad(mask, (length, 0)) + full_mask
    batch = query.shape[0]
    keys = torch.cat([prefix.key[:, :, start:].expand(batch, -1, -1, -1), key], dim=2)
    values = torch.cat([prefix.value[:, :, start:].expand(batch, -1, -1, -1), value], dim=2)
    out, lse = _attend(query, keys, values, full_mask[..., start:], scale, False, softcap)
    return out, lse, full_mask


def sinkbench_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """Drop-in for transformers' sdpa_attention_forward; see the module docstring."""
    layer = getattr(module, "layer_idx", None)
    tq, tk = query.shape[2], key.shape[2]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    softcap = kwargs.get("softcap")
    mask = _additive(attention_mask, query.dtype)
    edit = _SESSION.edit
    if _SESSION.capture is not None:
        if layer is None:
            raise RuntimeError(f"{type(module).__name__} has no layer_idx: its prefix keys cannot be stored")
        _SESSION.capture[layer] = PrefixLayer(key.detach(), value.detach())
    prefix = _SESSION.prefix.layers.get(layer) if _SESSION.prefix is not None else None
    if _SESSION.prefix is not None and prefix is None:
        raise RuntimeError(f"no stored prefix keys for layer {layer}")
    if prefix is not None:
        sliding = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
        out, lse, mask = _attend_after_prefix(layer, query, key, value, mask, scale, softcap, sliding, edit, prefix)
    else:
        causal = mask is None and tq > 1 and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
        needs_explicit = causal and tq != tk  # SDPA's is_causal aligns top-left; with a cache we need bottom-right
        if (edit is not None and edit.touches(layer)) or needs_explicit:
            q_pos = torch.arange(tq, device=query.device) + (tk - tq)
            k_pos = torch.arange(tk, device=query.device)
            allowed = (edit or MaskEdit()).allowed(layer, q_pos, k_pos)
            extra = _additive(allowed, query.dtype)
            mask = extra[None, None] if mask is None else mask + extra
            causal = False
        out, lse = _attend(query, key, value, mask, scale, causal, softcap)
    sinks = kwargs.get("s_aux")
    if sinks is not None:
        # A learned sink logit joins the softmax as an extra column with no value vector:
        # renormalise the output and the logsumexp by it.
        total = torch.logaddexp(lse.float(), sinks.float().view(1, -1, 1))
        out = out * torch.exp(lse.float() - total).unsqueeze(-1).to(out.dtype)
        lse = total
    recorder = _SESSION.recorder
    if recorder is not None:
        recorder.record(LayerAttention(layer, query, key, value, mask, lse, scale, softcap, sinks, prefix))
    return out.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `attn_implementation="sinkbench"` known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

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
