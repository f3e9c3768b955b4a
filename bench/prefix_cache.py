"""Benchmark: the stress prefix computed once and shared against recomputed for every example.

    python bench/prefix_cache.py --prefix 2048 --limit 100

Scores the first --limit sinkbench_lambada requests on SmolLM2-135M three ways: prefix=0;
prefix=N with the prefix computed once and shared (sinkbench's default); prefix=N recomputed
per sequence (on a smaller slice, --recompute-limit, scaled per request). Only scoring is
timed: requests are built once, before; prefix=0 and shared runs alternate --repeats times,
and the ratio is given for their medians and for their fastest runs (this machine's timings
drift by 10-20% between runs). The one-off computation of the shared prefix is reported on
its own. Target: the shared prefix costs at most 1.5x prefix=0; both prefix runs give the
same scores.
"""

from __future__ import annotations

import argparse
import statistics
import time

from lm_eval.tasks import TaskManager, get_task_dict

from sinkbench.harness.backend import SinkbenchLM
from sinkbench.measure.models import load_model
from sinkbench.harness.tasklist import default_tasks_dir


def requests_for(limit: int):
    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False)
    task = get_task_dict(["sinkbench_lambada"], manager)["sinkbench_lambada"]
    task.build_all_requests(limit=limit, rank=0, world_size=1)
    return task.instances


def timed(lm, requests):
    start = time.perf_counter()
    scores = lm.loglikelihood(requests, disable_tqdm=True)
    return time.perf_counter() - start, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prefix", type=int, default=2048)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--recompute-limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each mode, interleaved; medians reported")
    args = parser.parse_args()
    loaded = load_model(args.model)
    requests = requests_for(args.limit)
    plain = SinkbenchLM(loaded=loaded, batch_size=args.batch_size)
    timed(plain, requests[: args.batch_size])  # warm-up
    shared = SinkbenchLM(loaded=loaded, prefix=args.prefix, batch_size=args.batch_size)
    start = time.perf_counter()
    with shared.scorer.probe:
        shared.scorer.shared()  # made once; every later pass reuses it
    t_prefix = time.perf_counter() - start
    plain_times, shared_times = [], []
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits both modes
        seconds, s_plain = timed(plain, requests)
        plain_times.append(seconds)
        seconds, s_shared = timed(shared, requests)
        shared_times.append(seconds)
    t_plain, t_shared = statistics.median(plain_times), statistics.median(shared_times)
    recompute = SinkbenchLM(loaded=loaded, prefix=args.prefix, batch_size=args.batch_size)
    recompute.scorer.reuse_prefix = False  # the baseline: the prefix runs again with every sequence
    subset = requests[: args.recompute_limit]
    t_recompute, s_recompute = timed(recompute, subset)
    n, m = len(requests), len(subset)
    print(f"{n} requests, batch size {args.batch_size}, median of {args.repeats} runs "
          f"(prefix=0: {', '.join(f'{t:.1f}' for t in plain_times)} s; "
          f"shared: {', '.join(f'{t:.1f}' for t in shared_times)} s)")
    print(f"prefix=0                  {t_plain:7.1f} s  ({1000 * t_plain / n:.0f} ms/request)")
    print(f"prefix={args.prefix} shared      {t_shared:7.1f} s  ({1000 * t_shared / n:.0f} ms/request; "
          f"+{t_prefix:.1f} s once for the prefix itself)")
    print(f"prefix={args.prefix} recomputed  {t_recompute:7.1f} s for {m} ({1000 * t_recompute / m:.0f} ms/request)")
    diff = max(abs(a[0] - b[0]) for a, b in zip(s_shared[:m], s_recompute))
    print(f"shared / prefix=0: {t_shared / t_plain:.2f}x medians, {min(shared_times) / min(plain_times):.2f}x fastest runs   "
          f"(with the one-off prefix: {(t_shared + t_prefix) / t_plain:.2f}x)   "
          f"recomputed / prefix=0: {(t_recompute / m) / (t_plain / n):.1f}x   "
          f"max |loglik shared - recomputed| {diff:.1e}")


if __name__ == "__main__":
    main()
