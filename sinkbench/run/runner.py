"""`sinkbench run`: a suite's condition grid and sink profile with one model load, into one record.

Every part is saved atomically in the results folder as soon as it is done (sinkbench.run.folder),
so a run stopped at any point and started again continues and loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import datasets
import lm_eval
import lm_eval.evaluator
from lm_eval.tasks import TaskManager

import sinkbench
from sinkbench.data.datadir import ENV_VAR, HOW_TO_GET, resolve_data_dir
from sinkbench.data.texts import long_texts, profile_texts
from sinkbench.errors import SinkbenchError
from sinkbench.grid.catalog import ACCURACY, RETRIEVAL
from sinkbench.grid.conditions import BASELINE, Condition
from sinkbench.grid.sequences import head_tokens
from sinkbench.grid.suite import GridCell, Suite, get_suite, task_spec
from sinkbench.harness.backend import SinkbenchLM
from sinkbench.harness.tasklist import default_tasks_dir
from sinkbench.measure.attention import MaskEdit
from sinkbench.measure.models import ALIASES, LoadedModel, load_model, memory_tokenizer_spec
from sinkbench.measure.placement import Placement
from sinkbench.measure.profile import FORMAT as PROFILE_FORMAT
from sinkbench.measure.profile import profile_document, sink_profile
from sinkbench.record.build import build_record, task_entry, write_record
from sinkbench.record.format import finite
from sinkbench.record.types import Documents, Model, Profile, Provenance, RecordTypeError
from sinkbench.run.folder import PROFILE, RECORD, ResultsFolder, rank
from sinkbench.run.provenance import provenance, task_hashes
from sinkbench.run.plan import (Estimator, attention_ratio, beyond_context, first_estimate, fitting_prefix, matrix_rate,
                                plan_cells)
from sinkbench.run.results import (FORMAT, SavedCondition, condition_document, identical_document,
                                   skipped_document)


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
    placement: Placement | None = None  # --device-map/--max-memory: the model spread over devices (device unused)
    dtype: str = "float32"
    family: str | None = None
    release_date: str | None = None
    force: bool = False
    seed: int = 0
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


def _saved(folder: ResultsFolder, name: str, cell: GridCell) -> SavedCondition | None:
    """The condition saved under `name` by an earlier start of this run, if it is this cell's; None otherwise."""
    document = folder.load(name)
    if document is None or document.get("format") != FORMAT or document.get("name") != cell.condition.name:
        return None
    try:
        return SavedCondition.from_json(document, name)
    except RecordTypeError:
        return None  # damaged: computed again, as a file that is not JSON is


def _signature(loaded: LoadedModel, condition: Condition) -> tuple:
    """What decides the token sequences a condition produces: head, prefix length, attention edits."""
    head = head_tokens(condition, loaded.tokenizer, loaded.identity.adds_bos)
    return head, condition.prefix_length, MaskEdit.for_condition(condition, loaded.identity.n_layers)


def _twin(loaded: LoadedModel, cell: GridCell, documents: list[tuple[GridCell, SavedCondition]]) -> SavedCondition | None:
    """An earlier computed condition whose token sequences and attention are exactly this cell's
    (on the same tasks and documents).

    SmolLM2's tokenizer adds no <bos>, so `bos=drop` there feeds the model what `bos=keep` does.
    """
    signature = _signature(loaded, cell.condition)
    for earlier, document in documents:
        if document.identical_to is None and set(cell.tasks) <= set(document.tasks) and earlier.limit == cell.limit:
            if _signature(loaded, document.spec) == signature:
                return document
    return None


def still_to_compute(loaded: LoadedModel, suite, cells: list[GridCell], documents: list[tuple[GridCell, SavedCondition]],
                     baseline: SavedCondition | None) -> list[GridCell]:
    """The cells, with their tasks, that the rest of the grid will compute: a twin of an earlier condition
    is carried over and a task beyond the model's context is skipped, so neither counts for the time left."""
    seen = list(documents)
    left = []
    for cell in cells:
        if _twin(loaded, cell, seen) is not None:
            continue
        head = len(head_tokens(cell.condition, loaded.tokenizer, loaded.identity.adds_bos))
        skipped = beyond_context(cell, suite, loaded.identity.max_context, head, baseline)
        tasks = tuple(t for t in cell.tasks if t not in skipped)
        if tasks:
            left.append(GridCell(cell.condition, tasks, cell.role, cell.limit))
            seen.append((cell, skipped_document(cell, {}, {})))  # what decides twins: its spec and tasks
    return left


def _quiet_libraries(verbose: bool) -> None:
    """lm-eval and transformers log advice a user cannot act on; -v shows it."""
    if verbose:
        return
    for name in ("lm_eval", "transformers", "datasets", "accelerate", "sinkbench.harness.backend"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()


@contextlib.contextmanager
def _without_git_hash() -> Iterator[None]:
    """lm-eval's simple_evaluate runs `git describe` in the working directory for its results' "git_hash", and
    outside a checkout git prints "fatal: not a git repository" on our stderr. sinkbench never reads that hash (a
    record's provenance names the sinkbench version that ran), and lm-eval 0.4.13 has no argument to skip it, so
    for this one call lm-eval's function answers None without running git; restored when the call returns or
    fails. patch.object refuses a name lm-eval no longer has, so a rename upstream fails loudly here."""
    with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None):
        yield


@dataclass
class _Session:
    """The model and lm-eval's task manager, made once and only if something needs computing."""

    config: RunConfig
    data_dir: str | None
    log: object
    loaded: LoadedModel | None = None
    manager: TaskManager | None = None

    load_seconds: float | None = None

    def model(self) -> LoadedModel:
        if self.loaded is None:
            placement = self.config.placement
            where = self.config.device if placement is None else f"device map {placement.device_map}"
            self.log(f"loading {self.config.model} ({self.config.dtype} on {where}) ...")
            start = time.time()
            self.loaded = load_model(self.config.model, dtype=self.config.dtype, family=self.config.family,
                                     device=self.config.device, placement=self.config.placement)
            self.load_seconds = round(time.time() - start, 1)
        return self.loaded

    def tokenizer_spec(self) -> str:
        """What the synthetic tasks load to measure lengths in the model's own tokens."""
        if self.loaded is not None and self.loaded.identity.source == "memory":
            return memory_tokenizer_spec(self.loaded.tokenizer)  # nothing to load: the caller's object
        return self.config.model

    def tasks(self) -> TaskManager:
        if self.manager is None:
            include = self.config.include_path or default_tasks_dir()
            metadata = {"tokenizer": self.tokenizer_spec(), "data_dir": self.data_dir}
            self.manager = TaskManager(include_path=str(include), include_defaults=False, metadata=metadata)
        return self.manager


def run_condition(session: _Session, cell: GridCell, suite: Suite, sidecar: Path, skipped: dict[str, str]) -> SavedCondition | None:
    config = session.config
    sidecar.unlink(missing_ok=True)  # rows of an interrupted attempt would be counted twice
    lm = SinkbenchLM(loaded=session.model(), condition=cell.condition, sidecar=str(sidecar), data_dir=session.data_dir,
                     device=config.device, max_batch_tokens=config.max_batch_tokens, batch_size=config.batch_size)
    limits = [n for n in (cell.limit, config.limit) if n is not None]
    start = time.time()
    with _without_git_hash():
        # Intervals are sinkbench's own, from every document's outcome: lm-eval's bootstrap is not needed.
        result = lm_eval.simple_evaluate(
            model=lm, tasks=[t for t in cell.tasks if t not in skipped], task_manager=session.tasks(),
            limit=min(limits) if limits else None, log_samples=True, bootstrap_iters=0, random_seed=config.seed,
            numpy_random_seed=config.seed, torch_random_seed=config.seed, fewshot_random_seed=config.seed,
        )
    if result is None:  # a rank other than 0 under data parallelism
        return None
    specs = [task_spec(suite, t, (result.get("results") or {}).get(t, {})) for t in cell.tasks if t not in skipped]
    primary = {spec.name: spec.primary_metric for spec in specs if spec.kind in (ACCURACY, RETRIEVAL)}
    return condition_document(cell=cell, result=result, statistics=lm.statistics(), primary=primary,
                              wall_time_s=time.time() - start, seed=config.seed, skipped=skipped)


def run(config: RunConfig, log=print, verbose: bool = False, loaded: LoadedModel | None = None) -> Path | None:
    """Run (or resume) the grid and the profile; write and return the path of record.json (None on ranks > 0).

    `loaded`: a model already in memory (sinkbench.api.evaluate); `config.model` then only names it."""
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
    session = _Session(config, data_dir, log, loaded=loaded)
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
    documents: list[tuple[GridCell, SavedCondition]] = []
    estimator = None
    for number, cell in enumerate(cells, start=1):
        name = f"{cell.condition.slug}.json"
        header = f"[{number}/{len(cells)}] {cell.condition.name}"
        document = _saved(folder, name, cell)
        if document is not None and set(cell.tasks) <= set(document.tasks):
            log(f"{header}: done already ({name})")
            documents.append((cell, document))
            if estimator is not None:
                estimator.learn(cell, document)
            continue
        loaded = session.model()
        if estimator is None:
            estimator = Estimator(attention_ratio(loaded.model))
            for earlier, done in documents:
                estimator.learn(earlier, done)
            if not documents and rank0 and loaded.input_device.type == "cpu":
                log(first_estimate(suite, loaded.model, matrix_rate(loaded.model), config.cells is not None))
        folder.check_identity({"weights_sha256": loaded.identity.weights_sha256, "revision": loaded.identity.revision},
                              config.model)
        baseline = next((d for c, d in documents if c.role == BASELINE), None)
        head = len(head_tokens(cell.condition, loaded.tokenizer, loaded.identity.adds_bos))
        if config.cells is None:  # the suite's <bos>-dropped stress cell at the longest prefix the model takes
            fitted = fitting_prefix(cell, suite, loaded.identity.max_context, head, baseline)
            if fitted is not cell:
                log(f"{header}: beyond the model's context; the longest prefix it takes is {fitted.condition.prefix_length}")
                cell, name = fitted, f"{fitted.condition.slug}.json"
                header = f"[{number}/{len(cells)}] {cell.condition.name}"
                document = _saved(folder, name, cell)
                if document is not None:
                    log(f"{header}: done already ({name})")
                    documents.append((cell, document))
                    estimator.learn(cell, document)
                    continue
        skipped = beyond_context(cell, suite, loaded.identity.max_context, head, baseline)
        twin = _twin(loaded, cell, documents)
        if twin is not None and not rank0:
            continue
        if twin is not None:
            log(f"{header}: the same token sequences as {twin.name}; its numbers are carried over")
            document = identical_document(cell, twin)
        elif len(skipped) == len(cell.tasks):
            log(f"{header}: skipped, {next(iter(skipped.values()))}")
            document = skipped_document(cell, skipped, loaded.identity.to_dict())
        else:
            tasks = [t for t in cell.tasks if t not in skipped]
            left = still_to_compute(loaded, suite, cells[number - 1 :], documents, baseline)
            log(f"{header}: {', '.join(tasks)} ({estimator.remaining(left)})")
            for task, reason in skipped.items():
                log(f"{header}: {task} skipped, {reason}")
            document = run_condition(session, cell, suite, config.out / f"{cell.condition.slug}.sinks.jsonl", skipped)
            if document is None:  # another rank than 0: rank 0 holds the results; keep what decides twins
                documents.append((cell, skipped_document(cell, {}, {})))
                continue
            estimator.learn(cell, document)
        folder.save(name, document.to_json())
        documents.append((cell, document))
        if twin is None and len(skipped) < len(cell.tasks):
            log(f"{header}: {document.wall_time_s:.0f} s, saved")
    if not rank0:
        return None  # rank 0 writes the profile and the record
    profile = _profile(config, folder, session, suite, data_dir, log)
    return _write_record(config, suite, folder, session, [d for _, d in documents], profile, missing, data_dir)


def _profile(config: RunConfig, folder: ResultsFolder, session: _Session, suite: Suite, data_dir, log) -> dict:
    """The suite's sink profile: LAMBADA passages for the protocol, War and Peace for the length sweep
    (generated filler text without a data directory)."""
    saved = folder.load(PROFILE)
    if saved is not None and saved.get("format") == PROFILE_FORMAT:
        log(f"sink profile: done already ({PROFILE})")
        return saved["profile"]
    plan = suite.profile
    log(f"sink profile: T={plan.T} x {plan.n} texts, over-mixing, length sweep T = "
        f"{', '.join(map(str, plan.sweep_lengths))} (capped by the context)")
    texts, source = profile_texts(plan.n, plan.T, data_dir)
    sweep, sweep_source = {}, "none"
    for T, n in zip(plan.sweep_lengths, plan.sweep_texts):
        sweep[T], sweep_source = long_texts(n, 8 * T, data_dir)  # ~4 characters a token: room to spare
    loaded = session.model()
    profile = sink_profile(loaded, plan, texts, source, sweep, sweep_source)
    folder.save(PROFILE, profile_document(loaded, profile))
    log(f"sink profile: {profile['wall_time_s']:.0f} s")
    return profile


def task_documents(documents: list[SavedCondition]) -> dict[str, Documents]:
    """Each task's document list: the longest any condition scored; every other condition must
    have scored a prefix of it (the same ids and content hashes)."""
    lists: dict[str, Documents] = {}
    for document in documents:
        for task, entry in document.documents.items():
            held = lists.get(task)
            if held is None or len(entry.ids) > len(held.ids):
                held, entry = entry, held
                lists[task] = held
            if entry is not None:
                n = len(entry.ids)
                if entry.ids != held.ids[:n] or entry.hashes != held.hashes[:n]:
                    raise SinkbenchError(f"{task}: conditions scored different documents; rerun with --force")
    return lists


def _write_record(config, suite, folder, session, documents, profile, missing, data_dir) -> Path:
    identity = dict(documents[0].model) if documents else session.model().identity.to_dict()
    # A model handed over in memory keeps the name its caller gave; a loaded one is named by its spec.
    name = identity["name"] if identity["source"] == "memory" else display_name(config.model)
    model = {**identity, "name": name, "release_date": config.release_date}
    if config.family:
        model["family"] = config.family
    higher = {}
    for document in documents:
        higher.update(document.lm_eval.get("higher_is_better") or {})
    lists = task_documents(documents)
    tasks = {t: task_entry(task_spec(suite, t, higher.get(t, {})), higher.get(t, {}), lists.get(t))
             for d in documents for t in d.tasks}
    tasks_run = sorted({t for d in documents for t in d.tasks if t in lists})
    hashes = task_hashes(session.tasks().task_index, tasks_run) if tasks_run else {}
    record = build_record(model=Model.from_json(model, "model"),
                          provenance=Provenance.from_json(provenance(config, suite, hashes, documents, data_dir,
                                                                     session.load_seconds), "provenance"),
                          tasks=tasks, profile=Profile.from_json(finite(profile), "profile"),
                          conditions=[d.record_part() for d in documents], missing=missing)
    path = folder.path / RECORD
    write_record(record, path)
    return path


def display_name(spec: str) -> str:
    return spec if spec in ALIASES else Path(spec).name.removesuffix(".gguf") or spec
