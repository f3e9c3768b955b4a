"""`sinkbench run`: a suite's condition grid and sink profile with one model load, into one record.

The results folder holds `run.json` (what this folder is for: model, suite, settings), one
`cond-<condition>.json` per finished condition, `profile.json`, per-request sidecars and, at the
end, `record.json`. Every file is written atomically as soon as its part is done, so a run that
is stopped at any point and started again continues and loses nothing. A folder that belongs to
another model, suite, setting or sinkbench version is refused (`--force` starts it afresh).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sinkbench
from sinkbench.errors import SinkbenchError
from sinkbench.run.results import condition_document, identical_document, record_entry
from sinkbench.grid.suite import GridCell, Suite, TaskSpec, get_suite

MANIFEST = "run.json"
OUR_FILES = (MANIFEST, "profile.json", "record.json", "cond-*.json", "cond-*.sinks.jsonl*")


def default_tasks_dir() -> Path:
    """tasks/ of a source checkout, or the copy installed as the sinkbench_tasks package."""
    checkout = Path(__file__).resolve().parents[2] / "tasks"
    if (checkout / "groups" / "sinkbench_quick.yaml").is_file():  # not another package's tasks/
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
    suite: str = "quick"
    cells: tuple[GridCell, ...] | None = None  # None: the suite's own grid
    limit: int | None = None  # documents per task, for smoke runs
    batch_size: int = 8
    data_dir: str | None = None
    include_path: Path | None = None
    device: str = "cpu"
    dtype: str = "float32"
    family: str | None = None
    release_date: str | None = None
    force: bool = False
    profile: bool = True
    seed: int = 0
    bootstrap_iters: int = 1000  # standard errors; lm-eval's 100000 is slow for perplexity
    command: tuple[str, ...] = field(default_factory=tuple)


def slug(name: str) -> str:
    return "cond-" + name.replace("=", "-").replace(",", "_").replace(":", "-").replace("<", "").replace(">", "").replace("/", "-")


# ---- the results folder -----------------------------------------------------------------


def _manifest(config: RunConfig, suite: Suite) -> dict:
    """What must be equal for a folder's finished parts to belong to this run."""
    return {"sinkbench_version": sinkbench.__version__, "model": config.model, "suite": suite.name,
            "suite_version": suite.version, "limit": config.limit, "dtype": config.dtype, "device": config.device,
            "seed": config.seed}


def prepare_folder(config: RunConfig, suite: Suite) -> dict:
    """Make `out` ready: writable, and empty or holding this same run's parts. Returns the manifest."""
    from sinkbench.files import write_json_atomic

    out = config.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):  # one per process: ranks check at the same time
            pass
    except OSError as err:
        raise SinkbenchError(f"cannot write results to {out}: {err.strerror or err}") from None
    wanted = _manifest(config, suite)
    if _rank() != 0:
        return wanted  # rank 0 checks and writes the folder; other ranks would race it
    existing = out / MANIFEST
    ours = sorted({p for pattern in OUR_FILES for p in out.glob(pattern)})
    if config.force:
        for path in ours:
            path.unlink()
    elif existing.is_file():
        try:
            held = json.loads(existing.read_text())
        except ValueError:
            raise SinkbenchError(f"{existing} is damaged; pass --force to start this folder afresh") from None
        differ = [k for k in wanted if held.get(k) != wanted[k]]
        finished = any(out.glob("cond-*.json")) or (out / "profile.json").exists()
        if differ and not finished:  # a run that failed before finishing anything: nothing to keep
            held = {}
        elif differ:
            what = ", ".join(f"{k} {held.get(k)!r} (now {wanted[k]!r})" for k in differ)
            raise SinkbenchError(f"{out} holds results of another run: {what}. Use another --out, or --force to replace them")
        if held:
            return held  # with the weights' identity, once a model was loaded for it
    elif any(out.glob("*.json")):
        raise SinkbenchError(f"{out} holds files that are not a sinkbench run's; use another --out, or --force")
    write_json_atomic(wanted, existing)
    return wanted


def _load_document(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged part is recomputed


# ---- the grid ---------------------------------------------------------------------------


def _data_dir(config: RunConfig) -> tuple[str | None, list[str]]:
    from sinkbench.data.datadir import ENV_VAR, HOW_TO_GET, resolve_data_dir

    if config.data_dir is None and not os.environ.get(ENV_VAR):
        try:
            return str(resolve_data_dir(None)), []
        except SinkbenchError:
            return None, [f"no data directory: real tasks and the stress prefix were skipped. {HOW_TO_GET}"]
    return str(resolve_data_dir(config.data_dir)), []


def plan_cells(cells: tuple[GridCell, ...], suite: Suite, has_data: bool) -> tuple[list[GridCell], list[str]]:
    """Without data: drop the tasks that read it and the conditions whose stress prefix does."""
    if has_data:
        return list(cells), []
    runnable, skipped = [], []
    for cell in cells:
        tasks = tuple(t for t in cell.tasks if not task_spec(suite, t).needs_data)
        dropped = [t for t in cell.tasks if t not in tasks]
        if cell.condition.prefix or not tasks:
            skipped.append(f"{cell.condition.name} (needs the data directory)")
            continue
        if dropped:
            skipped.append(f"{', '.join(dropped)} under {cell.condition.name} (needs the data directory)")
        runnable.append(GridCell(cell.condition, tasks))
    return runnable, skipped


def task_spec(suite: Suite, name: str, metrics=()) -> TaskSpec:
    """The suite's description of a task. A task outside every suite is judged by its metrics:
    acc makes it an accuracy task, word_perplexity a long-text task."""
    from sinkbench.grid.suite import SUITES

    for candidate in (suite, *SUITES.values()):
        if name in {t.name for t in candidate.tasks}:
            return candidate.task(name)
    needs_data = not name.startswith(("sinkbench_passkey", "sinkbench_kv_retrieval"))
    names = {key.split(",")[0] for key in metrics}
    if "acc" in names:
        return TaskSpec(name, "accuracy", "acc", needs_data)
    if "word_perplexity" in names:
        return TaskSpec(name, "perplexity", "word_perplexity", needs_data)
    return TaskSpec(name, "other", sorted(names)[0] if names else "none", needs_data)


def _signature(loaded, condition) -> tuple:
    """What decides the token sequences a condition produces: head, prefix length, attention edits."""
    head = condition.head_tokens(loaded.tokenizer, loaded.identity.adds_bos)
    edit = condition.mask_edit(loaded.identity.n_layers)
    return tuple(head), condition.prefix, edit


def _twin(loaded, cell: GridCell, documents: list[dict]) -> dict | None:
    """An earlier computed condition whose token sequences and attention are exactly this cell's.

    SmolLM2's tokenizer adds no <bos>, so `bos=drop` there feeds the model what `bos=keep` does.
    """
    from sinkbench.grid.conditions import Condition

    signature = _signature(loaded, cell.condition)
    for document in documents:
        if document["identical_to"] is None and set(cell.tasks) <= set(document["tasks"]):
            if _signature(loaded, Condition(**document["spec"])) == signature:
                return document
    return None


def _quiet_libraries(verbose: bool) -> None:
    """lm-eval and transformers log advice a user cannot act on; -v shows it."""
    if verbose:
        return
    for name in ("lm_eval", "transformers", "datasets", "accelerate", "sinkbench.harness.backend"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # lm-eval's per-task "building contexts" bars; bars that set `disable` themselves (ours) stay.
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def _eta(seconds_per_task: list[float], remaining_tasks: int) -> str:
    if not seconds_per_task:
        return "ETA after the first condition"
    seconds = sum(seconds_per_task) / len(seconds_per_task) * remaining_tasks
    return f"ETA {seconds / 60:.0f} min" if seconds >= 90 else f"ETA {seconds:.0f} s"


@dataclass
class _Session:
    """The model and lm-eval's task manager, made once and only if something needs computing."""

    config: RunConfig
    data_dir: str | None
    log: object
    verbose: bool = False
    loaded: object = None
    manager: object = None

    def model(self):
        if self.loaded is None:
            from sinkbench.measure.models import load_model

            self.log(f"loading {self.config.model} ({self.config.dtype} on {self.config.device}) ...")
            self.loaded = load_model(self.config.model, dtype=self.config.dtype, family=self.config.family,
                                     device=self.config.device)
        return self.loaded

    def tasks(self):
        if self.manager is None:
            from lm_eval.tasks import TaskManager

            include = self.config.include_path or default_tasks_dir()
            metadata = {"tokenizer": self.config.model, "data_dir": self.data_dir}
            self.manager = TaskManager(include_path=str(include), include_defaults=False, metadata=metadata)
        return self.manager


def run_condition(session: _Session, cell: GridCell, suite: Suite, sidecar: Path) -> dict:
    import lm_eval

    from sinkbench.harness.backend import SinkbenchLM

    config = session.config
    sidecar.unlink(missing_ok=True)  # rows of an interrupted attempt would be counted twice
    lm = SinkbenchLM(loaded=session.model(), condition=cell.condition, batch_size=config.batch_size,
                     sidecar=str(sidecar), data_dir=session.data_dir, device=config.device)
    start = time.time()
    quiet = contextlib.redirect_stdout(io.StringIO()) if not session.verbose else contextlib.nullcontext()
    with quiet:  # lm-eval prints "bootstrapping for stddev" lines
        result = lm_eval.simple_evaluate(
            model=lm, tasks=list(cell.tasks), task_manager=session.tasks(), limit=config.limit, log_samples=True,
            bootstrap_iters=config.bootstrap_iters, random_seed=config.seed, numpy_random_seed=config.seed,
            torch_random_seed=config.seed, fewshot_random_seed=config.seed,
        )
    if result is None:  # a rank other than 0 under data parallelism
        return {}
    specs = [task_spec(suite, t, (result.get("results") or {}).get(t, {})) for t in cell.tasks]
    primary = {spec.name: spec.primary_metric for spec in specs if spec.kind == "accuracy"}
    return condition_document(condition=cell.condition, tasks=cell.tasks, result=result, lm=lm, primary=primary,
                              wall_time_s=time.time() - start, seed=config.seed)


def run(config: RunConfig, log=print, verbose: bool = False) -> Path | None:
    """Run (or resume) the grid and the profile; write and return the path of record.json (None on ranks > 0)."""
    from sinkbench.files import write_json_atomic

    _quiet_libraries(verbose)
    suite = get_suite(config.suite)
    data_dir, missing = _data_dir(config)
    cells, skipped = plan_cells(config.cells or suite.grid(), suite, data_dir is not None)
    if skipped:
        missing.append("skipped: " + "; ".join(skipped))
        for line in missing:
            log(f"note: {line}")
    if not cells:
        raise SinkbenchError("nothing to run: every condition needs the data directory")
    prepare_folder(config, suite)
    session = _Session(config, data_dir, log, verbose)
    unknown = [t for c in cells for t in c.tasks if t not in session.tasks().all_tasks]
    if unknown:
        raise SinkbenchError(f"unknown task(s): {', '.join(sorted(set(unknown)))} (see `sinkbench tasks`)")
    rank0 = _rank() == 0
    documents, per_task = [], []
    for number, cell in enumerate(cells, start=1):
        path = config.out / f"{slug(cell.condition.name)}.json"
        remaining = sum(len(c.tasks) for c in cells[number - 1 :])
        header = f"[{number}/{len(cells)}] {cell.condition.name}"
        document = _load_document(path) if path.is_file() else None
        if document is not None and document.get("name") == cell.condition.name and set(cell.tasks) <= set(document["tasks"]):
            log(f"{header}: done already ({path.name})")
            documents.append(document)
            continue
        loaded = session.model()
        _check_identity(config, loaded)
        twin = _twin(loaded, cell, documents)
        if twin is not None and not rank0:
            continue
        if twin is not None:
            log(f"{header}: the same token sequences as {twin['name']}; its numbers are carried over")
            document = identical_document(cell.condition, cell.tasks, twin)
        else:
            log(f"{header}: {', '.join(cell.tasks)} ({_eta(per_task, remaining)})")
            document = run_condition(session, cell, suite, config.out / f"{slug(cell.condition.name)}.sinks.jsonl")
            if not document:  # another rank than 0: rank 0 holds the results; keep what decides twins
                documents.append({"name": cell.condition.name, "spec": cell.condition.to_dict(),
                                  "tasks": list(cell.tasks), "identical_to": None})
                continue
            per_task.append(document["wall_time_s"] / len(cell.tasks))
        if rank0:
            write_json_atomic(document, path)
        documents.append(document)
        if twin is None:
            log(f"{header}: {document['wall_time_s']:.0f} s, saved")
    if not rank0:
        return None  # rank 0 writes the profile and the record
    profile = _profile(config, session, suite, data_dir, log)
    return _write_record(config, suite, session, documents, profile, missing, data_dir, log)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _check_identity(config: RunConfig, loaded) -> None:
    """A folder made with other weights under the same name is not this model's."""
    from sinkbench.files import write_json_atomic

    if _rank() != 0:
        return  # rank 0 checks, and writes
    manifest_path = config.out / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    identity = {"weights_sha256": loaded.identity.weights_sha256, "revision": loaded.identity.revision}
    if "identity" in manifest and manifest["identity"] != identity:
        raise SinkbenchError(f"{config.out} holds results of other weights under the name {config.model}; "
                             "use another --out, or --force")
    if "identity" not in manifest:
        write_json_atomic({**manifest, "identity": identity}, manifest_path)


def _profile(config: RunConfig, session: _Session, suite: Suite, data_dir, log) -> dict | None:
    from sinkbench.files import write_json_atomic

    path = config.out / "profile.json"
    if not config.profile:
        return None
    saved = _load_document(path) if path.is_file() else None
    if saved is not None:
        log(f"sink profile: done already ({path.name})")
        return saved
    from sinkbench.measure.profile import suite_profile

    plan = suite.profile
    lengths = ", ".join(map(str, plan.sweep_lengths))
    log(f"sink profile: T={plan.T} x {plan.n} texts, over-mixing, length sweep T = {lengths} (capped by the context)")
    profile = suite_profile(session.model(), plan, data_dir)
    write_json_atomic(profile, path)
    log(f"sink profile: {profile['wall_time_s']:.0f} s")
    return profile


def _write_record(config, suite, session, documents, profile, missing, data_dir, log) -> Path:
    from sinkbench.run.provenance import provenance, task_hashes
    from sinkbench.record.format import build_record, task_entry, write_record

    if profile is None:
        raise SinkbenchError("a record needs the sink profile")
    identity = dict(documents[0]["model"]) if documents else session.model().identity.to_dict()
    model = {**identity, "name": _display_name(config.model), "release_date": config.release_date}
    if config.family:
        model["family"] = config.family
    higher = {}
    for document in documents:
        higher.update(((document.get("lm_eval") or {}).get("higher_is_better")) or {})
    tasks = {t: task_entry(task_spec(suite, t, higher.get(t, {})), higher.get(t, {})) for d in documents for t in d["tasks"]}
    tasks_run = sorted({t for d in documents for t in d["tasks"]})
    hashes = task_hashes(session.tasks().task_index, tasks_run) if tasks_run else {}
    record = build_record(model=model, provenance=provenance(config, suite, hashes, documents, data_dir),
                          tasks=tasks, profile=profile, conditions=[record_entry(d) for d in documents],
                          missing=missing)
    path = config.out / "record.json"
    write_record(record, path)
    return path


def _display_name(spec: str) -> str:
    from sinkbench.measure.models import ALIASES

    return spec if spec in ALIASES else Path(spec).name.removesuffix(".gguf") or spec
