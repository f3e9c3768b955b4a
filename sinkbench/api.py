"""sinkbench from Python, on a model already in memory: its sink profile, or a suite into a record.

    from sinkbench.api import Identity, evaluate, make_grid, probe

    profile = probe(model, tokenizer, T=64, n=100)       # a Profile: sink_rate[0.3], alpha_mean, ...
    record = evaluate(model, tokenizer, Identity("my-model", revision="step-2000"),
                      grid=make_grid(tasks=["sinkbench_lambada_quick"], bos=["keep", "drop"], prefix=[0]))

Nothing is reloaded, moved or cast: the model runs where it is, in its dtype. While sinkbench
runs it, the model is in eval mode without gradients; afterwards it is exactly as it was (every
module's train/eval flag, its attention implementation, hooks, requires_grad, gradients, weights).
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import datasets
import torch

from sinkbench.data.datadir import resolve_data_dir
from sinkbench.data.texts import profile_texts
from sinkbench.errors import SinkbenchError
from sinkbench.grid.suite import DEFAULT_EPS, GridCell, ProfilePlan, custom_grid, get_suite
from sinkbench.measure.models import loaded_from_memory
from sinkbench.measure.profile import sink_profile
from sinkbench.record.format import read_record
from sinkbench.record.types import Record
from sinkbench.run.runner import RunConfig, run

CALLER_TEXTS = "texts given by the caller"


@dataclass(frozen=True)
class Identity:
    """Who the model in memory is, as the record will say: sinkbench cannot find out itself."""

    name: str  # e.g. the training run's name
    family: str | None = None  # None: the model's config.model_type
    revision: str | None = None  # e.g. "step-2000": what tells one checkpoint of a run from another
    release_date: str | None = None  # YYYY-MM-DD

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise SinkbenchError("Identity needs a name (Identity('my-model'))")
        if self.release_date is not None:
            try:
                date.fromisoformat(self.release_date)
            except (TypeError, ValueError):
                raise SinkbenchError(f"release_date must be YYYY-MM-DD, got {self.release_date!r}") from None


@dataclass(frozen=True)
class Profile:
    """A sink profile (the layout of a record's `profile`) with its main fields typed.

    Every other key of the profile (massive activations, over-mixing, per-text values, whatever a
    later sinkbench adds) is kept: `to_dict()` gives the whole profile back.
    """

    T: int  # tokens per sequence
    n_sequences: int
    sink_rate: Mapping[float, float | None]  # eps -> share of (layer, head) pairs with alpha > eps
    alpha_mean: float | None  # attention to the first token, over the layers where it is defined
    alpha_by_layer: tuple[float | None, ...]  # None: a layer where no query can see the first token
    first_k_mass: tuple[float | None, ...]  # attention on the first k tokens, k = 1, 2, ...
    _profile: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, profile: Mapping[str, Any]) -> "Profile":
        whole = copy.deepcopy(dict(profile))
        rates = {float(eps): rate for eps, rate in whole["sink_rate"].items()}
        return cls(T=whole["T"], n_sequences=whole["n_sequences"], sink_rate=MappingProxyType(rates),
                   alpha_mean=whole["alpha_mean"], alpha_by_layer=tuple(whole["alpha_by_layer"]),
                   first_k_mass=tuple(whole["first_k_mass"]), _profile=MappingProxyType(whole))

    def to_dict(self) -> dict[str, Any]:
        """The whole profile, as a record or profile.json holds it (a copy: changing it changes nothing here)."""
        return copy.deepcopy(dict(self._profile))


# torch keeps a module's forward hooks in these dicts, keyed by the hook's id (the pre-hooks in the first two).
_HOOK_DICTS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called")
_CAPTURE_FLAG = "_output_capturing_hooks_installed"  # transformers: its output-capturing hooks are on this model


@contextmanager
def untouched(model) -> Iterator[None]:
    """Eval mode and no gradients inside; afterwards every module's train/eval flag, its forward hooks and
    the attention implementation are what they were, whatever happened inside."""
    training = [(module, module.training) for module in model.modules()]
    hooks = [(module, set(module._forward_pre_hooks), set(module._forward_hooks)) for module in model.modules()]
    captured = {module: module.__dict__.get(_CAPTURE_FLAG) for module in model.modules()}
    implementation = model.config._attn_implementation
    try:
        with torch.no_grad():
            model.eval()
            yield
    finally:
        for module, flag in training:
            module.training = flag  # not .train(flag): that would set every child alike
        # transformers installs its output-capturing hooks for good the first time hidden states are asked
        # for (the over-mixing probe asks). They are not the caller's: off again, with the flag that says
        # they are on, so transformers puts them back when the caller asks for hidden states.
        for module, pre_before, before in hooks:
            for name in _HOOK_DICTS:
                kept = pre_before if "pre" in name else before
                for hook_id in set(getattr(module, name)) - kept:
                    del getattr(module, name)[hook_id]
        for module, flag in captured.items():
            if flag is None:
                module.__dict__.pop(_CAPTURE_FLAG, None)
            else:
                module.__dict__[_CAPTURE_FLAG] = flag
        if model.config._attn_implementation != implementation:
            model.set_attn_implementation(implementation)


def probe(model, tokenizer, texts: list[str] | None = None, *, T: int = 64, n: int = 100, bos: str = "keep",
          eps: tuple[float, ...] = DEFAULT_EPS, progress: bool = False) -> Profile:
    """The sink profile of a loaded `transformers` model over `texts` (Gu et al.'s protocol: T tokens x n
    texts), as `sinkbench probe` measures it, without the length sweep.

    texts: None takes the profile's own texts (LAMBADA from the data directory; generated filler
    without one). bos: keep, drop, double or replace:<token>.
    """
    loaded = loaded_from_memory(model, tokenizer, name=type(model).__name__)
    plan = ProfilePlan(T=T, n=n, bos=bos, eps=tuple(eps), sweep_lengths=(), sweep_texts=())
    texts, source = _texts(texts, plan)
    with untouched(model):
        return Profile.from_dict(sink_profile(loaded, plan, texts, source, progress=progress))


def _texts(texts: list[str] | None, plan: ProfilePlan) -> tuple[list[str], str]:
    if texts is None:
        try:
            data_dir = resolve_data_dir(None)
        except SinkbenchError:
            data_dir = None
        return profile_texts(plan.n, plan.T, data_dir)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise SinkbenchError("texts must be a list of strings")
    return list(texts), CALLER_TEXTS


def make_grid(tasks: list[str] | None = None, bos: list[str] | None = None, prefix: list[int] | None = None,
              window: int | None = None, sinks: list[int] | None = None, knockout: str | None = None,
              suite: str = "quick") -> tuple[GridCell, ...] | None:
    """A custom grid, as `sinkbench run --tasks --bos --prefix --window --sinks --knockout` builds it.

    Only `tasks`: the suite's grid on those tasks. Any condition: the cross product bos x prefix
    (x sinks with a window), with the knockout, on the tasks (prefix defaults to 0 and the suite's
    longest, which needs the data directory: pass prefix=[0] for no stress prefix)."""
    return custom_grid(get_suite(suite), tasks, bos, prefix, window, sinks, knockout)


# RunConfig fields a caller may set through evaluate(**settings); the rest come from the model and identity.
SETTINGS = ("limit", "batch_size", "max_batch_tokens", "data_dir", "include_path", "force", "seed")


def evaluate(model, tokenizer, identity: Identity, *, suite: str = "quick", grid: tuple[GridCell, ...] | None = None,
             out: str | Path | None = None, log=None, **settings) -> Record | None:
    """Run a suite's grid (or `grid`, see make_grid) and its sink profile on a loaded model; return the record
    (sinkbench.record.types.Record: `record.summary["bos_dependence"].value`; `record.to_json()` is its JSON form).

    out: None keeps nothing on disk; a folder writes the run there as `sinkbench run --out` does
    (record.json and its parts; a stopped run continues there). settings: limit (documents per
    task), batch_size, max_batch_tokens, data_dir, include_path (a folder of your own lm-eval
    tasks), force, seed. log: a function given each progress line (default: silent).
    Returns None on ranks other than 0 of a data-parallel run.
    """
    if not isinstance(identity, Identity):
        raise SinkbenchError("identity must be a sinkbench.api.Identity (Identity('my-model', revision='step-2000'))")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise SinkbenchError(f"unknown setting(s) for evaluate: {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    if grid is not None and (not isinstance(grid, tuple) or not all(isinstance(c, GridCell) for c in grid)):
        raise SinkbenchError("grid must be a tuple of GridCell, as make_grid() returns")
    loaded = loaded_from_memory(model, tokenizer, name=identity.name, family=identity.family, revision=identity.revision)
    with tempfile.TemporaryDirectory(prefix="sinkbench-") as scratch:
        config = RunConfig(model=identity.name, out=Path(out) if out is not None else Path(scratch) / "run",
                           suite=get_suite(suite).name, cells=grid, device=str(model.device), dtype=loaded.identity.dtype,
                           family=identity.family, release_date=identity.release_date,
                           command=("sinkbench.api.evaluate", identity.name), **settings)
        with untouched(model), _logging_restored():
            path = run(config, log=log or (lambda line: None), loaded=loaded)
        return None if path is None else Record.from_json(read_record(path))


# Loggers and progress bars sinkbench quiets during a run (sinkbench.run.runner): set back afterwards,
# since the caller's program (a training script) owns them.
_QUIETED = ("lm_eval", "transformers", "datasets", "accelerate", "sinkbench.harness.backend")


@contextmanager
def _logging_restored() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in _QUIETED}
    bars = datasets.is_progress_bar_enabled()
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if bars:
            datasets.enable_progress_bars()


__all__ = ["Identity", "Profile", "evaluate", "make_grid", "probe", "untouched"]
