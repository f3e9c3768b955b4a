"""Benchmark: cost of the sink probe against a plain forward pass and output_attentions=True.

    python bench/probe_cost.py --T 4096            # (a) plain, (b) probe, (c) output_attentions
    python bench/probe_cost.py --T 32768 --modes plain,probe

Each mode runs in its own process (so one mode's peak memory cannot hide another's), on
SmolLM2-135M by default, on the same random token ids. Reports time and peak RSS above the
loaded model, and the ratios the probe is held to (time <= 1.05x plain, memory <= 1.10x plain,
memory >= 5x below output_attentions). The probe runs as the sink profile does: first-key
attention reduced per sequence as each layer runs, plus massive activations and value norms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def child(mode: str, T: int, model_spec: str, repeats: int) -> dict:
    import torch

    from memory import PeakMemory
    from sinkbench.measure.models import load_model
    from sinkbench.measure.probe import SinkProbe

    torch.manual_seed(0)
    loaded = load_model(model_spec)
    model = loaded.model
    ids = torch.randint(100, loaded.tokenizer.vocab_size - 100, (1, T))
    with torch.no_grad():
        model(ids[:, :64])  # warm-up: first-call allocations and kernel choice
        best = None
        for _ in range(repeats):
            if mode == "plain":
                with PeakMemory() as peak:
                    model(ids, logits_to_keep=1)
            elif mode == "probe":  # as the sink profile runs it: one query group per sequence, activations too
                with SinkProbe(model) as probe:
                    with PeakMemory() as peak:
                        probe.group(torch.zeros_like(ids), 1)
                        model(ids, logits_to_keep=1)
                        probe.collect()
            elif mode == "output_attentions":
                model.set_attn_implementation("eager")
                with PeakMemory() as peak:
                    out = model(ids, logits_to_keep=1, output_attentions=True)
                    alpha = torch.stack([a[..., 0].mean(-1) for a in out.attentions])
                    del out, alpha
            else:
                raise ValueError(mode)
            if best is None or peak.seconds < best[0]:
                best = (peak.seconds, peak.extra_bytes)
    return {"mode": mode, "T": T, "seconds": best[0], "peak_extra_mib": best[1] / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, default=4096)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--modes", default="plain,probe,output_attentions")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings per mode")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.T, args.model, args.repeats)), flush=True)
        return
    results = {}
    # glibc's dynamic mmap threshold keeps freed large blocks in the heap, so peak RSS then
    # depends on allocation history more than on what is live. Fixed thresholds make large
    # tensors come and go through mmap in every mode alike.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    for mode in args.modes.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--T", str(args.T), "--model", args.model,
                               "--repeats", str(args.repeats)], capture_output=True, text=True, env=env)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            results[mode] = {"mode": mode, "T": args.T, "failed": f"exit code {proc.returncode}", "stderr": proc.stderr[-300:]}
        else:
            results[mode] = json.loads(lines[0][7:])
        print(json.dumps(results[mode]), flush=True)
    plain, probe = results.get("plain", {}), results.get("probe", {})
    if "seconds" in plain and "seconds" in probe:
        print(f"probe / plain: time {probe['seconds'] / plain['seconds']:.3f}x, "
              f"peak memory {probe['peak_extra_mib'] / plain['peak_extra_mib']:.3f}x")
    full = results.get("output_attentions", {})
    if "peak_extra_mib" in full and "peak_extra_mib" in probe:
        print(f"output_attentions / probe: peak memory {full['peak_extra_mib'] / probe['peak_extra_mib']:.1f}x, "
              f"time {full['seconds'] / probe['seconds']:.2f}x")


if __name__ == "__main__":
    main()
