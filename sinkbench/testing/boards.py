"""Hand-made boards: many valid records of several families, model sizes, releases, suites and devices, filed on
a board folder (sinkbench.testing.records makes each record). For the board's tests and bench/board_scale.py."""

from __future__ import annotations

import random
import time
from pathlib import Path

from sinkbench.board.store import submission_path
from sinkbench.record.columns import COLUMNS_BY_NAME, Context
from sinkbench.record.format import dumps
from sinkbench.record.types import Record
from sinkbench.testing import records

# (family, tokenizer adds <bos>, model sizes as (name, layers, heads)); releases are made per model.
FAMILIES = (
    ("gemma", True, (("gemma-2b", 18, 8), ("gemma-7b", 28, 16))),
    ("llama", True, (("llama-1b", 16, 32), ("llama-3b", 28, 24), ("llama-8b", 32, 32))),
    ("mistral", True, (("mistral-7b", 32, 32),)),
    ("olmo", True, (("olmo-1b", 16, 16), ("olmo-7b", 32, 32))),
    ("phi", False, (("phi-mini", 32, 32),)),
    ("pythia", False, (("pythia-160m", 12, 12), ("pythia-410m", 24, 16), ("pythia-1b", 16, 8))),
    ("qwen2", False, (("qwen2-0.5b", 24, 14), ("qwen2-1.5b", 28, 12), ("qwen2-7b", 28, 28))),
    ("smollm2", False, (("SmolLM2-135M", 30, 9), ("SmolLM2-360M", 32, 15))),
)
DEVICES = (("cpu", 1.0), ("cuda (NVIDIA H100 80GB)", 0.05), ("cuda (NVIDIA A10G)", 0.2))
STANDARD_EVERY = 5  # one record in five is of the standard suite


def plan(count: int) -> list[dict]:
    """`count` record specifications: families, model sizes, releases a few months apart, suites, devices."""
    specs, index = [], 0
    while len(specs) < count:
        for family, adds_bos, models in FAMILIES:
            for name, layers, heads in models:
                if len(specs) == count:
                    return specs
                release = index // sum(len(m) for _, _, m in FAMILIES)  # the how-many-th release of each model
                rng = random.Random(f"{family}-{name}-{release}")
                specs.append(dict(
                    family=family, model=name, revision=f"v{release + 1}",
                    release_date=f"{2023 + release // 12}-{release % 12 + 1:02d}-15",
                    suite="standard" if index % STANDARD_EVERY == STANDARD_EVERY - 1 else "quick",
                    score=round(rng.uniform(0.35, 0.8), 3), adds_bos=adds_bos,
                    bos_dependence=round(rng.uniform(0.05, 0.6), 3) if adds_bos else 0.0,
                    knockout_dependence=round(rng.uniform(0.0, 0.6), 3), robustness=round(rng.uniform(0.7, 1.0), 3),
                    alpha_level=round(rng.uniform(0.2, 0.85), 3), growth=round(rng.uniform(0.0, 0.3), 3),
                    layers=layers, heads=heads, seed=index,
                    retrieval=tuple(sorted((round(rng.uniform(0.0, 1.0), 2) for _ in range(7)), reverse=True)),
                    device=DEVICES[index % len(DEVICES)]))
                index += 1
    return specs


def make(spec: dict, realistic: bool = True) -> dict:
    """One record of the plan; realistic=False: sinkbench.testing.records' small default sizes (a board for a browser test)."""
    spec = dict(spec)
    device, speed = spec.pop("device")
    if not realistic:
        sizes = {}
    elif spec["suite"] == "quick":
        sizes = dict(docs=700, sweep_docs=150, retrieval_docs=12, texts=100)
    else:  # a real standard record at these sizes would be ~900 KB; see the module docstring
        sizes = dict(docs=120, sweep_docs=60, retrieval_docs=8, texts=40)
    spec["layers"], spec["heads"] = min(spec["layers"], 30), min(spec["heads"], 16)  # keeps the files readable
    record = records.make_record(**spec, **sizes, max_context=32768 if spec["suite"] == "standard" else 8192,
                                 check=False)
    return on_device(record, device, speed)


def on_device(record: dict, device: str, speed: float) -> dict:
    """The record as if run on `device`, `speed` times the CPU's wall time; the machine columns follow."""
    record["provenance"]["device"] = device
    for condition in record["conditions"]:
        condition["wall_time_s"] = round(condition["wall_time_s"] * speed, 4)
    record["profile"]["wall_time_s"] = round(record["profile"]["wall_time_s"] * speed, 4)
    typed = Record.from_json(record)
    ctx = Context(typed, bootstrap=False)
    for name in ("throughput", "wall_time_s"):
        entry = COLUMNS_BY_NAME[name].compute(typed, ctx)
        record["summary"][name] = {**record["summary"][name], **{k: v for k, v in entry.items() if k != "replicates"}}
    return record


def generate(board: Path, count: int, distinct: int | None = None, realistic: bool = True) -> float:
    """File `count` records on `board`; with `distinct`, only that many are made and the rest reuse their numbers
    under their own identity (a faster board for the browser test). Returns the seconds it took."""
    started = time.perf_counter()
    made: list[dict] = []
    for index, spec in enumerate(plan(count)):
        if distinct is None or index < distinct:
            record = make(spec, realistic)
            made.append(record)
        else:
            record = made[index % distinct]
            record = {**record, "model": {**record["model"], "name": spec["model"], "family": spec["family"],
                                          "revision": spec["revision"], "release_date": spec["release_date"]}}
        (board / submission_path(record)).parent.mkdir(parents=True, exist_ok=True)
        (board / submission_path(record)).write_text(dumps(record), encoding="utf-8")
        if (index + 1) % 50 == 0:
            print(f"  {index + 1} records filed ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started
