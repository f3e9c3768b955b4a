"""The index page's charts: one line (or point) per record of a suite, with 95% error bars.

Sink rate against <bos> and knockout dependence; first-token attention by relative depth; the
stress curves (suite score, retrieval accuracy, and attention to the first token and to the
text's own first token, against length, on a log axis with the 0-token prefix one step left of
the smallest length); α against context length. Colours follow the family (a legend in every
chart); a series' hover title names its record, and the page's family filter and search box
highlight the chosen ones and fade the rest, so a board of hundreds stays readable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sinkbench.board import curves, svg
from sinkbench.board.table import heading
from sinkbench.errors import SinkbenchError
from sinkbench.record import stats
from sinkbench.record.columns import COLUMNS_BY_NAME
from sinkbench.record.compare import Thresholds, compare

SINK_RATE = "sink_rate_0_8"  # ε=0.3 saturates on modern models (DESIGN.md); 0.8 spreads them out
DEPENDENCE = ("bos_dependence", "knockout_dependence")
PREFIX_AXIS = "stress prefix (tokens of distractor text, log scale; 0 set apart)"


@dataclass(frozen=True)
class Plot:
    id: str
    heading: str
    caption: str
    svg: str


@dataclass(frozen=True)
class Series:
    """One record on a chart: its table row, hover name, short label and family colour."""

    submission: object
    row: int
    colour: str
    dash: str | None


def family_styles(families) -> dict[str, tuple[str, str | None]]:
    """family -> (colour, dash), in sorted family order, so that a family's colour never depends on file order."""
    return {family: svg.style(i) for i, family in enumerate(sorted(set(families)))}


def identity(s) -> str:
    return f"{s.name} @ {s.revision} ({s.family})"


def labels(submissions) -> dict:
    """A short visible name per submission: the model, plus '@ revision' where the board holds several."""
    counts: dict[str, int] = {}
    for s in submissions:
        counts[s.name] = counts.get(s.name, 0) + 1
    return {s.path: s.name if counts[s.name] == 1 else f"{s.name} @ {s.revision}" for s in submissions}


def _legend(series: list[Series]) -> list[tuple[str, str, str | None]]:
    seen = {}
    for item in series:
        seen.setdefault(item.submission.family, (item.colour, item.dash))
    return [(family, colour, dash) for family, (colour, dash) in sorted(seen.items())]


@dataclass(frozen=True)
class Line:
    """One line of a chart: its points (curves.Point), colour and dash, hover text, the short name at its end
    (None: the legend names it) and the index table's row it belongs to."""

    points: list
    colour: str
    dash: str | None
    hover: str
    label: str | None = None
    row: int | None = None


def line_chart(key: str, title: str, caption: str, lines: list[Line], x_label: str, y_label: str, *,
               legend: list[tuple[str, str, str | None]] = (), end_labels: bool = False, empty: str | None = None,
               log_x: bool = True, fraction: bool = True, x_ticks: list[float] | None = None) -> Plot | None:
    """The board's one line chart (the index's, one line per record; a model page's, a few named lines): each
    line through its points with error bars where they have them. Above svg.MANY lines the dots and end labels
    go (hover names them). Without a point to draw: a chart saying `empty`, or None when `empty` is None."""
    drawn = [line for line in lines if line.points]
    if not drawn and empty is None:
        return None
    xs = x_ticks or sorted({p.x for line in drawn for p in line.points}) or [1, 2]
    ys = [v for line in drawn for p in line.points for v in (p.value, p.low, p.high)]
    many = len(drawn) > svg.MANY
    labelled = end_labels and not many
    chart = svg.Chart(title, x_label, y_label, xs, svg.value_ticks(ys, fraction), legend=legend, log_x=log_x,
                      decimals=0 if many else 1, right=170 if labelled else 30)
    for line in drawn:
        chart.series(line.points, line.colour, line.hover, row=line.row, dash=line.dash, dots=not many)
    if not drawn:
        chart.note(empty)
    elif labelled:
        chart.end_labels([(line.label, line.colour, line.points) for line in drawn])
    return Plot(key, title, caption, chart.to_string())


def record_lines(series: list[Series], read: Callable[[dict], list]) -> list[Line]:
    """A line per record through the points `read(record)` gives, named by its model at its end."""
    read_points = [(item, read(item.submission.record)) for item in series]
    names = labels([item.submission for item, points in read_points if points])
    return [Line(points, item.colour, item.dash, identity(item.submission), names.get(item.submission.path), item.row)
            for item, points in read_points]


def _index_chart(key: str, title: str, caption: str, series: list[Series], read: Callable[[dict], list],
                 x_label: str, y_label: str, **options) -> Plot:
    return line_chart(key, title, caption, record_lines(series, read), x_label, y_label, legend=_legend(series),
                      end_labels=True, empty="no record of this suite has these numbers", **options)


def dependence_plots(key: str, series: list[Series]) -> list[Plot]:
    """Sink rate (x) against <bos> dependence and against knockout dependence (y), one point per record."""
    x_column = COLUMNS_BY_NAME[SINK_RATE]
    plots = []
    for name in DEPENDENCE:
        column = COLUMNS_BY_NAME[name]
        chosen, left_out = [], 0
        for item in series:
            x, y = item.submission.entry(SINK_RATE), item.submission.entry(name)
            if y.by_construction:
                left_out += 1  # not a measurement: never placed among measurements
            elif x.value is not None and y.value is not None:
                chosen.append((item, curves.from_estimate(0, x), curves.from_estimate(0, y)))
        ys = [v for _, _, p in chosen for v in (p.value, p.low, p.high)]
        many = len(chosen) > svg.MANY
        chart = svg.Chart(f"{x_column.title} against {column.title}", x_column.title, heading(column),
                          [0, 0.2, 0.4, 0.6, 0.8, 1], svg.value_ticks(ys + [0.0], fraction=True),
                          legend=_legend(series), decimals=0 if many else 1, right=30 if many else 130)
        names = labels([item.submission for item, _, _ in chosen])
        placed = []
        for item, x, y in chosen:
            chart.point(x, y, item.colour, identity(item.submission), row=item.row)
            placed.append((chart.x(x.value) + 8, chart.y(y.value) + 4, names[item.submission.path], item.colour))
        if not many:
            chart.labels(placed)
        caption = (f"One point per record, with {stats.LEVEL} intervals both ways. Up: {column.description}. "
                   f"Right: {x_column.description}.")
        if left_out:
            caption += (f" Left out: {left_out} record{'s' * (left_out != 1)} whose tokenizer adds no <bos>, where the "
                        "value is 0 by construction, not a measurement.")
        plots.append(Plot(f"{key}-{name}", f"{x_column.title} and {column.title}", caption, chart.to_string()))
    return plots


def suite_plots(key: str, series: list[Series]) -> list[Plot]:
    """Every index chart of one suite's records (`key` makes the element ids unique per suite)."""
    records = [item.submission.record for item in series]
    prefixes = sorted({p.x for r in records for p in curves.prefix_curve(r)})
    plots = [_index_chart(
        f"{key}-depth", "First-token attention by relative depth", "α per layer from the sink profile (T=64), at "
        "layer index / number of layers, so that models of any depth share an axis. Means only: the record keeps "
        "no per-text value per layer, so these lines have no error bars.", series, curves.depth_curve,
        "relative depth (layer index / number of layers)", "α (attention to the first token)", log_x=False,
        x_ticks=[0, 0.2, 0.4, 0.6, 0.8, 1])]
    plots += dependence_plots(key, series)
    plots.append(_index_chart(
        f"{key}-prefix", "Suite score against stress prefix length", "Mean accuracy of the sweep tasks with <bos> "
        f"kept, for each length of unrelated text put before every example; bars: {stats.LEVEL} intervals (Wilson "
        "per task, combined as the suite score is). A flat line: the "
        "model ignores the distractor.", series, curves.prefix_curve, PREFIX_AXIS, heading(COLUMNS_BY_NAME["suite_score"]),
        x_ticks=prefixes or None))
    for family in sorted({f for r in records for f in curves.retrieval_families(r)}):
        plots.append(_index_chart(
            f"{key}-retrieval-{family}", f"Retrieval accuracy against length ({family})",
            f"Accuracy of the {family} retrieval tasks with <bos> kept, at each context length the model reaches; "
            f"bars: Wilson {stats.LEVEL} intervals.", series, lambda r, f=family: curves.retrieval_points(r, f),
            "context length (tokens, log scale)", "accuracy"))
    plots.append(_index_chart(
        f"{key}-attention", "Attention to the first token against stress prefix length", "Mean over the sweep "
        "tasks' documents of each document's attention to the sequence's first token (the sink, whatever token "
        f"it is); bars: the {stats.TASK_MEANS}.", series, curves.attention_curve, PREFIX_AXIS,
        "α (first token of the sequence)", x_ticks=prefixes or None))
    plots.append(_index_chart(
        f"{key}-text-start", "Attention to the text's own first token against stress prefix length", "The same for "
        "the first token of the text behind the prefix: does it take over the sink role? Absent where nothing "
        "stands in front of the text (no <bos>, no prefix).", series, lambda r: curves.attention_curve(r, "text_start"),
        PREFIX_AXIS, "α (first token of the text)", x_ticks=prefixes or None))
    plots.append(_index_chart(
        f"{key}-length", "α against context length", "The profile's length sweep: mean attention to the first token "
        f"over layers, heads and queries at each profiled length; bars: {stats.T_MEAN}, over the texts of that "
        "length. Barbero et al.: the sink grows with context length.", series, curves.length_sweep,
        "context length T (tokens, log scale)", "mean α"))
    return plots


RELEASE_COLUMNS = ("suite_score", *DEPENDENCE)
REGRESSION_COLOUR = "#d62728"


def _releases(series: list[Series]) -> dict[str, list[Series]]:
    """family -> its dated records of this suite, oldest first, for the families with two or more."""
    families: dict[str, list[Series]] = {}
    for item in series:
        if item.submission.release_date is not None:
            families.setdefault(item.submission.family, []).append(item)
    return {family: sorted(items, key=lambda i: (i.submission.release_date, i.submission.revision))
            for family, items in sorted(families.items()) if len(items) >= 2}


class Verdicts:
    """As `board track` decides: the columns on which a release regressed against the one before it
    (record.compare), or None for two releases that cannot be paired. Each pair is compared once per build,
    and with a cache (board/cache.py) once per content: a comparison of two 1 MB records takes a second."""

    def __init__(self, thresholds: Thresholds | None = None, cache=None):
        self.thresholds = thresholds or Thresholds()
        self.cache = cache
        self._known: dict[tuple, list[str] | None] = {}

    def __call__(self, before, after) -> list[str] | None:
        key = (before.digest, after.digest) if before.digest and after.digest else (id(before), id(after))
        if key in self._known:
            return self._known[key]
        rule = self.thresholds.describe()
        stored = self.cache.verdict(*key, rule) if self.cache is not None and isinstance(key[0], str) else False
        if stored is False:
            try:
                comparison = compare(before.record, after.record, self.thresholds)
                stored = [c.column.name for c in comparison.regressions]
            except SinkbenchError:
                stored = None
            if self.cache is not None and isinstance(key[0], str):
                self.cache.remember_verdict(*key, rule, stored)
        self._known[key] = stored
        return stored


def _regressed(items: list[Series], verdicts: Verdicts) -> tuple[dict[str, set[str]], int]:
    """{path: columns that regressed against the release before}, and how many consecutive pairs could not be
    paired (their documents differ)."""
    regressed, unpaired = {}, 0
    for before, after in zip(items, items[1:]):
        found = verdicts(before.submission, after.submission)
        if found is None:
            unpaired += 1
        else:
            regressed[after.submission.path] = set(found)
    return regressed, unpaired


def _day(value: float) -> str:
    return date.fromordinal(int(round(value))).isoformat()


def release_plots(key: str, series: list[Series], verdicts: Verdicts | None = None) -> list[Plot]:
    """The suite score and the dependence columns against release date, one line per family with two or
    more dated records, intervals as bars; a ring marks a release that regressed on that column against the
    one before it (board track's rule). Empty when no family has two dated releases."""
    verdicts = verdicts or Verdicts()
    thresholds = verdicts.thresholds
    families = _releases(series)
    if not families:
        return []
    regressed_at, unpaired = {}, 0
    for items in families.values():
        found, missed = _regressed(items, verdicts)
        regressed_at.update(found)
        unpaired += missed
    days = sorted({date.fromisoformat(i.submission.release_date).toordinal() for items in families.values() for i in items})
    ticks = days if len(days) <= 6 else [days[round(k * (len(days) - 1) / 5)] for k in range(6)]
    legend = _legend([item for items in families.values() for item in items])
    plots = []
    for name in RELEASE_COLUMNS:
        column = COLUMNS_BY_NAME[name]
        lines, ys = [], []
        for family, items in families.items():
            points = []
            for item in items:
                entry = item.submission.entry(name)
                if entry.value is None or entry.by_construction:
                    continue  # 0 by construction is not a measurement: never drawn among them
                day = date.fromisoformat(item.submission.release_date).toordinal()
                points.append((item, curves.from_estimate(day, entry)))
            lines.append((family, items[0], points))
            ys += [v for _, p in points for v in (p.value, p.low, p.high)]
        chart = svg.Chart(f"{column.title} by release", "release date", heading(column), ticks,
                          svg.value_ticks(ys + [0.0], fraction=column.unit == "fraction"), legend=legend, right=30,
                          x_format=_day)
        rings = 0
        for family, first, points in lines:
            chart.series([p for _, p in points], first.colour, f"{family}: releases", dash=first.dash)
            for item, point in points:
                if name in regressed_at.get(item.submission.path, ()):
                    rings += 1
                    chart.ring(point.x, point.value, REGRESSION_COLOUR,
                               f"{identity(item.submission)}: regression against the release before it")
        if not any(points for _, _, points in lines):
            chart.note("no family has these numbers at two releases")
        caption = (f"One line per family with two or more dated records of this suite, oldest first; bars: {stats.LEVEL} "
                   f"intervals. {column.description.capitalize()}. A red ring: a regression of that release against "
                   f"the one before it, as `sinkbench board track` decides ({thresholds.describe()}); {rings} here.")
        if unpaired:
            caption += f" {unpaired} consecutive pair{'s' * (unpaired != 1)} could not be paired (their documents differ)."
        plots.append(Plot(f"{key}-releases-{name}", f"{column.title} by release", caption, chart.to_string()))
    return plots
