"""Hand-made, internally consistent records of the quick suite, for the board tests.

Every number is chosen, not measured: scores are scaled so that the summary columns come out
at the values asked for (suite score, <bos> and knockout dependence, length robustness), and
every mean is the mean of the table it summarises, so `validate.problems(record) == []`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import sys
from pathlib import Path

from sinkbench.record.build import build_record, task_entry
from sinkbench.record.format import dumps
from sinkbench.grid.suite import SUITES
from sinkbench.record.validate import problems

SUITE = SUITES["quick"]
SWEEP = (64, 256, 1024)
TASK_OFFSETS = (-0.04, -0.02, 0.0, 0.02, 0.04)  # per accuracy task, summing to 0: the mean is `score`


def alpha_table(layers: int, heads: int, level: float, seed: int) -> list[list[float]]:
    """Attention to the first token per (layer, head): low in layer 0, near `level` deeper, some noise."""
    rng = random.Random(seed)
    table = []
    for layer in range(layers):
        depth = 0.2 if layer == 0 else 1.0
        table.append([round(min(1.0, max(0.0, level * depth + rng.uniform(-0.15, 0.15))), 4) for _ in range(heads)])
    return table


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _alpha_part(table: list[list[float]]) -> dict:
    flat = [v for row in table for v in row]
    return {
        "alpha_mean": _mean(flat),
        "alpha_by_layer": [_mean(row) for row in table],
        "alpha_by_head": table,
        "sink_rate": {f"{eps:g}": sum(v > eps for v in flat) / len(flat) for eps in (0.3, 0.8)},
    }


def _profile(table: list[list[float]], growth: float) -> dict:
    layers = len(table)
    points = []
    for index, T in enumerate(SWEEP):
        scaled = [[round(min(1.0, v * (1 + growth * index)), 6) for v in row] for row in table]
        part = _alpha_part(scaled)
        points.append({"T": T, "n_sequences": 4, "sink_rate": part["sink_rate"], "alpha_mean": part["alpha_mean"],
                       "alpha_by_layer": part["alpha_by_layer"], "alpha_by_head": scaled})
    overmixing = {"n_sequences": 8, "relative_change_by_layer": [0.1 * (i + 1) for i in range(layers)],
                  "representation_spread_by_layer": [1.0] * layers}
    return {
        "T": 64, "n_sequences": 100, "text_source": "synthetic", "bos": "keep", "eps": [0.3, 0.8],
        **_alpha_part(table),
        "first_k_mass": [0.5, 0.55, 0.6, 0.62],
        "massive_activations": {"ratio_by_layer": [10.0 * (i + 1) for i in range(layers)],
                                "top_position_by_layer": [0] * layers,
                                "fraction_at_first_token_by_layer": [0.9] * layers},
        "value_norm_ratio_by_layer": [],
        "learned_sink_mass_by_layer": None,
        "overmixing": {"with_bos": overmixing, "without_bos": {**overmixing, "relative_change_by_layer":
                                                               [0.2 * (i + 1) for i in range(layers)]}},
        "length_sweep": {"text_source": "synthetic", "points": points},
        "wall_time_s": 12.5,
    }


def _metric(value: float) -> dict:
    return {"value": value, "stderr": 0.01, "n": 100, "note": None}


def _conditions(score: float, bos_dependence: float, knockout_dependence: float, robustness: float,
                adds_bos: bool) -> list[dict]:
    accuracy = [t.name for t in SUITE.tasks if t.kind == "accuracy"]
    long_text = SUITE.long_text_task
    conditions = []
    for cell in SUITE.grid():
        spec = cell.condition
        factor = 1.0
        if spec.bos == "drop" and adds_bos:
            factor *= 1 - bos_dependence
        if spec.prefix_length:
            factor *= robustness
        if spec.knockout:
            factor *= 1 - knockout_dependence
        scores = {task: {"acc": _metric(round((score + offset) * factor, 9))}
                  for task, offset in zip(accuracy, TASK_OFFSETS) if task in cell.tasks}
        if long_text in cell.tasks:
            ppl = 20.0 if spec.window is None else (240.0 if spec.sink_keys == 0 else 22.0)
            scores[long_text] = {"word_perplexity": _metric(ppl * (1 + (1 - factor)))}
        twin = None
        if spec.bos == "drop" and not adds_bos:  # no <bos> to drop: the same tokens as keep
            twin = spec.name.replace("bos=drop", "bos=keep")
        conditions.append({
            "name": spec.name, "role": cell.role, "spec": spec.to_dict(), "tasks": list(cell.tasks), "identical_to": twin,
            "scores": scores, "sinks": {}, "first_tokens": [], "tokens_processed": 50_000 if twin is None else 0,
            "truncated_requests": 0, "wall_time_s": 10.0 if twin is None else 0.0, "link": {},
        })
    return conditions


def make_record(family: str = "gemma", model: str = "gemma-7b", revision: str | None = "r1",
                release_date: str | None = "2024-02-21", *, score: float = 0.6, bos_dependence: float = 0.3,
                knockout_dependence: float = 0.5, robustness: float = 0.9, alpha_level: float = 0.6,
                growth: float = 0.1, adds_bos: bool = True, layers: int = 4, heads: int = 4, seed: int = 0,
                alpha_by_head: list[list[float]] | None = None, weights_sha256: str | None = None,
                suite_version: str | None = None) -> dict:
    """A valid, complete quick-suite record whose summary columns follow from the arguments."""
    table = alpha_by_head or alpha_table(layers, heads, alpha_level, seed)
    layers, heads = len(table), len(table[0])
    tasks = {}
    for spec in SUITE.tasks:
        tasks[spec.name] = task_entry(spec, {spec.primary_metric: spec.kind == "accuracy"})
    record = build_record(
        model={
            "name": model, "source": "hub", "family": family, "architecture": "llama", "revision": revision,
            "weights_sha256": weights_sha256, "n_parameters": 1_000_000, "dtype": "float32",
            "n_layers": layers, "n_heads": heads, "n_kv_heads": heads, "max_context": 8192,
            "bos_token": "<bos>" if adds_bos else None, "bos_token_id": 2 if adds_bos else None,
            "adds_bos": adds_bos, "release_date": release_date,
        },
        provenance={
            "sinkbench_version": "0.1.0", "lm_eval_version": "0.4.13", "transformers_version": "5.24.0",
            "torch_version": "2.13.0", "python_version": "3.11.2", "device": "cpu",
            "date": "2025-01-01T00:00:00+00:00", "seed": 1234, "command": ["sinkbench", "run"], "limit": None,
            "batch_size": 8,
            "suite": {"name": "quick", "version": suite_version or SUITE.version, "custom_grid": False},
            "task_hashes": {name: hashlib.sha256(name.encode()).hexdigest() for name in tasks},
            "data_files": {}, "stress_prefix": None,
        },
        tasks=tasks,
        profile=_profile(table, growth),
        conditions=_conditions(score, bos_dependence, knockout_dependence, robustness, adds_bos),
        missing=[],
    )
    found = problems(record)
    assert found == [], found
    return record


_CACHE: dict[str, dict] = {}


def record(**options) -> dict:
    """make_record(**options), made once per test session (validation is the slow part); a fresh copy each call."""
    key = json.dumps(options, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = make_record(**options)
    return copy.deepcopy(_CACHE[key])


def write(record: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(record), encoding="utf-8")
    return path


def write_json(data, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# A small board: two families, releases in order, one without a <bos> (SmolLM-like).
BOARD = (
    dict(family="gemma", model="gemma-2b", revision="a1", release_date="2024-02-21", score=0.55,
         bos_dependence=0.6, knockout_dependence=0.7, alpha_level=0.7, seed=1),
    dict(family="gemma", model="gemma-7b", revision="b1", release_date="2024-02-21", score=0.68,
         bos_dependence=0.5, knockout_dependence=0.6, alpha_level=0.8, seed=2),
    dict(family="gemma", model="gemma-7b", revision="b2", release_date="2024-06-27", score=0.70,
         bos_dependence=0.45, knockout_dependence=0.55, alpha_level=0.75, seed=3),
    dict(family="smollm2", model="SmolLM2-135M", revision="c1", release_date="2024-11-01", score=0.42,
         bos_dependence=0.0, knockout_dependence=0.3, alpha_level=0.4, adds_bos=False, seed=4, growth=0.3),
    dict(family="smollm2", model="SmolLM2-360M", revision="d1", release_date="2024-11-01", score=0.48,
         knockout_dependence=0.35, alpha_level=0.5, adds_bos=False, seed=5, growth=0.25),
)


# A record whose family, model and revision hold everything that breaks Markdown, CSV, HTML and YAML.
HOSTILE_NAME = 'x|y\n<script>window.pwned=1</script> "q" \'s\' & =cmd'
HOSTILE = dict(family='fam"<i>|ly', model=HOSTILE_NAME, revision="r|1<b>", release_date="2024-05-05", score=0.5,
               seed=9)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `folder`, by relative path."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(Path(folder).rglob("*"))}


def run_cli(argv: list[str]) -> int:
    """sinkbench's main() once sinkbench/cli.py calls add_commands; until then the same parser and error handling."""
    import argparse

    from sinkbench import cli

    if "add_commands" in Path(cli.__file__).read_text(encoding="utf-8"):
        return cli.main([str(a) for a in argv])
    from sinkbench.board.cli import add_commands
    from sinkbench.errors import SinkbenchError

    parser = argparse.ArgumentParser(prog="sinkbench")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    try:
        return args.func(args)
    except SinkbenchError as err:
        print(f"sinkbench: error: {err}", file=sys.stderr)
        return 2
