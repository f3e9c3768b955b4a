"""Hand-made, internally consistent records of a suite, for the board tests and the scale benchmark.

Every number is chosen, not measured. Each document has a fixed difficulty u in (0, 1) (an even
grid, shuffled by the seed); under a condition with accuracy p a document is right when u < p,
so conditions of one record are paired the way real ones are (a document lost under <bos>
removal is one that was hard), and a task's accuracy is round(p * n) / n exactly. Scores,
intervals and the summary are computed by sinkbench itself, and the record is assembled by its one
writer (sinkbench.record.build, the typed parts of sinkbench.record.types), the run's: a twin
condition carries its twin's numbers as the run carries them (types.Condition.identical). So
`validate.problems(record) == []`. make_record returns the record's JSON form, for tests to edit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random

import numpy as np

from sinkbench.grid import catalog
from sinkbench.grid.conditions import BOS_DROP, BOS_DROP_PREFIX, KNOCKOUT, PREFIX, WINDOW_ONLY, WINDOW_SINKS
from sinkbench.grid.suite import SUITES
from sinkbench.record import stats
from sinkbench.record.build import build_record, task_entry
from sinkbench.record.columns import compute_summary
from sinkbench.record.link import sink_correctness_link
from sinkbench.record.scores import metric_estimate
from sinkbench.record.types import (Condition, Documents, Estimate, FirstToken, Link, Model, Outcome, Profile,
                                    Provenance, TaskSinks)
from sinkbench.record.validate import problems

TASK_OFFSETS = (-0.04, 0.0, 0.04, -0.02, 0.02, -0.03, 0.03, 0.0)  # per accuracy task; the first three sum to 0
ALPHA_CAP = 1 - 0.05  # a hand-made alpha stays this far inside [0, 1], so that a small shift keeps it there
PERPLEXITY = {"baseline": 20.0, WINDOW_ONLY: 240.0, WINDOW_SINKS: 22.0, KNOCKOUT: 45.0, BOS_DROP: 60.0}


def _hash(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _difficulties(n: int, rng: random.Random) -> list[float]:
    grid = [(i + 0.5) / n for i in range(n)]
    rng.shuffle(grid)
    return grid


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _alpha_table(layers: int, heads: int, level: float, rng: random.Random) -> list[list[float]]:
    """Attention to the first token per (layer, head): low in layer 0, near `level` deeper, some noise
    (kept 0.05 inside [0, 1], so that a small shift keeps it there)."""
    table = []
    for layer in range(layers):
        depth = 0.2 if layer == 0 else 1.0
        table.append([round(min(ALPHA_CAP, max(1 - ALPHA_CAP, level * depth + rng.uniform(-0.15, 0.15))), 4)
                      for _ in range(heads)])
    return table


def _alpha_part(table: list[list[float]], texts: int, rng: random.Random, source: str) -> dict:
    flat = [v for row in table for v in row]
    mean = _mean(flat)
    spread = [rng.uniform(-0.02, 0.02) for _ in range(texts)]
    shift = _mean(spread)
    per_alpha = [round(min(1.0, max(0.0, mean + s - shift)), 6) for s in spread]
    rates = {}
    per_rates = {}
    for eps in (0.3, 0.5, 0.8):
        rate = sum(v > eps for v in flat) / len(flat)
        rates[f"{eps:g}"] = rate
        per_rates[f"{eps:g}"] = [rate] * texts
    return {"sink_rate": rates, "alpha_mean": _mean(per_alpha), "alpha_by_layer": [_mean(row) for row in table],
            "alpha_by_head": table, "per_text": {"hashes": [_hash(source, i) for i in range(texts)], "alpha_mean": per_alpha,
                                                 "sink_rate": per_rates}}


def _fix_table(part: dict) -> dict:
    """Shift the table so its mean is exactly the per-text mean (validate checks both)."""
    table = part["alpha_by_head"]
    delta = part["alpha_mean"] - _mean(v for row in table for v in row)
    fixed = [[v + delta for v in row] for row in table]
    part["alpha_by_head"] = fixed
    part["alpha_by_layer"] = [_mean(row) for row in fixed]
    return part


def _profile(table, growth: float, rng: random.Random, texts: int, sweep: tuple[int, ...], max_context: int) -> dict:
    layers = len(table)
    points = []
    for index, T in enumerate(t for t in sweep if t <= max_context):
        scaled = [[round(min(ALPHA_CAP, v * (1 + growth * index)), 6) for v in row] for row in table]
        part = _fix_table(_alpha_part(scaled, 8, rng, f"sweep{T}"))
        points.append({"T": T, "n_sequences": 8, **part, "alpha_mean_by_type": {"full": part["alpha_mean"]},
                       "queries_seeing_first_by_layer": [float(T)] * layers})
    overmixing = {"n_sequences": 8, "relative_change_by_layer": [0.1 * (i + 1) for i in range(layers)],
                  "representation_spread_by_layer": [1.0] * layers,
                  "last_layer_by_sequence": [0.1 * layers + d for d in (-0.02, -0.01, 0.0, 0.01, 0.02, -0.01, 0.0, 0.01)]}
    without = copy.deepcopy(overmixing)
    without["relative_change_by_layer"] = [0.2 * (i + 1) for i in range(layers)]
    without["last_layer_by_sequence"] = [0.2 * layers + d for d in (-0.02, -0.01, 0.0, 0.01, 0.02, -0.01, 0.0, 0.01)]
    main = _fix_table(_alpha_part(table, texts, rng, "lambada"))
    random_part = _fix_table(_alpha_part([[round(v * 0.9, 6) for v in row] for row in table], texts, rng, "random"))
    ratio = [[10.0 * (i + 1) + rng.uniform(-1, 1) for i in range(layers)] for _ in range(texts)]
    return {
        "T": 64, "n_sequences": texts, "text_source": "synthetic", "bos": "keep", "eps": [0.3, 0.5, 0.8], "mean_tokens": 64.0,
        "first_tokens": [{"id": 2, "token": "<bos>", "count": texts}], **main,
        "first_k_mass": [0.5, 0.55, 0.6, 0.62],
        "strongest_heads": [{"layer": 1, "head": 0, "alpha": min(1.0, max(0.0, table[1][0]))}],
        "massive_activations": {"ratio_by_layer": [_mean(row[i] for row in ratio) for i in range(layers)],
                                "top_position_by_layer": [0] * layers, "fraction_at_first_token_by_layer": [0.9] * layers,
                                "ratio_by_text": [[round(v, 4) for v in row] for row in ratio]},
        "value_norm_ratio_by_layer": [0.5] * layers, "learned_sink_mass_by_layer": None,
        "overmixing": {"with_bos": overmixing, "without_bos": without}, "per_text": main["per_text"],
        "length_sweep": {"text_source": "synthetic", "points": points}, "wall_time_s": 12.5,
        "layers": [{"index": i, "type": "full", "span": None, "learned_sink": False, "queries_seeing_first": 64.0}
                   for i in range(layers)],
        "alpha_mean_by_type": {"full": main["alpha_mean"]},
        "random_tokens": {"T": 64, "n_sequences": texts, "seed": 0, **random_part,
                          "alpha_mean_by_type": {"full": random_part["alpha_mean"]}},
    }


def _accuracy(base: float, cell, args: dict, lengths: tuple[int, ...]) -> float:
    """The accuracy a condition of the grid has, from the record's chosen summary values."""
    factor = 1.0
    spec = cell.condition
    if spec.bos == "drop" and args["adds_bos"]:
        factor *= 1 - args["bos_dependence"]
    if spec.prefix_length:
        step = sorted(lengths).index(spec.prefix_length) + 1
        factor *= 1 - (1 - args["robustness"]) * step / len(lengths)
    if spec.knockout:
        factor *= 1 - args["knockout_dependence"]
    return min(1.0, max(0.0, base * factor))


def _sinks(layers: int, alpha: float, n: int, tokens: float, text_start: bool) -> dict:
    return {"n_requests": n, "alpha_mean": alpha, "alpha_by_layer": [alpha] * layers,
            "queries_seeing_first_by_layer": [n * 4] * layers,
            "text_start_by_layer": [alpha / 4] * layers if text_start else None,
            "sink_rate": {"0.3": float(alpha > 0.3), "0.5": float(alpha > 0.5), "0.8": float(alpha > 0.8)},
            "first_k_mass": [alpha, alpha + 0.02, alpha + 0.04, alpha + 0.05], "mean_tokens": tokens, "max_tokens": int(tokens * 2)}


DEFAULT_WEIGHTS = {"format": "safetensors", "quantization": None, "tensor_types": ["F32"], "file": "model.safetensors",
                   "checkpoint": None, "basename": None, "size_label": None, "finetune": None, "base_model": None}


def make_record(family: str = "gemma", model: str = "gemma-7b", revision: str | None = "r1",
                release_date: str | None = "2024-02-21", *, suite: str = "quick", score: float = 0.6,
                bos_dependence: float = 0.3, knockout_dependence: float = 0.5, robustness: float = 0.9,
                alpha_level: float = 0.6, growth: float = 0.1, adds_bos: bool = True, layers: int = 4, heads: int = 4,
                seed: int = 0, docs: int = 40, sweep_docs: int = 20, retrieval_docs: int = 8, texts: int = 20,
                retrieval: tuple[float, ...] = (1.0, 19 / 20, 0.9, 0.75, 0.6, 0.4, 0.2), max_context: int = 8192,
                weights_sha256: str | None = None, suite_version: str | None = None, weights: dict | None = None,
                check: bool = True) -> dict:
    """A valid, complete record of a suite whose numbers follow from the arguments (see the module docstring)."""
    plan = SUITES[suite]
    args = {"adds_bos": adds_bos, "bos_dependence": bos_dependence, "knockout_dependence": knockout_dependence,
            "robustness": robustness}
    rng = random.Random(f"record-{seed}")
    tasks, lists, difficulty = {}, {}, {}
    accuracy = [t for t in plan.tasks if t.kind == catalog.ACCURACY]
    for spec in plan.tasks:
        higher = {spec.primary_metric: spec.kind != catalog.PERPLEXITY}
        n = docs if spec.kind == catalog.ACCURACY else retrieval_docs if spec.kind == catalog.RETRIEVAL else stats.MIN_UNITS
        if spec.kind == catalog.RETRIEVAL and spec.retrieval[1] + int(adds_bos) > max_context:
            n = 0  # beyond the context: never scored
        ids = list(range(n))
        lists[spec.name] = {"ids": ids, "hashes": [_hash(spec.name, i) for i in ids],
                            "words": [700 + 10 * i for i in ids] if spec.kind == catalog.PERPLEXITY else None,
                            "bytes": [4000 + 50 * i for i in ids] if spec.kind == catalog.PERPLEXITY else None}
        difficulty[spec.name] = _difficulties(n, random.Random(f"{seed}-{spec.name}")) if n else []
        if spec.kind == catalog.PERPLEXITY:
            higher = {"word_perplexity": False, "byte_perplexity": False, "bits_per_byte": False}
        tasks[spec.name] = task_entry(spec, higher, Documents(**lists[spec.name]))
    conditions = []
    for cell in plan.grid():
        spec = cell.condition
        twin = None
        if spec.bos == "drop" and not adds_bos:  # no <bos> to drop: the same tokens as keep
            twin = spec.name.replace("bos=drop", "bos=keep")
        fixed = int(adds_bos and spec.bos != "drop") + spec.prefix_length
        scores, outcomes, link, sinks, skipped = {}, {}, {}, {}, {}
        alpha_base = alpha_level * (0.05 if (spec.bos == "drop" and adds_bos and not spec.prefix_length) else
                                    0.0 if spec.knockout else 1.0 / (1 + spec.prefix_length / 2048))
        for task in cell.tasks:
            kind = plan.task(task).kind
            n = len(lists[task]["ids"])
            if cell.limit is not None:
                n = min(n, cell.limit if kind == catalog.ACCURACY else n)
            if spec.prefix_length and kind == catalog.ACCURACY:
                n = min(n, sweep_docs)
            if n == 0 or (spec.prefix_length and spec.prefix_length + 200 > max_context):
                skipped[task] = f"beyond the model's context: {max_context} tokens"
                continue
            u = difficulty[task][:n]
            alpha = [round(min(1.0, max(0.0, alpha_base + 0.1 * (x - 0.5))), 6) for x in u]
            outcome: dict = {"n": n, "alpha": alpha}
            if fixed:
                outcome["text_start"] = [round(a / 4, 6) for a in alpha]
            if kind == catalog.PERPLEXITY:
                ppl = PERPLEXITY.get(cell.role, 20.0 * (1 + spec.prefix_length / 8192))
                words = lists[task]["words"][:n]
                outcome["loglik"] = [round(-w * math.log(ppl) * (1 + 0.05 * (x - 0.5)), 6) for w, x in zip(words, u)]
                ll = outcome["loglik"]
                sizes_w, sizes_b = np.array(words, dtype=float), np.array(lists[task]["bytes"][:n], dtype=float)
                scores[task] = {name: metric_estimate(name, None, np.array(ll), sizes, stats.seed_for(seed, task, name))
                                for name, sizes in (("word_perplexity", sizes_w), ("byte_perplexity", sizes_b),
                                                    ("bits_per_byte", sizes_b))}
            else:
                if kind == catalog.RETRIEVAL:
                    length = plan.task(task).retrieval[1]
                    p = retrieval[min(len(retrieval) - 1, [512 * 2 ** i for i in range(8)].index(length))]
                else:
                    offset = TASK_OFFSETS[[t.name for t in accuracy].index(task) % len(TASK_OFFSETS)]
                    p = _accuracy(score + offset, cell, args, plan.prefix_lengths)
                outcome["acc"] = [int(x < p) for x in u]
                scores[task] = {"acc": stats.proportion(outcome["acc"])}
                link[task] = {"metric": "acc", **sink_correctness_link(dict(enumerate(outcome["acc"])),
                                                                      dict(enumerate(alpha)), seed=seed)}
            outcomes[task] = outcome
            sinks[task] = _sinks(layers, _mean(alpha), n, 80.0 + spec.prefix_length, fixed > 0)
        computed = twin is None and len(skipped) < len(cell.tasks)
        if twin is not None:  # carried over as `sinkbench run` carries a twin's numbers
            conditions.append(next(c for c in conditions if c.name == twin).identical(spec.name, cell.role, spec,
                                                                                      list(cell.tasks)))
            continue
        conditions.append(Condition(
            name=spec.name, role=cell.role, spec=spec, tasks=list(cell.tasks), identical_to=None, skipped=skipped,
            scores={t: {m: Estimate.from_json(e) for m, e in by.items()} for t, by in scores.items()},
            outcomes={t: Outcome.from_json(o) for t, o in outcomes.items()},
            sinks={t: TaskSinks.from_json(v) for t, v in sinks.items()},
            first_tokens=[FirstToken(id=2, token="<bos>", count=10)] if fixed else [],
            tokens_processed=50_000 if computed else 0, truncated_requests=0,
            wall_time_s=10.0 if computed else 0.0, link={t: Link.from_json(v) for t, v in link.items()},
        ))
    table = _alpha_table(layers, heads, alpha_level, rng)
    record = build_record(
        model=Model.from_json({
            "name": model, "source": "hub", "family": family, "architecture": "LlamaForCausalLM", "revision": revision,
            "weights_sha256": weights_sha256, "n_parameters": 1_000_000, "dtype": "float32",
            "n_layers": layers, "n_heads": heads, "n_kv_heads": heads, "max_context": max_context,
            "bos_token": "<bos>" if adds_bos else None, "bos_token_id": 2 if adds_bos else None,
            "adds_bos": adds_bos, "release_date": release_date,
            # `weights`: a describe_weights() dict (schema 3.0 requires one); by default float32 safetensors
            "weights": weights if weights is not None else DEFAULT_WEIGHTS, "attention_implementation": "sinkbench",
        }),
        provenance=Provenance.from_json({
            "sinkbench_version": "0.1.0", "lm_eval_version": "0.4.13", "transformers_version": "5.24.0",
            "torch_version": "2.13.0", "python_version": "3.11.7", "device": "cpu",
            "date": "2025-01-01T00:00:00+00:00", "model_load_s": 15.0, "seed": 1234,
            "command": ["sinkbench", "run", "--model", model], "limit": None, "batch_size": None, "max_batch_tokens": 1024,
            "suite": {"name": suite, "version": suite_version or plan.version, "custom_grid": False},
            "task_hashes": {name: hashlib.sha256(name.encode()).hexdigest() for name in tasks},
            "data_files": {}, "stress_prefix": None,
        }),
        tasks=tasks,
        profile=Profile.from_json(_profile(table, growth, rng, texts, plan.profile.sweep_lengths, max_context)),
        conditions=conditions,
        missing=[],
    ).to_json()
    if check:
        found = problems(record)
        assert found == [], found[:3]
    return record


def resummarised(record: dict) -> dict:
    """The summary of a record's JSON form, recomputed from its numbers, as JSON (after a test edited them)."""
    return {name: entry.to_json() for name, entry in compute_summary(record).items()}


_CACHE: dict[str, dict] = {}


def record(**options) -> dict:
    """make_record(**options), made once per test session; a fresh copy each call."""
    key = json.dumps(options, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = make_record(**options)
    return copy.deepcopy(_CACHE[key])


__all__ = ["make_record", "record", "resummarised", "BOS_DROP_PREFIX", "PREFIX"]
