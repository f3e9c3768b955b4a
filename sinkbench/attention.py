"""One attention function for every architecture: SDPA's kernel plus first-key statistics and condition masks.

transformers 5.x routes the attention of Llama, Gemma 3, Qwen2, Mistral, GPT-2, GPT-NeoX and
the rest through `ALL_ATTENTION_FUNCTIONS`. We register `sinkbench` there. It computes the
layer's output with a fused kernel that also returns the softmax normaliser (logsumexp), so the
attention of every query to the first few keys costs O(T * k * head_dim) to recover, never an
O(T * T) weight matrix. It also applies the `window`/`sinks`/`knockout` masks of a condition.

The function reads what to do from a module-level session set by `attention_session()`:
outside a session it behaves exactly like SDPA.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch

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
    """What one attention call hands to a recorder. Shapes: B batch, H query heads, Hkv key heads."""

    layer: int | None
    query: torch.Tensor  # (B, H, Tq, d), after RoPE and norms
    key: torch.Tensor  # (B, Hkv, Tk, d), as the layer produced it (Hkv < H under GQA)
    value: torch.Tensor  # (B, Hkv, Tk, d)
    mask: torch.Tensor | None  # additive (B|1, 1|H, Tq, Tk); None means plain causal
    lse: torch.Tensor  # (B, H, Tq) logsumexp of each query's scores (learned sink included)
    scale: float
    softcap: float | None
    learned_sink: torch.Tensor | None  # (H,) sink logits (gpt-oss), or None

    def key_logits(self, n_keys: int) -> torch.Tensor:
        """Masked scores of every query against the first `n_keys` keys: (B, H, Tq, n_keys), float32."""
        keys = _repeat_heads(self.key[:, :, :n_keys], self.query.shape[1])
        logits = torch.matmul(self.query, keys.transpose(-1, -2)).float() * self.scale
        if self.softcap is not None:
            logits = self.softcap * torch.tanh(logits / self.softcap)
        if self.mask is not None:
            logits = logits + self.mask[..., :n_keys].float()
        else:
            tq, tk = self.query.shape[2], self.key.shape[2]
            q_pos = torch.arange(tq, device=logits.device) + (tk - tq)
            k_pos = torch.arange(n_keys, device=logits.device)
            logits = logits.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf"))
        return logits

    def key_attention(self, n_keys: int) -> torch.Tensor:
        """Attention weights A[t, j] for j < n_keys: (B, H, Tq, n_keys). Rows with no visible key give 0."""
        probs = torch.exp(self.key_logits(n_keys) - self.lse.float().unsqueeze(-1))
        return torch.nan_to_num(probs, nan=0.0)


class Recorder(Protocol):
    def record(self, call: LayerAttention) -> None: ...


class _Session:
    edit: MaskEdit | None = None
    recorder: Recorder | None = None


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


def sinkbench_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """Drop-in for transformers' sdpa_attention_forward; see the module docstring."""
    layer = getattr(module, "layer_idx", None)
    tq, tk = query.shape[2], key.shape[2]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    mask = _additive(attention_mask, query.dtype)
    causal = mask is None and tq > 1 and (is_causal if is_causal is not None else getattr(module, "is_causal", True))
    edit = _SESSION.edit
    needs_explicit = causal and tq != tk  # SDPA's is_causal aligns top-left; with a cache we need bottom-right
    if (edit is not None and edit.touches(layer)) or needs_explicit:
        q_pos = torch.arange(tq, device=query.device) + (tk - tq)
        k_pos = torch.arange(tk, device=query.device)
        allowed = (edit or MaskEdit()).allowed(layer, q_pos, k_pos)
        extra = torch.zeros(allowed.shape, dtype=query.dtype, device=query.device).masked_fill_(~allowed, float("-inf"))
        mask = extra[None, None] if mask is None else mask + extra
        causal = False
    softcap = kwargs.get("softcap")
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
        recorder.record(LayerAttention(layer, query, key, value, mask, lse, scale, softcap, sinks))
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
