"""`sinkbench run`: a suite's condition grid and sink profile with one model load, into one record.

Every part is saved atomically in the results folder as soon as it is done (sinkbench.run.folder),
so a run stopped at any point and started again continues and loses nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import lm_eval
import lm_eval.evaluator
from lm_eval.tasks import TaskManager

import sinkbench
from sinkbench.data.datadir import ENV_VAR, HOW_TO_GET, data_file, resolve_data_dir
from sinkbench.data.texts import GENERATED, generated_texts, long_texts, read_texts
from sinkbench.errors import SinkbenchError
from sinkbench.grid.conditions import Condition
from sinkbench.grid.sequences import head_tokens
from sinkbench.grid.suite import GridCell, Suite, get_suite, task_spec
from sinkbench.harness.backend import SinkbenchLM
from sinkbench.harness.tasklist import default_tasks_dir
from sinkbench.measure.attention import MaskEdit
from sinkbench.measure.models import ALIASES, LoadedModel, load_model
from sinkbench.measure.profile import profile_document, sink_profile
from sinkbench.record.build import build_record, task_entry, write_record
from sinkbench.run.folder import PROFILE, RECORD, ResultsFolder, rank
from sinkbench.run.provenance import provenance, task_hashes
from sinkbench.run.results import condition_document, identical_document, record_entry


@dataclass(frozen=True)
class RunConfig:
    model: str
    out: Path
    suite: str = "quick"
    cells: tuple[GridCell, ...] | None = None  # None: the suite's own grid
    limit: int | None = None  # documents per task, for smoke runs
    batch_size: int | None = None  # a row cap per forward pass; None: the token budget alone
    max_batch_tokens: int | None = None  # tokens per forward pass; None: the backend's default
    data_dir: str | None = None
    include_path: Path | None = None
    device: str = "cpu"
    dtype: str = "float32"
    family: str | None = None
    release_date: str | None = None
    force: bool = False
    seed: int = 0
    bootstrap_iters: int = 1000  # lm-eval's standard errors; its 100000 is slow for perplexity
    command: tuple[str, ...] = field(default_factory=tuple)

    def manifest(self, suite: Suite) -> dict:
        """What must be equal for a folder's finished parts to belong to this run."""
        return {"sinkbench_version": sinkbench.__version__, "model": self.model, "suite": suite.name,
                "suite_version": suite.version, "limit": self.limit, "dtype": self.dtype, "device": self.device,
                "seed": self.seed}


def _data_dir(config: RunConfig) -> tuple[str | None, list[str]]:
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
        if cell.condition.prefix_length or not tasks:
            skipped.append(f"{cell.condition.name} (needs the data directory)")
            continue
        if dropped:
            skipped.append(f"{', '.join(dropped)} under {cell.condition.name} (needs the data directory)")
        runnable.append(GridCell(cell.condition, tasks, cell.role))
    return runnable, skipped


def _signature(loaded: LoadedModel, condition: Condition) -> tuple:
    """What decides the token sequences a condition produces: head, prefix length, attention edits."""
    head = head_tokens(condition, loaded.tokenizer, loaded.identity.adds_bos)
    return head, condition.prefix_length, MaskEdit.for_condition(condition, loaded.identity.n_layers)


def _twin(loaded: LoadedModel, cell: GridCell, documents: list[dict]) -> dict | None:
    """An earlier computed condition whose token sequences and attention are exactly this cell's.

    SmolLM2's tokenizer adds no <bos>, so `bos=drop` there feeds the model what `bos=keep` does.
    """
    signature = _signature(loaded, cell.condition)
    for document in documents:
        if document["identical_to"] is None and set(cell.tasks) <= set(document["tasks"]):
            if _signature(loaded, Condition.from_dict(document["spec"])) == signature:
                return document
    return None


def _quiet_libraries(verbose: bool) -> None:
    """lm-eval and transformers log advice a user cannot act on; -v shows it."""
    if verbose:
        return
    for name in ("lm_eval", "transformers", "datasets", "accelerate", "sinkbench.harness.backend"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()


def _quiet_git_hash() -> str | None:
    """lm-eval's git hash of the working directory, asked without git's "fatal: not a git repository"."""
    try:
        return subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@contextlib.contextmanager
def _quiet_evaluation(verbose: bool) -> Iterator[None]:
    """lm-eval prints "bootstrapping for stddev" lines and lets git complain outside a checkout; -v shows both."""
    if verbose:
        yield
        return
    saved = lm_eval.evaluator.get_git_commit_hash
    lm_eval.evaluator.get_git_commit_hash = _quiet_git_hash
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        lm_eval.evaluator.get_git_commit_hash = saved


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
    loaded: LoadedModel | None = None
    manager: TaskManager | None = None

    def model(self) -> LoadedModel:
        if self.loaded is None:
            self.log(f"loading {self.config.model} ({self.config.dtype} on {self.config.device}) ...")
            self.loaded = load_model(self.config.model, dtype=self.config.dtype, family=self.config.family,
                                     device=self.config.device)
        return self.loaded

    def tasks(self) -> TaskManager:
        if self.manager is None:
            include = self.config.include_path or default_tasks_dir()
            metadata = {"tokenizer": self.config.model, "data_dir": self.data_dir}
            self.manager = TaskManager(include_path=str(include), include_defaults=False, metadata=metadata)
        return self.manager


def run_condition(session: _Session, cell: GridCell, suite: Suite, sidecar: Path) -> dict:
    config = session.config
    sidecar.unlink(missing_ok=True)  # rows of an interrupted attempt would be counted twice
    lm = SinkbenchLM(loaded=session.model(), condition=cell.condition, sidecar=str(sidecar), data_dir=session.data_dir,
                     device=config.device, max_batch_tokens=config.max_batch_tokens, batch_size=config.batch_size)
    start = time.time()
    with _quiet_evaluation(session.verbose):
        result = lm_eval.simple_evaluate(
            model=lm, tasks=list(cell.tasks), task_manager=session.tasks(), limit=config.limit, log_samples=True,
            bootstrap_iters=config.bootstrap_iters, random_seed=config.seed, numpy_random_seed=config.seed,
            torch_random_seed=config.seed, fewshot_random_seed=config.seed,
        )
    if result is None:  # a rank other than 0 under data parallelism
        return {}
    specs = [task_spec(suite, t, (result.get("results") or {}).get(t, {})) for t in cell.tasks]
    primary = {spec.name: spec.primary_metric for spec in specs if spec.kind == "accuracy"}
    return condition_document(cell=cell, result=result, statistics=lm.statistics(), primary=primary,
                              wall_time_s=time.time() - start, seed=config.seed)


def run(config: RunConfig, log=print, verbose: bool = False) -> Path | None:
    """Run (or resume) the grid and the profile; write and return the path of record.json (None on ranks > 0)."""
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
    folder = ResultsFolder(config.out, config.manifest(suite))
    folder.prepare(config.force)
    session = _Session(config, data_dir, log, verbose)
    try:
        return _run(config, suite, cells, folder, session, missing, data_dir, log)
    except BaseException:
        folder.clean_up_after_failure()
        raise


def _run(config, suite, cells, folder, session, missing, data_dir, log) -> Path | None:
    unknown = [t for c in cells for t in c.tasks if t not in session.tasks().all_tasks]
    if unknown:
        raise SinkbenchError(f"unknown task(s): {', '.join(sorted(set(unknown)))} (see `sinkbench tasks`)")
    rank0 = rank() == 0
    documents, per_task = [], []
    for number, cell in enumerate(cells, start=1):
        name = f"{cell.condition.slug}.json"
        remaining = sum(len(c.tasks) for c in cells[number - 1 :])
        header = f"[{number}/{len(cells)}] {cell.condition.name}"
        document = folder.load(name)
        if document is not None and document.get("name") == cell.condition.name and set(cell.tasks) <= set(document["tasks"]):
            log(f"{header}: done already ({name})")
            documents.append(document)
            continue
        loaded = session.model()
        folder.check_identity({"weights_sha256": loaded.identity.weights_sha256, "revision": loaded.identity.revision},
                              config.model)
        twin = _twin(loaded, cell, documents)
        if twin is not None and not rank0:
            continue
        if twin is not None:
            log(f"{header}: the same token sequences as {twin['name']}; its numbers are carried over")
            document = identical_document(cell, twin)
        else:
            log(f"{header}: {', '.join(cell.tasks)} ({_eta(per_task, remaining)})")
            document = run_condition(session, cell, suite, config.out / f"{cell.condition.slug}.sinks.jsonl")
            if not document:  # another rank than 0: rank 0 holds the results; keep what decides twins
                documents.append({"name": cell.condition.name, "spec": cell.condition.to_dict(),
                                  "tasks": list(cell.tasks), "identical_to": None})
                continue
            per_task.append(document["wall_time_s"] / len(cell.tasks))
        folder.save(name, document)
        documents.append(document)
        if twin is None:
            log(f"{header}: {document['wall_time_s']:.0f} s, saved")
    if not rank0:
        return None  # rank 0 writes the profile and the record
    profile = _profile(config, folder, session, suite, data_dir, log)
    return _write_record(config, suite, folder, session, documents, profile, missing, data_dir)


def _profile(config: RunConfig, folder: ResultsFolder, session: _Session, suite: Suite, data_dir, log) -> dict:
    """The suite's sink profile: LAMBADA passages for the protocol, War and Peace for the length sweep
    (generated filler text without a data directory)."""
    saved = folder.load(PROFILE)
    if saved is not None and saved.get("format") == "sinkbench.profile/2":
        log(f"sink profile: done already ({PROFILE})")
        return saved["profile"]
    plan = suite.profile
    log(f"sink profile: T={plan.T} x {plan.n} texts, over-mixing, length sweep T = "
        f"{', '.join(map(str, plan.sweep_lengths))} (capped by the context)")
    if data_dir is None:
        texts, source = generated_texts(plan.n, 3 * plan.T), GENERATED
    else:
        source = "lambada/lambada_test.jsonl"
        texts = read_texts(data_file(source, data_dir), "text", plan.n)
    sweep, sweep_source = {}, "none"
    for T, n in zip(plan.sweep_lengths, plan.sweep_texts):
        sweep[T], sweep_source = long_texts(n, 8 * T, data_dir)  # ~4 characters a token: room to spare
    loaded = session.model()
    profile = sink_profile(loaded, plan, texts, source, sweep, sweep_source)
    folder.save(PROFILE, profile_document(loaded, profile))
    log(f"sink profile: {profile['wall_time_s']:.0f} s")
    return profile


def _write_record(config, suite, folder, session, documents, profile, missing, data_dir) -> Path:
    identity = dict(documents[0]["model"]) if documents else session.model().identity.to_dict()
    model = {**identity, "name": display_name(config.model), "release_date": config.release_date}
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
    path = folder.path / RECORD
    write_record(record, path)
    return path


def display_name(spec: str) -> str:
    return spec if spec in ALIASES else Path(spec).name.removesuffix(".gguf") or spec
