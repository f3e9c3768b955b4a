"""Benchmark: the stress prefix computed once (KV cache) against recomputed for every example.

    python bench/prefix_cache.py --prefix 2048 --limit 40

Runs sinkbench_lambada (first --limit passages) on SmolLM2-135M three ways: prefix=0,
prefix=N reusing the cached prefix, prefix=N recomputing it per sequence. Target: the cached
prefix costs at most 1.5x prefix=0; scores of the two prefix runs agree.
"""

from __future__ import annotations

import argparse
import time

import lm_eval
from lm_eval.tasks import TaskManager

from sinkbench.backend import SinkbenchLM
from sinkbench.models import load_model
from sinkbench.run import default_tasks_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prefix", type=int, default=2048)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    loaded = load_model(args.model)
    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False)
    rows = []
    for label, prefix, reuse in [("prefix=0", 0, True), (f"prefix={args.prefix} cached", args.prefix, True),
                                 (f"prefix={args.prefix} recomputed", args.prefix, False)]:
        lm = SinkbenchLM(loaded=loaded, prefix=prefix, reuse_prefix=reuse, batch_size=args.batch_size)
        start = time.perf_counter()
        result = lm_eval.simple_evaluate(model=lm, tasks=["sinkbench_lambada"], task_manager=manager,
                                         limit=args.limit, bootstrap_iters=0)
        seconds = time.perf_counter() - start
        scores = result["results"]["sinkbench_lambada"]
        rows.append((label, seconds, scores["acc,none"], scores["perplexity,none"]))
        print(f"{label:28s} {seconds:8.1f} s  acc {scores['acc,none']:.4f}  ppl {scores['perplexity,none']:.4f}", flush=True)
    base = rows[0][1]
    print(f"cached / prefix=0: {rows[1][1] / base:.2f}x   recomputed / prefix=0: {rows[2][1] / base:.2f}x   "
          f"recomputed / cached: {rows[2][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
