"""A record as a short text report for the terminal: one line per condition, then the summary columns.

Every number says what it is: its unit, its interval, and where it comes from (the task
sequences of a condition, or the sink profile's own texts).
"""

from __future__ import annotations

from sinkbench.record.columns import COLUMNS, MACHINE, PROFILE, SINK_RATE_EPS, condition_suite_score, eps_key
from sinkbench.record.identity import describe_model
from sinkbench.record.numbers import MISSING, entry_text, number
from sinkbench.record.types import Condition, Record, as_record


def _weighted(parts: list[tuple[float | None, int]]) -> float | None:
    """Request-weighted mean over the tasks where the value is defined."""
    defined = [(value, n) for value, n in parts if value is not None]
    total = sum(n for _, n in defined)
    return sum(value * n for value, n in defined) / total if total else None


def _sinks(condition: Condition) -> tuple[float | None, dict]:
    """Request-weighted mean alpha and sink rates over the condition's tasks (those where they are defined)."""
    parts = list(condition.sinks.values())
    if not parts:
        return None, {}
    alpha = _weighted([(p.alpha_mean, p.n_requests) for p in parts])
    rates = {eps: _weighted([(p.sink_rate[eps], p.n_requests) for p in parts]) for eps in parts[0].sink_rate}
    return alpha, rates


def out_of_view(condition: Condition) -> list[int]:
    """Layers where no scored query of any task could see the first token (a sliding window or chunk
    past it): knockout changes nothing there, and α is undefined there."""
    counts = [p.queries_seeing_first_by_layer for p in condition.sinks.values()]
    if not counts or any(not c for c in counts):  # None, or ABSENT in a record of schema 2.0
        return []
    return [layer for layer, seen in enumerate(map(sum, zip(*counts))) if seen == 0]


def render_record(record: Record | dict, load_seconds: float | None = None, elapsed_seconds: float | None = None) -> str:
    """The report of a record (or its JSON form)."""
    record = as_record(record)
    model, profile = record.model, record.profile
    suite = record.provenance.suite
    lines = [f"{describe_model(model)}: {model.architecture}, {model.n_parameters / 1e6:.0f}M parameters, "
             f"computed in {model.dtype}, tokenizer adds <bos>: {'yes' if model.adds_bos else 'no'}; "
             f"suite {suite.name} {suite.version}",
             "",
             "Per condition, over its own task sequences: suite score (mean accuracy, 95% interval); attention to the",
             "first token (α) and sink rates, averaged over the queries that can see the first token and the layers",
             "where it is defined.",
             f"{'condition':30} {'suite score':>22} {'α':>6} "
             + " ".join(f"{'sink ε=' + eps_key(eps):>10}" for eps in SINK_RATE_EPS) + f" {'time':>9}"]
    for condition in record.conditions:
        if condition.skipped_whole:
            lines.append(f"{condition.name:30} skipped: {next(iter(condition.skipped.values()))}")
            continue
        score = condition_suite_score(condition, record)
        alpha, rates = _sinks(condition)
        time = "same as " + condition.identical_to if condition.identical_to else f"{condition.wall_time_s:.0f} s"
        rate_cells = " ".join(f"{number(rates.get(eps_key(eps))):>10}" for eps in SINK_RATE_EPS)
        lines.append(f"{condition.name:30} {entry_text(score) if score else MISSING:>22} {number(alpha):>6} "
                     f"{rate_cells} {time:>9}")
        hidden = out_of_view(condition)
        if hidden:
            what = "knockout changes nothing there; " if condition.spec.knockout else ""
            lines.append(f"{'':30} first token out of view in layers {_ranges(hidden)}: {what}α undefined there")
    lines += ["", f"Summary columns (95% intervals; MDE: the smallest change another record of these documents could "
                  f"show at 80% power). Sink rates, mean α and the rest marked 'profile' come from the sink profile: "
                  f"T={profile.T} tokens x {profile.n_sequences} texts ({profile.text_source})."]
    for column in COLUMNS:
        entry = record.summary[column.name]
        unit = "" if column.unit in ("fraction", "ratio", "relative change") else f" {column.unit}"
        text = entry_text(entry, column.decimals) + unit
        notes = []
        if entry.mde is not None:
            notes.append(f"MDE {entry.mde:.3f}")
        if column.source == PROFILE:
            notes.append("profile")
        if entry.note and column.kind != MACHINE:
            notes.append(entry.note)
        if column.kind == MACHINE:
            notes.append(f"this machine ({record.provenance.device}), not the model")
        lines.append(f"  {column.title:30} {text:>30}  {'; '.join(notes)}".rstrip())
    if load_seconds is not None or elapsed_seconds is not None:
        parts = []
        if load_seconds is not None:
            parts.append(f"model load {load_seconds:.0f} s")
        if elapsed_seconds is not None:
            parts.append(f"this command {elapsed_seconds:.0f} s in all")
        lines.append(f"  (wall time above: the computed conditions and the profile; {', '.join(parts)})")
    if record.status == "partial":
        lines += ["", "PARTIAL record: " + " | ".join(record.missing)]
    return "\n".join(lines)


def _ranges(layers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    runs, start = [], None
    for index, layer in enumerate(layers):
        if start is None:
            start = layer
        if index + 1 == len(layers) or layers[index + 1] != layer + 1:
            runs.append(str(start) if start == layer else f"{start}-{layer}")
            start = None
    return ", ".join(runs)
