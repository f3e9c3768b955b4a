"""Benchmark: `--model sinkbench` against stock lm-eval `hf`, side by side, on the same loaded model.

    python bench/eval_speed.py                                   # SmolLM2-135M, every quick task type
    python bench/eval_speed.py --model gemma3-270m --tasks lambada,arc_easy
    python bench/eval_speed.py --budgets 1024,2048,4096,8192     # sinkbench only: tokens per pass

In one process, one loaded model, the same documents, the two backends in turns (`--repeats`
rounds, medians reported). Per task type: seconds per document, the speed-up, tokens fed to the
model (padding included) and the padding share, and the achieved FLOP rate of the model's
matrix products and attention over the tokens fed, against torch's fp32 GEMM rate measured here
with the model's own MLP shapes. Both backends score with <bos> as the tokenizer adds it, so
their log-likelihoods must agree (printed: the largest difference, and whether every
accuracy-deciding answer is the same).

FLOPs counted per forward pass (what the kernels are asked to do):
* matrix products: 2 x (weights of every linear layer but the LM head) per token fed, plus
  2 x hidden x vocabulary per position whose logits are computed;
* attention: 4 x heads x head_dim per (query, visible key) pair in each layer, queries being the
  tokens fed, keys the causal span of the row plus any shared prefix before it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import lm_eval
import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from sinkbench.harness.backend import BackendOptions, SinkbenchLM
from sinkbench.harness.tasklist import default_tasks_dir
from sinkbench.measure.models import load_model
from sinkbench.run.plan import matrix_rate

TASKS = {  # task type -> (task, default documents)
    "lambada": ("sinkbench_lambada", 300),
    "piqa": ("sinkbench_piqa", 300),
    "arc_easy": ("sinkbench_arc_easy", 300),
    "copa": ("sinkbench_copa", 100),
    "passkey": ("sinkbench_passkey_1024", 16),
}


class Meter:
    """Counts what the model is asked to compute: tokens fed, padding, logit positions, FLOPs."""

    def __init__(self, model, pad_id: int | None):
        config = model.config
        self.model, self.pad_id = model, pad_id
        head = model.get_output_embeddings()
        self.linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
        self.head = head.weight.numel()  # hidden x vocabulary
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.attention_unit = 4 * config.num_attention_heads * head_dim
        self.layers = config.num_hidden_layers
        self.reset()
        self.handles = [model.register_forward_pre_hook(self._on_forward, with_kwargs=True),
                        head.register_forward_hook(self._on_head)]

    def reset(self):
        self.fed = self.padding = self.logit_positions = 0
        self.attention_pairs = 0

    def _on_forward(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None or kwargs.get("past_key_values") is not None and ids.shape[1] == 1:
            return
        batch, width = ids.shape
        positions = kwargs.get("position_ids")
        prefix = int(positions.min()) if positions is not None else 0  # a shared prefix before the row
        self.fed += batch * width
        if self.pad_id is not None and positions is None:  # stock hf pads on the right with 0s
            trailing = (ids.flip(1) == 0).int().cumprod(1).sum().item()
            self.padding += trailing
        self.attention_pairs += batch * (prefix * width + width * (width + 1) // 2)

    def _on_head(self, module, args, output):
        self.logit_positions += output.shape[:-1].numel()

    @property
    def flops(self) -> float:
        matmul = 2 * self.linear * self.fed + 2 * self.head * self.logit_positions
        attention = self.attention_unit * self.layers * self.attention_pairs
        return matmul + attention


def gemm_rate(model, tokens: int = 4096, repeats: int = 5) -> float:
    """fp32 GEMM FLOP/s of the model's MLP shape: sinkbench.run.plan.matrix_rate, at 4096 tokens."""
    return matrix_rate(model, tokens, repeats)


def run_once(lm, manager, task, limit, meter):
    meter.reset()
    start = time.perf_counter()
    result = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=manager, limit=limit, bootstrap_iters=0,
                                     log_samples=True)
    seconds = time.perf_counter() - start
    samples = sorted(result["samples"][task], key=lambda s: s["doc_id"])
    logliks = [float(r[0][0]) for s in samples for r in s["resps"]]
    outcomes = [s.get("acc") for s in samples]
    counts = {"fed": meter.fed, "padding": meter.padding, "flops": meter.flops, "logit_positions": meter.logit_positions}
    return seconds, counts, logliks, outcomes, result["results"][task]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"task types: {', '.join(TASKS)}")
    parser.add_argument("--limit", type=int, default=None, help="documents per task (default: per task type)")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of both backends, in turns (medians reported)")
    parser.add_argument("--batch-size", type=int, default=8, help="stock hf's batch size")
    parser.add_argument("--budgets", default=None, help="comma-separated max_batch_tokens: time sinkbench alone at each")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    loaded = load_model(args.model)
    manager = TaskManager(include_path=str(default_tasks_dir()), include_defaults=False, metadata={"tokenizer": args.model})
    meter = Meter(loaded.model, loaded.tokenizer.pad_token_id)
    peak = gemm_rate(loaded.model)
    print(f"{args.model}: fp32 GEMM rate (MLP shape, 4096 tokens) {peak / 1e9:.0f} GFLOP/s; torch threads {torch.get_num_threads()}"
          " (measured again before each task type; the best counts)", flush=True)
    report = {"model": args.model, "gemm_flops_per_s": peak, "tasks": {}}
    for kind in args.tasks.split(","):
        peak = max(peak, gemm_rate(loaded.model))  # a busy spell of the machine must not lower the bar
        task, default_limit = TASKS[kind]
        limit = args.limit or default_limit
        if args.budgets:
            for budget in map(int, args.budgets.split(",")):
                ours = SinkbenchLM(loaded=loaded, options=BackendOptions.from_model_args(max_batch_tokens=budget))
                seconds, counts, *_ = run_once(ours, manager, task, limit, meter)
                print(f"{kind:9} budget {budget:6}: {seconds / limit * 1000:7.1f} ms/doc, fed {counts['fed']}, "
                      f"padding {ours.scorer.counts.padding / max(1, counts['fed']):.1%}, "
                      f"{counts['flops'] / seconds / peak:.2f} of GEMM", flush=True)
            continue
        stock = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=args.batch_size)
        timings = {"hf": [], "sinkbench": []}
        for _ in range(args.repeats):
            for name in ("hf", "sinkbench"):
                lm = stock if name == "hf" else SinkbenchLM(loaded=loaded)
                seconds, counts, logliks, outcomes, metrics = run_once(lm, manager, task, limit, meter)
                if name == "sinkbench":
                    counts["padding"] = lm.scorer.counts.padding
                timings[name].append((seconds, counts, logliks, outcomes, metrics))
        line = {"documents": limit}
        for name, runs in timings.items():
            seconds = statistics.median(r[0] for r in runs)
            counts = runs[0][1]
            line[name] = {"s_per_doc": seconds / limit, "seconds": seconds, "tokens_fed": counts["fed"],
                          "padding_share": counts["padding"] / max(1, counts["fed"]),
                          "logit_positions": counts["logit_positions"],
                          "flops_per_s": counts["flops"] / seconds, "of_gemm": counts["flops"] / seconds / peak,
                          "acc": runs[0][4].get("acc,none")}
        hf_logliks, ours_logliks = timings["hf"][0][2], timings["sinkbench"][0][2]
        line["max_loglik_difference"] = max(abs(a - b) for a, b in zip(hf_logliks, ours_logliks))
        line["same_outcomes"] = timings["hf"][0][3] == timings["sinkbench"][0][3]
        line["speedup"] = line["hf"]["seconds"] / line["sinkbench"]["seconds"]
        # What hf computes more: logits at every position, every choice's copy of the context.
        line["work_ratio"] = (line["hf"]["flops_per_s"] * line["hf"]["seconds"]) / (
            line["sinkbench"]["flops_per_s"] * line["sinkbench"]["seconds"])
        report["tasks"][kind] = line
        print(f"{kind:9} hf {line['hf']['s_per_doc'] * 1000:7.1f} ms/doc ({line['hf']['of_gemm']:.2f} of GEMM, "
              f"fed {line['hf']['tokens_fed']}, padding {line['hf']['padding_share']:.1%}) | sinkbench "
              f"{line['sinkbench']['s_per_doc'] * 1000:7.1f} ms/doc ({line['sinkbench']['of_gemm']:.2f} of GEMM, "
              f"fed {line['sinkbench']['tokens_fed']}, padding {line['sinkbench']['padding_share']:.1%}) | "
              f"{line['speedup']:.2f}x; acc {line['hf']['acc']} / {line['sinkbench']['acc']}; "
              f"max |loglik diff| {line['max_loglik_difference']:.1e}; same outcomes: {line['same_outcomes']}", flush=True)
    report["gemm_flops_per_s"] = peak
    print(f"fp32 GEMM rate, best of the run: {peak / 1e9:.0f} GFLOP/s; against it:")
    for kind, line in report["tasks"].items():
        for name in ("hf", "sinkbench"):
            line[name]["of_gemm"] = line[name]["flops_per_s"] / peak
        print(f"  {kind:9} hf {line['hf']['of_gemm']:.2f} of GEMM, sinkbench {line['sinkbench']['of_gemm']:.2f}; "
              f"{line['speedup']:.2f}x; work ratio (hf FLOPs / sinkbench FLOPs) {line['work_ratio']:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
