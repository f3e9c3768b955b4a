"""Run a task suite over a grid of conditions: one model load, one results file per condition.

A finished condition's file is written atomically and skipped when the run is repeated, so an
interrupted grid resumes where it stopped and loses at most the condition in progress.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from sinkbench.conditions import Condition
from sinkbench.errors import SinkbenchError

DEFAULT_PREFIXES = (0, 1024)  # no stress, and a 1k-token distractor in front of every example


def default_tasks_dir() -> Path:
    """tasks/ of a source checkout, or the copy installed as the sinkbench_tasks package."""
    checkout = Path(__file__).resolve().parents[1] / "tasks"
    if checkout.is_dir():
        return checkout
    try:
        import sinkbench_tasks

        return Path(sinkbench_tasks.__file__).parent
    except ImportError:
        raise SinkbenchError("cannot find the sinkbench task configs; pass --include-path") from None


@dataclass(frozen=True)
class RunConfig:
    model: str
    out: Path
    tasks: tuple[str, ...] = ("sinkbench_quick",)
    conditions: tuple[Condition, ...] = field(default_factory=tuple)
    limit: int | None = None  # documents per task, for smoke runs
    batch_size: int = 8
    data_dir: str | None = None
    include_path: Path | None = None
    seed: int = 0
    bootstrap_iters: int = 1000  # standard errors; lm-eval's 100000 is slow for perplexity


def condition_grid(bos: list[str], prefix: list[int], window: int | None = None, sinks: list[int] = (0,),
                   knockout: str | None = None) -> tuple[Condition, ...]:
    """The cross product bos x prefix x sinks (sinks only with a window), same window/knockout."""
    sink_values = list(sinks) if window is not None else [None]
    return tuple(
        Condition.from_args(bos=b, prefix=p, window=window, sinks=k, knockout=knockout)
        for b, p, k in itertools.product(bos, prefix, sink_values)
    )


def slug(condition: Condition) -> str:
    return condition.name.replace("=", "-").replace(",", "_").replace(":", "-").replace("<", "").replace(">", "")


def condition_args(condition: Condition) -> dict:
    bos = f"replace:{condition.replace_token}" if condition.bos == "replace" else condition.bos
    return {"bos": bos, "prefix": condition.prefix, "window": condition.window, "sinks": condition.sinks,
            "knockout": condition.knockout}


def run_grid(config: RunConfig, log=print) -> list[dict]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from sinkbench.backend import SinkbenchLM
    from sinkbench.data import resolve_data_dir
    from sinkbench.models import load_model
    from sinkbench.files import write_json_atomic

    if not config.conditions:
        raise SinkbenchError("no conditions to run")
    data_dir = str(resolve_data_dir(config.data_dir))
    include = config.include_path or default_tasks_dir()
    manager = TaskManager(include_path=str(include), include_defaults=False,
                          metadata={"tokenizer": config.model, "data_dir": data_dir})
    unknown = [t for t in config.tasks if t not in manager.all_tasks]
    if unknown:
        raise SinkbenchError(f"unknown task(s): {', '.join(unknown)} (see `sinkbench tasks`)")
    config.out.mkdir(parents=True, exist_ok=True)
    loaded, documents = None, []
    for condition in config.conditions:
        path = config.out / f"{slug(condition)}.json"
        if path.exists():
            log(f"[{condition.name}] done already: {path}")
            documents.append(json.loads(path.read_text()))
            continue
        if loaded is None:
            log(f"loading {config.model} ...")
            loaded = load_model(config.model)
        sidecar = config.out / f"{slug(condition)}.sinks.jsonl"
        sidecar.unlink(missing_ok=True)  # rows of an interrupted attempt would be counted twice
        lm = SinkbenchLM(loaded=loaded, batch_size=config.batch_size, sidecar=str(sidecar), data_dir=data_dir,
                         **condition_args(condition))
        log(f"[{condition.name}] running {', '.join(config.tasks)}")
        start = time.time()
        result = lm_eval.simple_evaluate(
            model=lm, tasks=list(config.tasks), task_manager=manager, limit=config.limit, log_samples=False,
            bootstrap_iters=config.bootstrap_iters, random_seed=config.seed, numpy_random_seed=config.seed,
            torch_random_seed=config.seed,
        )
        document = {
            "condition": condition.name,
            "model": loaded.identity.to_dict(),
            "tasks": list(config.tasks),
            "limit": config.limit,
            "wall_time_s": round(time.time() - start, 1),
            **{key: result.get(key) for key in ("results", "groups", "group_subtasks", "higher_is_better",
                                                 "n-samples", "versions", "n-shot", "config")},
            "lm_eval_version": result.get("lm_eval_version"),
            "transformers_version": result.get("transformers_version"),
            "date": result.get("date"),
        }
        write_json_atomic(document, path)
        log(f"[{condition.name}] {document['wall_time_s']} s -> {path}")
        documents.append(document)
    return documents


SKIP_METRICS = {"alias", "name", "sample_len", "sample_count"}


def summary_table(documents: list[dict]):
    """A DataFrame: one row per condition, one column per (task, metric)."""
    import pandas as pd

    rows = {}
    for document in documents:
        row = {}
        for task, metrics in (document.get("results") or {}).items():
            for key, value in metrics.items():
                name = key.split(",")[0]
                if name in SKIP_METRICS or name.endswith("_stderr") or not isinstance(value, (int, float)):
                    continue
                row[(task, name)] = value
        row[("", "wall_s")] = document.get("wall_time_s")
        rows[document["condition"]] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.sort_index(axis=1)
