"""The board's charts, drawn from records: sink rate against sink dependence, suite score against
stress prefix, α against context length, a layer × head α heatmap per model, and the α difference
of two records (for `board compare`).

Colours and markers follow the family (a legend in every chart); every model is named, by a
label beside its mark and in the hover title.
"""

from __future__ import annotations

from dataclasses import dataclass

from sinkbench.board import svg
from sinkbench.board.table import heading
from sinkbench.grid.conditions import BASELINE, PREFIX
from sinkbench.record.columns import COLUMNS_BY_NAME, Missing, accuracy_tasks, conditions_of, suite_score

SINK_RATE = "sink_rate_0_8"  # ε=0.3 saturates on modern models (DESIGN.md); 0.8 spreads them out
DEPENDENCE = ("bos_dependence", "knockout_dependence")


@dataclass(frozen=True)
class Plot:
    id: str
    heading: str
    caption: str
    svg: str


def styles(families) -> dict[str, tuple[str, str]]:
    """family -> (colour, marker), in sorted family order so that a board's colours never depend on file order."""
    return {family: (svg.PALETTE[i % len(svg.PALETTE)], svg.MARKERS[(i // len(svg.PALETTE)) % len(svg.MARKERS)])
            for i, family in enumerate(sorted(set(families)))}


def labels(submissions) -> dict:
    """A short visible name per submission: the model, plus '@ revision' where the board holds several."""
    counts: dict[str, int] = {}
    for s in submissions:
        counts[s.name] = counts.get(s.name, 0) + 1
    return {s.path: s.name if counts[s.name] == 1 else f"{s.name} @ {s.revision}" for s in submissions}


def _identity(s) -> str:
    return f"{s.name} (family {s.family}, revision {s.revision})"


def _legend(style: dict) -> list[tuple[str, str, str]]:
    return [(family, colour, marker) for family, (colour, marker) in style.items()]


def _fraction_ticks(values) -> list[float]:
    values = [v for v in values if v is not None]
    if all(0 <= v <= 1 for v in values):
        return [0, 0.2, 0.4, 0.6, 0.8, 1]
    return svg.nice_ticks(min([0, *values]), max([1, *values]))


def dependence_plots(submissions, style, names) -> list[Plot]:
    """Sink rate (x) against <bos> dependence and against knockout dependence (y), one point per record."""
    x_column = COLUMNS_BY_NAME[SINK_RATE]
    plots = []
    for name in DEPENDENCE:
        column = COLUMNS_BY_NAME[name]
        points = [(s, s.value(SINK_RATE), s.value(name)) for s in submissions]
        points = [(s, x, y) for s, x, y in points if x is not None and y is not None]
        chart = svg.Chart(f"{x_column.title} against {column.title}", x_column.title, heading(column),
                          [0, 0.2, 0.4, 0.6, 0.8, 1], _fraction_ticks([y for _, _, y in points]), right=120,
                          legend=_legend(style))
        placed = []
        for s, x, y in points:
            colour, marker = style[s.family]
            no_bos = s.record["summary"][name]["by_construction"]
            hover = f"{_identity(s)}: {x_column.title} {x:.3f}, {column.title} {y:.3f}"
            if no_bos:
                hover += " (0 by construction: the tokenizer adds no <bos>)"
            chart.point(x, y, colour, marker, hover, hollow=no_bos)
            placed.append((chart.x(x) + 8, chart.y(y) + 4, names[s.path], colour))
        chart.labels(placed)
        caption = f"One point per record. Up: {column.description}. Right: {x_column.description}."
        if name == "bos_dependence":
            caption += " Hollow marks: the tokenizer adds no <bos>, so the value is 0 by construction."
        plots.append(Plot(f"plot-{name}", f"{x_column.title} and {column.title}", caption, chart.to_string()))
    return plots


def _end_labels(chart: svg.Chart, series) -> None:
    chart.labels([(chart.x(points[-1][0]) + 8, chart.y(points[-1][1]) + 4, label, colour)
                  for label, colour, points in series])


def prefix_points(record: dict) -> list[tuple[int, float]]:
    """(prefix tokens, suite score) of the baseline and every stress-prefix condition, by prefix length."""
    tasks = accuracy_tasks(record)
    points = []
    for condition in conditions_of(record, BASELINE) + conditions_of(record, PREFIX):
        try:
            points.append((condition["spec"]["prefix_length"], suite_score(condition, tasks)))
        except Missing:
            continue
    return sorted(points)


def prefix_plot(submissions, style, names) -> Plot:
    series = [(s, prefix_points(s.record)) for s in submissions]
    series = [(s, points) for s, points in series if points]
    xs = sorted({x for _, points in series for x, _ in points}) or [0, 1]
    ys = [y for _, points in series for _, y in points]
    chart = svg.Chart("Suite score under context-length stress", "stress prefix (tokens of distractor text)",
                      heading(COLUMNS_BY_NAME["suite_score"]), xs if len(xs) <= 6 else svg.nice_ticks(0, max(xs)),
                      _fraction_ticks(ys), right=180, legend=_legend(style))
    drawn = []
    for s, points in series:
        colour, marker = style[s.family]
        hover = f"{_identity(s)}: " + ", ".join(f"prefix {x} → {y:.3f}" for x, y in points)
        chart.line(points, colour, marker, hover)
        drawn.append((names[s.path], colour, points))
    _end_labels(chart, drawn)
    return Plot("plot-prefix", "Suite score against stress prefix length",
                "Mean accuracy with <bos> kept, for each length of unrelated text put before every example. "
                "A flat line: the model ignores the distractor.", chart.to_string())


def length_plot(submissions, style, names) -> Plot:
    series = [(s, [(p["T"], p["alpha_mean"]) for p in s.record["profile"]["length_sweep"]["points"]])
              for s in submissions]
    lengths = sorted({x for _, points in series for x, _ in points})
    chart = svg.Chart("Attention to the first token against context length", "context length T (tokens, log scale)",
                      "mean α", lengths, _fraction_ticks([y for _, points in series for _, y in points]),
                      right=180, log_x=True, legend=_legend(style))
    drawn = []
    for s, points in series:
        colour, marker = style[s.family]
        hover = f"{_identity(s)}: " + ", ".join(f"T={x} → α {y:.3f}" for x, y in points)
        chart.line(points, colour, marker, hover)
        drawn.append((names[s.path], colour, points))
    _end_labels(chart, drawn)
    return Plot("plot-length", "α against context length",
                "The length sweep: mean attention to the first token over layers, heads and queries, at each "
                "profiled length. Barbero et al.: the sink grows with context length.", chart.to_string())


def alpha_heatmap(s, label: str) -> str:
    """One model's α per (layer, head); the hover of a cell is short (a 32 x 32 model has 1,024 of them)."""
    heatmap = svg.heatmap(s.record["profile"]["alpha_by_head"], f"{label} ({s.family})",
                          lambda value: svg.colour(svg.VIRIDIS, value),
                          lambda layer, head, value: f"layer {layer}, head {head}: α = {value:.3f}")
    heatmap.find("title").text = f"α per layer and head: {_identity(s)}"
    return svg.to_string(heatmap)


def alpha_colour_bar() -> str:
    return svg.to_string(svg.colour_bar("α: attention to the first token", svg.VIRIDIS, 0.0, 1.0))


def board_plots(submissions) -> tuple[list[Plot], list[tuple[str, str]]]:
    """The page's charts and its (label, heatmap) pairs; submissions in the table's order."""
    style, names = styles(s.family for s in submissions), labels(submissions)
    plots = dependence_plots(submissions, style, names)
    plots += [prefix_plot(submissions, style, names), length_plot(submissions, style, names)]
    heatmaps = [(names[s.path], alpha_heatmap(s, names[s.path])) for s in submissions]
    return plots, heatmaps


def difference_heatmap(before: list[list[float]], after: list[list[float]], names: tuple[str, str], eps: float) -> str:
    """A standalone SVG: α(B) − α(A) per (layer, head) on a diverging scale; heads that crossed ε outlined."""
    delta = [[b - a for a, b in zip(row_a, row_b)] for row_a, row_b in zip(before, after)]
    limit = max([abs(v) for row in delta for v in row] + [0.05])
    crossed = frozenset((layer, head) for layer, row in enumerate(before) for head, a in enumerate(row)
                        if (a > eps) != (after[layer][head] > eps))

    def hover(layer, head, value):
        a, b = before[layer][head], after[layer][head]
        change = "gained its sink" if a <= eps < b else "lost its sink" if b <= eps < a else "no sink change"
        return f"layer {layer}, head {head}: α {a:.3f} → {b:.3f} ({value:+.3f}); {change} at ε={svg.tick_label(eps)}"

    fill = lambda v: svg.colour(svg.DIVERGING, 0.5 + v / (2 * limit))  # noqa: E731
    grid = svg.heatmap(delta, "α(B) − α(A) per layer and head", fill, hover, size=360, marked=crossed)
    caption = svg.text_block([f"A: {names[0]}", f"B: {names[1]}",
                              f"Outlined: the {len(crossed)} heads that crossed ε={svg.tick_label(eps)} (gained or lost their sink)."])
    bar = svg.colour_bar("α change (red: more attention to the first token, blue: less)", svg.DIVERGING, -limit, limit,
                         width=320)
    return svg.to_string(svg.stack(caption, grid, bar))
