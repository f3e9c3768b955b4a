"""Benchmark: logits only at scored positions (sinkbench) against stock lm-eval `hf`, same model object.

    python bench/scored_logits.py --model gemma3-270m --limit 200

Both run sinkbench_lambada (first --limit passages) with <bos> kept, batch size 8, on one
loaded Gemma 3 270M (262k vocabulary). Target: sinkbench at least 1.5x faster, identical
accuracy, log-likelihoods equal to float precision.
"""

from __future__ import annotations

import argparse
import time

import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from sinkbench.harness.backend import SinkbenchLM
from sinkbench.measure.models import load_model
from sinkbench.harness.tasklist import default_tasks_dir


def run(lm, manager, limit):
    start = time.perf_counter()
    result = lm_eval.simple_evaluate(model=lm, tasks=["sinkbench_lambada"], task_manager=manager, limit=limit,
                                     bootstrap_iters=0, log_samples=True)
    seconds = time.perf_counter() - start
    samples = sorted(result["samples"]["sinkbench_lambada"], key=lambda s: s["doc_id"])
    return seconds, result["results"]["sinkbench_lambada"], [s["resps"][0][0] for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    loaded = load_model(args.model)
    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False)
    stock = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=args.batch_size)
    ours = SinkbenchLM(loaded=loaded, batch_size=args.batch_size)
    t_stock, r_stock, s_stock = run(stock, manager, args.limit)
    print(f"stock hf : {t_stock:7.1f} s  acc {r_stock['acc,none']:.4f}  ppl {r_stock['perplexity,none']:.4f}", flush=True)
    t_ours, r_ours, s_ours = run(ours, manager, args.limit)
    print(f"sinkbench: {t_ours:7.1f} s  acc {r_ours['acc,none']:.4f}  ppl {r_ours['perplexity,none']:.4f}", flush=True)
    diff = max(abs(float(a[0]) - float(b[0])) for a, b in zip(s_stock, s_ours))
    same_greedy = all(bool(a[1]) == bool(b[1]) for a, b in zip(s_stock, s_ours))
    print(f"speed-up {t_stock / t_ours:.2f}x; max |loglik difference| {diff:.2e}; greedy flags identical: {same_greedy}")


if __name__ == "__main__":
    main()
