"""The record's parts as types: what `sinkbench run` builds, what every reader of a record reads.

A record on disk is JSON (sinkbench.record.format); in code it is a `Record`, built from these
parts and read through their attributes. The JSON Schema (schema/record.schema.json) stays the
contract for what a file may hold, and `sinkbench validate` checks a file against it before
anything parses it; tests/test_record_types.py ties every type here to the schema (the same
keys, the same required ones), so the two cannot drift apart. Reading and writing the JSON form,
key for key, is sinkbench.record.jsonform's: `Record.from_json(x).to_json() == x` for every valid
record, so a record rewritten through the types is byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from sinkbench.grid.conditions import Condition as Spec
from sinkbench.record.jsonform import ABSENT, Part, RecordTypeError, optional, parse_part, rest

__all__ = ["ABSENT", "Part", "RecordTypeError", "Spec"]  # with every part below


# ---- estimates --------------------------------------------------------------------------


@dataclass
class Estimate(Part):
    """A number with its 95% interval (sinkbench.record.stats.estimate): None where it is undefined."""

    value: float | None
    stderr: float | None
    ci_low: float | None
    ci_high: float | None
    method: str
    n: int
    note: str | None


@dataclass
class SummaryValue(Estimate):
    """A summary column's estimate, with its MDE and whether it is 0 by construction (not measured)."""

    mde: float | None
    by_construction: bool


# ---- the model and how it was run -------------------------------------------------------


@dataclass
class Weights(Part):
    format: str | None
    quantization: str | None
    tensor_types: list[str]
    file: str | None
    checkpoint: str | None
    basename: str | None
    size_label: str | None
    finetune: str | None
    base_model: str | None


@dataclass
class Model(Part):
    name: str
    source: str
    family: str
    architecture: str
    revision: str | None
    weights_sha256: str | None
    n_parameters: int
    dtype: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    max_context: int | None
    bos_token: str | None
    bos_token_id: int | None
    adds_bos: bool
    release_date: str | None
    weights: Weights | None = optional()  # schema 3.0 on
    attention_implementation: str = optional()  # schema 3.0 on


@dataclass
class SuiteRef(Part):
    name: str
    version: str
    custom_grid: bool


@dataclass
class StressPrefix(Part):
    source: str
    source_sha256: str
    char_offset: int


@dataclass
class Provenance(Part):
    sinkbench_version: str
    lm_eval_version: str
    transformers_version: str
    torch_version: str
    python_version: str
    device: str
    date: str
    model_load_s: float | None
    seed: int
    command: list[str]
    limit: int | None
    batch_size: int | None
    max_batch_tokens: int
    suite: SuiteRef
    task_hashes: dict[str, str]
    data_files: dict[str, str]
    stress_prefix: StressPrefix | None


# ---- tasks and conditions ---------------------------------------------------------------


@dataclass
class Retrieval(Part):
    family: str
    length: int


@dataclass
class Documents(Part):
    """A task's documents in order: ids, content hashes, and (perplexity tasks) words and bytes."""

    ids: list[int]
    hashes: list[str]
    words: list[float] | None
    bytes: list[float] | None


@dataclass
class Task(Part):
    kind: str
    primary_metric: str
    higher_is_better: dict[str, bool]
    retrieval: Retrieval | None
    documents: Documents


@dataclass
class Outcome(Part):
    """Each document's outcome under one condition, aligned with the first n of the task's documents; `metrics`:
    the per-document values of every other metric (acc, acc_norm, ...), by name."""

    n: int
    alpha: list[float | None]
    text_start: list[float | None] = optional()
    loglik: list[float] = optional()
    metrics: dict[str, list[float]] = rest()

    def values(self, name: str):
        """The per-document list `name` (alpha, text_start, loglik or a metric); None where the outcome has none."""
        if name in self.metrics:
            return self.metrics[name]
        value = getattr(self, name) if name in _OUTCOME_LISTS else None
        return None if value is ABSENT else value


_OUTCOME_LISTS = {f.name for f in fields(Outcome)} - {"n", "metrics"}  # alpha, text_start, loglik


@dataclass
class FirstToken(Part):
    id: int
    token: str
    count: int


@dataclass
class TaskSinks(Part):
    """The sink metrics of one task's scoring passes under one condition."""

    n_requests: int
    alpha_mean: float | None
    alpha_by_layer: list[float | None]
    text_start_by_layer: list[float | None] | None
    sink_rate: dict[str, float | None]
    first_k_mass: list[float]
    mean_tokens: float
    max_tokens: int
    queries_seeing_first_by_layer: list[float | None] | None = optional()


@dataclass
class Quartile(Part):
    quartile: int
    n: int
    alpha_low: float
    alpha_high: float
    accuracy: float


@dataclass
class Link(Part):
    """Per accuracy task: correctness against attention to the first token (sinkbench.record.link)."""

    metric: str
    n: int
    quartiles: list[Quartile]
    point_biserial: float | None
    ci_low: float | None
    ci_high: float | None
    n_bootstrap: int
    note: str | None


@dataclass
class Condition(Part):
    """One cell of the grid as the record keeps it: the spec, and per task its scores, every document's outcome,
    the sink metrics and the link; a condition identical to an earlier one carries that one's numbers."""

    name: str
    role: str
    spec: Spec
    tasks: list[str]
    identical_to: str | None
    skipped: dict[str, str]
    scores: dict[str, dict[str, Estimate]]
    outcomes: dict[str, Outcome]
    sinks: dict[str, TaskSinks]
    first_tokens: list[FirstToken]
    tokens_processed: int
    truncated_requests: int
    wall_time_s: float
    link: dict[str, Link]

    @property
    def skipped_whole(self) -> bool:
        """None of its tasks ran (a stress prefix beyond the model's context)."""
        return all(task in self.skipped for task in self.tasks)

    def identical(self, name: str, role: str, spec: Spec, tasks: list[str]) -> Condition:
        """The condition `name` that sees exactly this one's token sequences: these numbers, for its tasks, computed
        once (the record says whose they are)."""
        keep = set(tasks)

        def kept(part: dict) -> dict:
            return {task: value for task, value in part.items() if task in keep}

        return Condition(name=name, role=role, spec=spec, tasks=list(tasks), identical_to=self.name,
                         skipped=kept(self.skipped), scores=kept(self.scores), outcomes=kept(self.outcomes),
                         sinks=kept(self.sinks), first_tokens=self.first_tokens, tokens_processed=self.tokens_processed,
                         truncated_requests=self.truncated_requests, wall_time_s=0.0, link=kept(self.link))


# ---- the sink profile -------------------------------------------------------------------


@dataclass
class PerText(Part):
    """Each profiled text's own values, aligned with `hashes`: what intervals over texts resample."""

    hashes: list[str]
    alpha_mean: list[float | None]
    sink_rate: dict[str, list[float | None]]


@dataclass
class StrongestHead(Part):
    layer: int
    head: int
    alpha: float


@dataclass
class MassiveActivations(Part):
    ratio_by_layer: list[float | None]
    top_position_by_layer: list[int]
    fraction_at_first_token_by_layer: list[float]
    ratio_by_text: list[list[float | None]]


@dataclass
class Overmixing(Part):
    n_sequences: int
    relative_change_by_layer: list[float | None] | None
    representation_spread_by_layer: list[float | None] | None
    last_layer_by_sequence: list[float]


@dataclass
class OvermixingPair(Part):
    with_bos: Overmixing | None
    without_bos: Overmixing | None


@dataclass
class Alpha(Part):
    """First-token attention over a set of texts of T tokens: the sink rate per eps, mean α, α by layer and by
    (layer, head), and each text's own values (the profile, a point of its length sweep, the random-token probe)."""

    T: int
    n_sequences: int
    sink_rate: dict[str, float | None]
    alpha_mean: float | None
    alpha_by_layer: list[float | None]
    alpha_by_head: list[list[float | None]]
    per_text: PerText


@dataclass
class SweepPoint(Alpha):
    alpha_mean_by_type: dict[str, float | None] = optional()  # schema 3.0 on
    queries_seeing_first_by_layer: list[float | None] = optional()  # schema 3.0 on


@dataclass
class LengthSweep(Part):
    text_source: str
    points: list[SweepPoint]


@dataclass
class Layer(Part):
    """A decoder layer: full, sliding or chunked attention, or none (a recurrent layer of a hybrid)."""

    index: int
    type: str
    span: int | None
    learned_sink: bool
    queries_seeing_first: float


@dataclass
class RandomTokens(Alpha):
    """Gu et al.'s probe: uniformly drawn token ids behind the profile's head."""

    seed: int
    alpha_mean_by_type: dict[str, float | None]


@dataclass
class Profile(Alpha):
    """The sink profile: Gu et al.'s protocol on the profile's texts, and what sinkbench measures beside it."""

    text_source: str
    bos: str
    eps: list[float]
    mean_tokens: float
    first_tokens: list[FirstToken]
    first_k_mass: list[float]
    strongest_heads: list[StrongestHead]
    massive_activations: MassiveActivations
    value_norm_ratio_by_layer: list[float | None]
    learned_sink_mass_by_layer: list[float] | None
    overmixing: OvermixingPair
    length_sweep: LengthSweep
    wall_time_s: float
    layers: list[Layer] = optional()  # schema 3.0 on
    alpha_mean_by_type: dict[str, float | None] = optional()  # schema 3.0 on
    random_tokens: RandomTokens | None = optional()  # schema 3.0 on


# ---- the record -------------------------------------------------------------------------


@dataclass
class Record(Part):
    """One model, one revision, one suite: what was measured, how, and every number behind the summary."""

    schema_version: str
    status: str
    missing: list[str]
    model: Model
    provenance: Provenance
    tasks: dict[str, Task]
    profile: Profile
    conditions: list[Condition]
    summary: dict[str, SummaryValue]

    PATH: ClassVar[str] = "record"

    @classmethod
    def from_json(cls, data, path: str | None = None) -> Record:
        return parse_part(cls, data, path or cls.PATH)

    def condition(self, name: str) -> Condition:
        for condition in self.conditions:
            if condition.name == name:
                return condition
        raise KeyError(name)


def as_record(record) -> Record:
    """A Record, from a Record or its JSON form (a record loaded with json, or built by hand)."""
    return record if isinstance(record, Record) else Record.from_json(record)
