"""Sink metrics during training: a `transformers` TrainerCallback that probes a fixed set of texts every N steps.

    trainer = Trainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer.add_callback(SinkbenchCallback(trainer, every=100))
    trainer.train()      # sink/alpha_mean, sink/rate_0.3, ... at steps 0, 100, 200, ... and the last

The metrics go through `trainer.log`, so they land where the loss does: `trainer.state.log_history`,
the console, and every integration of `report_to` (TensorBoard, Weights & Biases, ...). A callback
is handed no trainer by transformers, and keys it adds in `on_log` come after the integrations have
logged: hence the trainer as the first argument (as TRL's callbacks take it), added with
`trainer.add_callback`.
"""

from __future__ import annotations

import time
from dataclasses import fields, replace

from transformers import TrainerCallback

from sinkbench.api import Profile, untouched
from sinkbench.data.datadir import resolve_data_dir
from sinkbench.data.texts import profile_texts
from sinkbench.errors import SinkbenchError
from sinkbench.grid.suite import ProfilePlan
from sinkbench.measure.models import LoadedModel, loaded_from_memory
from sinkbench.measure.profile import encode_texts, sink_profile

KEY = "sink/"  # every logged key starts with it: one group in TensorBoard and W&B
# Profile passes beyond the protocol's one pass over the texts (over-mixing; later sinkbench versions
# may add more, such as a random-token probe): all off, so that a call costs exactly n x T tokens.
EXTRA_PASSES = ("overmixing_sequences", "random_sequences")


class SinkbenchCallback(TrainerCallback):
    """Every `every` optimizer steps (at the start and at the last step too), the sink profile of a
    fixed probe set, logged through the trainer: `sink/alpha_mean` (attention to the first token),
    `sink/rate_<eps>` (share of heads with alpha > eps, at eps 0.3, 0.5, 0.8), `sink/mass_first_4`
    (attention on the first 4 tokens), each in [0, 1], and `sink/probe_seconds`.

    The probe set: n = max_tokens // T sequences of exactly T tokens (`<bos>` as the tokenizer puts
    it, then the text), made once here from `texts` (the texts with fewer than T tokens left out) or
    from the profile's own texts (LAMBADA passages from the data directory, generated filler without
    one). The same token ids at every call: the curve moves only because the weights do.

    Cost per call, bounded by `max_tokens`: one forward pass over n x T <= max_tokens tokens through
    every layer, in eval mode, no gradients, no KV cache, logits at one position per sequence: about
    n x T / (3 x the tokens of one optimizer step) of a training step (a backward pass costs about
    two forwards), plus the probe's own overhead (6% over a plain forward at T = 4096 in
    bench/probe_cost.py). `tokens_per_call` says it; `history` keeps every call's seconds.
    Training itself is unchanged: the probe draws no random numbers and leaves the model as it was.
    """

    def __init__(self, trainer, every: int, *, tokenizer=None, texts: list[str] | None = None, T: int = 64,
                 max_tokens: int = 512, at_start: bool = True):
        if not hasattr(trainer, "log") or not hasattr(trainer, "model"):
            raise SinkbenchError("SinkbenchCallback needs the Trainer itself (SinkbenchCallback(trainer, every=100)), "
                                 "to log through it")
        if not isinstance(every, int) or every < 1:
            raise SinkbenchError(f"every must be a whole number of steps >= 1, got {every!r}")
        if max_tokens < T:
            raise SinkbenchError(f"max_tokens={max_tokens} is less than one sequence of T={T} tokens")
        tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
        if tokenizer is None:
            raise SinkbenchError("the trainer has no tokenizer (processing_class): pass tokenizer=")
        self.trainer, self.every, self.at_start = trainer, every, at_start
        self.tokenizer = tokenizer
        self.identity = loaded_from_memory(trainer.model, tokenizer, name="training").identity
        self.texts, self.text_source = self._probe_set(texts, T, max_tokens // T)
        self.plan = _protocol_only(ProfilePlan(T=T, n=len(self.texts), sweep_lengths=(), sweep_texts=()))
        self.tokens_per_call = len(self.texts) * T
        self.history: list[dict] = []  # every call: step, seconds and what was logged
        self._last_step: int | None = None

    def _probe_set(self, texts: list[str] | None, T: int, n: int) -> tuple[list[str], str]:
        """The first n texts that give T tokens, with where they came from."""
        if texts is None:
            try:
                data_dir = resolve_data_dir(None)
            except SinkbenchError:
                data_dir = None
            texts, source = profile_texts(4 * n, T, data_dir)  # room for passages shorter than T tokens
        else:
            if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
                raise SinkbenchError("texts must be a list of strings")
            source = "texts given by the caller"
        loaded = LoadedModel(self.trainer.model, self.tokenizer, self.identity)
        encoded = encode_texts(loaded, list(texts), T, "keep")
        chosen = [text for text, ids in zip(texts, encoded) if len(ids) == T][:n]
        if not chosen:
            raise SinkbenchError(f"none of the {len(texts)} texts gives T={T} tokens: pass longer texts or a smaller T")
        return chosen, source

    def measure(self, model, step: int) -> dict[str, float]:
        """Probe `model` now and log the metrics at `step` through the trainer; returns what was logged."""
        start = time.perf_counter()
        with untouched(model):
            loaded = LoadedModel(model, self.tokenizer, self.identity)
            profile = Profile.from_dict(sink_profile(loaded, self.plan, self.texts, self.text_source, progress=False))
        logs = {f"{KEY}alpha_mean": profile.alpha_mean,
                **{f"{KEY}rate_{eps:g}": rate for eps, rate in profile.sink_rate.items()},
                f"{KEY}mass_first_{len(profile.first_k_mass)}": profile.first_k_mass[-1],
                f"{KEY}probe_seconds": round(time.perf_counter() - start, 4)}
        logs = {key: value for key, value in logs.items() if value is not None}  # undefined: not logged, never NaN
        self.history.append({"step": step, **logs})
        self._last_step = step
        # Logging resets the trainer's should_log: the loss due at this step would be logged a step late.
        pending = self.trainer.control.should_log
        self.trainer.log(dict(logs))  # a copy: the trainer adds its own keys (epoch) to what it is given
        self.trainer.control.should_log = pending
        return logs

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.at_start:
            self.measure(model or self.trainer.model, state.global_step)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self.measure(model or self.trainer.model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        # Training stopped early (an early-stopping callback): the last weights are not measured yet.
        if self._last_step != state.global_step:
            self.measure(model or self.trainer.model, state.global_step)


def _protocol_only(plan: ProfilePlan) -> ProfilePlan:
    known = {f.name for f in fields(ProfilePlan)}
    return replace(plan, **{name: 0 for name in EXTRA_PASSES if name in known})
