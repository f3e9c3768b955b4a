"""Scoring requests fast and exactly: one pass per shared context, batches sized by tokens, logits only where scored.

A request is (context, continuation) in text tokens; its sequence is `fixed + context +
continuation` (sinkbench.grid.sequences). Three kinds of work are shared, none approximated:

* the condition's fixed start (head + stress prefix) is run once and its keys and values are
  attended to by every batch (`shared_prefix`);
* requests with the same context (the choices of a multiple-choice question) are packed into
  one row: the context once, then each continuation after it, each seeing the context and
  itself only, at its own true positions (`packed_rows`). Packing is skipped where it would not
  be exact for the sink statistics: a fixed start plus context shorter than the probe's first
  keys (those keys would then be other choices' tokens), or a context cut to fit;
* rows are batched by a token budget, longest first, so short rows fill a pass densely.

Every request's sink statistics still come from its own queries in its own pass: the shared
context's queries and its continuation's, weighted by count.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from sinkbench.grid.sequences import Sequences
from sinkbench.harness.ledger import RequestStats
from sinkbench.measure.attention import PADDING, PackedRows, SharedPrefix, capture_prefix, packed_rows, shared_prefix
from sinkbench.measure import metrics
from sinkbench.measure.probe import GroupStats, SinkProbe

# Tokens per pass, chosen by measurement (bench/eval_speed.py --budgets) on this project's 2-core
# CPU: SmolLM2-135M scores LAMBADA at 64 ms/doc with 1024 tokens a pass, 72 with 4096 and 75 with
# 8192 (activations of a 1k-token pass stay in cache). A GPU wants far wider passes; 16384 there
# is a starting point, not a measurement (no GPU was at hand).
CPU_MAX_BATCH_TOKENS = 1024
GPU_MAX_BATCH_TOKENS = 16384


def default_max_batch_tokens(device) -> int:
    return CPU_MAX_BATCH_TOKENS if str(device).startswith("cpu") else GPU_MAX_BATCH_TOKENS
# Logits of the scored positions, float32: 256 MB a pass (a 262k vocabulary: ~250 positions).
DEFAULT_MAX_LOGITS = 64 * 2**20
# Rows are sorted longest first and a pass is as wide as its first row: without a cap, a pass
# of short multiple-choice rows is a quarter padding (ARC-Easy at 4k tokens a pass: 24%).
DEFAULT_MAX_PADDING = 0.1


@dataclass(frozen=True)
class Batching:
    """How rows are put into forward passes."""

    max_tokens: int = CPU_MAX_BATCH_TOKENS  # rows x longest row, padding included
    max_rows: int | None = None  # a row cap (lm-eval's batch_size=N); None: the token budget alone
    max_logits: int = DEFAULT_MAX_LOGITS  # scored positions x vocabulary
    max_padding: float = DEFAULT_MAX_PADDING  # a pass closes before its padding share would pass this
    share_contexts: bool = True  # pack the choices of a question behind one context pass


@dataclass
class Request:
    key: tuple | None  # (task, doc_id, idx[, window]) for the ledger; None for anonymous requests
    context: list[int]  # text tokens only: no head, no stress prefix
    continuation: list[int]


@dataclass
class _Member:
    """One request scored in a row."""

    request: int  # index into the request list
    sequence: list[int]  # its whole sequence: fixed + context + continuation
    predictors: list[int]  # row positions whose logits predict each continuation token
    spans: list[tuple[int, int]]  # row positions of its own queries


@dataclass
class _Row:
    inputs: list[int]  # token ids fed to the model (after the shared prefix, if any)
    positions: list[int]  # true position of each
    segments: list[int] | None  # packed rows: 0 context, k >= 1 the k-th continuation
    members: list[_Member] = field(default_factory=list)

    @property
    def n_scored(self) -> int:
        return len({p for member in self.members for p in member.predictors})


@dataclass
class ScoreCounts:
    """What the scoring cost: tokens in the model's input, padding among them, sequences cut."""

    tokens_fed: int = 0
    padding: int = 0
    passes: int = 0
    truncated: int = 0

    def add(self, other: "ScoreCounts") -> None:
        for name in ("tokens_fed", "padding", "passes", "truncated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def plan_rows(requests: list[Request], sequences: Sequences, skip: int, share: bool, first_k: int) -> tuple[list[_Row], int]:
    """Rows for `requests` (and how many were cut to fit); `skip` tokens of the fixed start are a shared prefix."""
    fixed = len(sequences.fixed)
    built = [sequences.scored(r.context, r.continuation) for r in requests]
    truncated = sum(cut for _, cut in built)
    groups: dict[tuple, list[int]] = {}
    for index, (request, (sequence, cut)) in enumerate(zip(requests, built)):
        context = sequence[: len(sequence) - len(request.continuation)]  # fixed + the context as it fits
        shareable = share and not cut and request.context and len(context) >= max(first_k, fixed + 1)
        groups.setdefault((tuple(context), index) if not shareable else (tuple(context),), []).append(index)
    rows = []
    for members in groups.values():
        if len(members) == 1:
            index = members[0]
            sequence = built[index][0]
            inputs = sequence[skip:-1]
            n, width = len(inputs), len(requests[index].continuation)
            own = min(fixed - skip, n - 1)
            row = _Row(inputs, list(range(skip, skip + n)), None)
            row.members.append(_Member(index, sequence, list(range(n - width, n)), [(own, n)]))
        else:
            first = built[members[0]][0]
            shared = first[skip : len(first) - len(requests[members[0]].continuation)]
            start = len(shared) + skip  # true position of every continuation's first token
            row = _Row(list(shared), list(range(skip, start)), [0] * len(shared))
            own = fixed - skip
            for number, index in enumerate(members, start=1):
                continuation = requests[index].continuation
                begin = len(row.inputs)
                row.inputs += continuation[:-1]
                row.positions += range(start, start + len(continuation) - 1)
                row.segments += [number] * (len(continuation) - 1)
                predictors = [len(shared) - 1] + list(range(begin, len(row.inputs)))
                spans = [(own, len(shared))] + ([(begin, len(row.inputs))] if len(continuation) > 1 else [])
                row.members.append(_Member(index, built[index][0], predictors, spans))
        rows.append(row)
    return rows, truncated


def plan_batches(rows: list[_Row], batching: Batching, vocab_size: int) -> list[list[_Row]]:
    """Rows, longest first, cut into passes within the token, row, logit and padding budgets
    (a row longer than the token budget goes alone)."""
    ordered = sorted(rows, key=lambda row: -len(row.inputs))
    batches, current, scored, real = [], [], 0, 0
    for row in ordered:
        width = len(current[0].inputs) if current else len(row.inputs)
        size = (len(current) + 1) * width
        fits = size <= batching.max_tokens
        fits &= batching.max_rows is None or len(current) < batching.max_rows
        fits &= (scored + row.n_scored) * vocab_size <= batching.max_logits
        fits &= 1 - (real + len(row.inputs)) / size <= batching.max_padding
        if current and not fits:
            batches.append(current)
            current, scored, real = [], 0, 0
        current.append(row)
        scored += row.n_scored
        real += len(row.inputs)
    if current:
        batches.append(current)
    return batches


class Scorer:
    """Log-likelihoods and greedy matches of requests under one condition, with per-request sink statistics."""

    def __init__(self, model, sequences: Sequences, probe: SinkProbe, batching: Batching, device, reuse_prefix: bool = True):
        self.model = model
        self.sequences = sequences
        self.probe = probe
        self.batching = batching
        self.device = device
        self.reuse_prefix = reuse_prefix  # False recomputes the stress prefix per sequence (benchmark baseline)
        self.counts = ScoreCounts()
        self._prefix: SharedPrefix | None = None

    def shared(self) -> SharedPrefix | None:
        """Keys and values of all fixed tokens but the last, computed once (inside the probe's session).

        The last fixed token runs with each batch, so every scored position has an input token in it.
        """
        if not (self.sequences.stress and self.reuse_prefix):
            return None
        if self._prefix is None:
            ids = torch.tensor([list(self.sequences.fixed[:-1])], device=self.device)
            with capture_prefix() as layers:
                self.model(ids, use_cache=False)
            self._prefix = SharedPrefix(layers, ids.shape[1])
        return self._prefix

    @torch.no_grad()
    def score(self, requests: list[Request], progress: bool = False, label: str = "") -> tuple[list[tuple[float, bool]], list[RequestStats]]:
        """((log P(continuation | fixed + context), greedy match), sink statistics) per request, in order."""
        results: list = [None] * len(requests)
        stats: list = [None] * len(requests)
        with self.probe:
            prefix = self.shared()
            skip = prefix.length if prefix is not None else 0
            rows, truncated = plan_rows(requests, self.sequences, skip, self.batching.share_contexts, self.probe.first_k)
            self.counts.truncated += truncated
            batches = plan_batches(rows, self.batching, self.model.config.vocab_size)
            total = sum(len(row.inputs) for row in rows)
            bar = tqdm(total=total, desc=label or f"sinkbench {self.sequences.condition.name}", unit="tok",
                       unit_scale=True, disable=not progress)
            for batch in batches:
                self._run(batch, prefix, requests, results, stats)
                bar.update(sum(len(row.inputs) for row in batch))
            bar.close()
        return results, stats

    def _run(self, batch: list[_Row], prefix: SharedPrefix | None, requests, results, stats) -> None:
        width = len(batch[0].inputs)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        positions = torch.zeros(len(batch), width, dtype=torch.long)
        segments = torch.full((len(batch), width), PADDING, dtype=torch.long)
        keep = torch.zeros(len(batch), width, dtype=torch.bool)
        groups = torch.full((len(batch), width), -1, dtype=torch.long)
        spans: dict[tuple[int, int, int], int] = {}
        for number, row in enumerate(batch):
            n = len(row.inputs)
            ids[number, :n] = torch.tensor(row.inputs)
            # Padding repeats the last position (right padding is never seen by a real query, and
            # stays within the model's position table).
            positions[number] = row.positions[-1]
            positions[number, :n] = torch.tensor(row.positions)
            segments[number, :n] = torch.tensor(row.segments) if row.segments is not None else 0
            for member in row.members:
                keep[number, member.predictors] = True
                for start, stop in member.spans:
                    if (number, start, stop) not in spans:
                        spans[number, start, stop] = len(spans)
                        groups[number, start:stop] = spans[number, start, stop]
        packed = any(row.segments is not None for row in batch)
        self.probe.group(groups.to(self.device), len(spans))
        kwargs = {"use_cache": False, "logits_to_keep": keep.to(self.device)}
        if prefix is not None or packed:
            kwargs["position_ids"] = positions.to(self.device)
        with (shared_prefix(prefix) if prefix is not None else nullcontext()), \
                (packed_rows(PackedRows(positions.to(self.device), segments.to(self.device))) if packed else nullcontext()):
            logits = self.model(ids.to(self.device), **kwargs).logits  # (scored positions, V)
        logits = logits.reshape(-1, logits.shape[-1]).float()
        normaliser = torch.logsumexp(logits, dim=-1)  # (N,)
        greedy = logits.argmax(dim=-1)
        flat = (keep.reshape(-1).cumsum(0) - 1).reshape(keep.shape).to(logits.device)  # (B, W) -> row of `logits`
        sink = self.probe.collect()
        for number, row in enumerate(batch):
            for member in row.members:
                at = flat[number, member.predictors]
                target = torch.tensor(requests[member.request].continuation, device=logits.device)
                logprob = (logits[at, target] - normaliser[at]).sum().item()
                results[member.request] = (logprob, bool((greedy[at] == target).all()))
                stats[member.request] = request_stats(sink, [spans[number, s, e] for s, e in member.spans], member.sequence)
        self.counts.add(ScoreCounts(tokens_fed=len(batch) * width, padding=len(batch) * width - sum(len(r.inputs) for r in batch),
                                    passes=1))


def request_stats(sink: GroupStats, groups: list[int], sequence: list[int]) -> RequestStats:
    """One request's statistics from the query groups that are its own queries.

    Per layer, attention to a key is averaged over the request's queries that can see it: each
    group's mean weighted by how many of its queries see the key there (NaN where none does).
    """
    seeing = sink.n_seeing_first[groups].float()  # (g, L)
    count = seeing.sum(0)  # (L,)

    def pooled(means: torch.Tensor, weights: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        summed = (means[groups].float().nan_to_num(0.0) * weights).sum(0)
        return torch.where(total > 0, summed / total.clamp(min=1), torch.full_like(summed, float("nan")))

    first_k = pooled(sink.first_k_mass, seeing[:, :, None, None], count[:, None, None])  # (L, H, K)
    text_start = None
    if sink.key_mass is not None:
        seeing_key = sink.n_seeing_keys[groups, :, 0].float()  # (g, L)
        text_start = pooled(sink.key_mass[..., :1], seeing_key[:, :, None, None], seeing_key.sum(0)[:, None, None])[..., 0]
    return RequestStats(first_k[..., 0], metrics.mean_defined(first_k, (0, 1)), text_start, len(sequence), sequence[0],
                        count)
