"""Benchmark: one layer's attention to a shared stress prefix, against the layer's matrix products.

    python bench/prefix_kernel.py            # SmolLM2-135M shapes: 9 heads, 3 key heads, d=64

Times, for one batch (B rows of T tokens after a P-token prefix) and one layer:
* own: the rows' causal attention over their own T tokens (what prefix=0 pays);
* concat: each row's own keys joined to the prefix keys, one masked kernel call (a KV cache);
* shared: sinkbench's path, own attention plus one grouped call against the prefix, merged;
* matmul: the layer's dense products for the same tokens (q, k, v, o and the MLP), the work
  the attention to the prefix is added to.
GFLOP/s use 4 * rows * heads * T * P * d for the prefix attention. The per-layer cost ratio
(matmul + own + extra prefix time) / (matmul + own) is what `prefix=P` costs against
`prefix=0` at the scoring level, up to everything outside the layers.
"""

from __future__ import annotations

import argparse
import time

import torch

from sinkbench.measure.attention import PrefixLayer, _attend, _attend_shared


def best_of(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=100, help="tokens per row after the prefix")
    parser.add_argument("--prefix", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=9)
    parser.add_argument("--kv-heads", type=int, default=3)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    b, h, hkv, t, d, p = args.batch, args.heads, args.kv_heads, args.tokens, args.head_dim, args.prefix
    scale = d**-0.5
    q = torch.randn(b, h, t, d)
    k, v = torch.randn(b, hkv, t, d), torch.randn(b, hkv, t, d)
    prefix = PrefixLayer(torch.randn(1, hkv, p, d), torch.randn(1, hkv, p, d))

    def own():
        return _attend(q, k, v, None, scale, True, None)

    q_pos, k_pos = torch.arange(p, p + t), torch.arange(p + t)
    mask = torch.zeros(t, p + t).masked_fill_(k_pos[None, :] > q_pos[:, None], float("-inf"))[None, None]

    def concat():
        keys = torch.cat([prefix.key.expand(b, -1, -1, -1), k], dim=2)
        values = torch.cat([prefix.value.expand(b, -1, -1, -1), v], dim=2)
        return _attend(q, keys, values, mask, scale, False, None)

    def shared():
        out_own, lse_own = own()
        out_pre, lse_pre = _attend_shared(q, prefix, scale, None)
        lse = torch.logaddexp(lse_own, lse_pre)
        return out_own * torch.exp(lse_own - lse).unsqueeze(-1) + out_pre * torch.exp(lse_pre - lse).unsqueeze(-1), lse

    x = torch.randn(b * t, args.hidden)
    w_qkv = torch.randn(args.hidden, (h + 2 * hkv) * d)
    w_o = torch.randn(h * d, args.hidden)
    w_up = torch.randn(args.hidden, 2 * args.intermediate)
    w_down = torch.randn(args.intermediate, args.hidden)
    attn_out = torch.randn(b * t, h * d)
    mid = torch.randn(b * t, args.intermediate)

    def matmul():
        return x @ w_qkv, attn_out @ w_o, x @ w_up, mid @ w_down

    out_a, lse_a = concat()
    out_b, lse_b = shared()
    print(f"shared vs concat: max |out diff| {(out_a - out_b).abs().max():.1e}, max |lse diff| {(lse_a - lse_b).abs().max():.1e}")
    times = {name: best_of(fn, args.repeats) for name, fn in
             [("own", own), ("concat", concat), ("shared", shared), ("matmul", matmul)]}
    prefix_flop = 4 * b * h * t * p * d
    matmul_flop = 2 * b * t * (args.hidden * (h + 2 * hkv) * d + h * d * args.hidden + 3 * args.hidden * args.intermediate)
    base = times["matmul"] + times["own"]
    print(f"one layer, batch {b} x {t} tokens, prefix {p}, {h} heads / {hkv} key heads, d={d}")
    print(f"  matmul  {1000 * times['matmul']:7.2f} ms  ({matmul_flop / times['matmul'] / 1e9:.0f} GFLOP/s)")
    print(f"  own     {1000 * times['own']:7.2f} ms")
    for name in ("concat", "shared"):
        extra = times[name] - times["own"]
        print(f"  {name:7s} {1000 * times[name]:7.2f} ms  (prefix part {prefix_flop / extra / 1e9:.0f} GFLOP/s; "
              f"layer cost {(times['matmul'] + times[name]) / base:.2f}x prefix=0)")
    print(f"  floor at matmul speed: {(times['matmul'] * (1 + prefix_flop / matmul_flop) + times['own']) / base:.2f}x")


if __name__ == "__main__":
    main()
