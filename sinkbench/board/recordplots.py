"""A model page's charts: one record's sink profile and stress curves, with 95% error bars where the record
holds the values behind a mean, and the layer x head α heatmap."""

from __future__ import annotations

from sinkbench.board import curves, heatmap, svg
from sinkbench.board.plots import PREFIX_AXIS, Line, Plot, line_chart
from sinkbench.board.table import heading
from sinkbench.record import stats
from sinkbench.record.columns import COLUMNS_BY_NAME
from sinkbench.record.types import Record, as_record
from sinkbench.record.numbers import estimate


def _chart(key: str, title: str, caption: str, named: list[tuple[str, list]], x_label: str, y_label: str,
           **options) -> Plot | None:
    """plots.line_chart of a few named lines (label, points), styled in order and named in a legend (when more
    than one); None when none has a point."""
    named = [(label, points) for label, points in named if points]
    styles = [svg.style(index) for index in range(len(named))]
    lines = [Line(points, colour, dash, f"{label}: " + ", ".join(_point_text(p) for p in points))
             for (label, points), (colour, dash) in zip(named, styles)]
    legend = [(label, colour, dash) for (label, _), (colour, dash) in zip(named, styles)] if len(named) > 1 else []
    return line_chart(key, title, caption, lines, x_label, y_label, legend=legend, **options)


def _point_text(point) -> str:
    x = svg.tick_label(point.x) if float(point.x).is_integer() else f"{point.x:.2f}"
    return f"{x} → {estimate(point.value, point.low, point.high)}"


def _layer_ticks(n_layers: int) -> list[float]:
    return svg.nice_ticks(0, max(1, n_layers - 1))


def record_plots(record: Record | dict) -> list[Plot]:
    """Every chart of a model page (of a record or its JSON form), in page order; a chart the record has no numbers
    for is left out."""
    record = as_record(record)
    profile = record.profile
    n_layers = len(profile.alpha_by_layer)
    types = curves.layer_types(record)
    mixed = curves.mixed_layers(record)
    by_length = [(f"T={profile.T} (profile)", curves.layer_curve(profile.alpha_by_layer))]
    if mixed:  # the profile's curve again, one line per kind of layer, so that the kinds read apart
        by_length = [(f"T={profile.T}, {kind} layers", curves.layer_curve(profile.alpha_by_layer, types[kind]))
                     for kind in ("full", "sliding", "chunked") if kind in types]
    by_length += [(f"T={p.T}", curves.layer_curve(p.alpha_by_layer)) for p in profile.length_sweep.points
                  if p.T != profile.T]
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(types.items()))
    layer_note = (f" Layers: {kinds}; a layer with no value is one without softmax attention or one no query could "
                  "see the first token through (a sliding window past it)." if types else "")
    length_series = [("mean α, all layers" if mixed else "mean α", curves.length_sweep(record))]
    if mixed:
        length_series.append(("mean α, full layers (means only)", curves.sweep_by_type(record, "full")))
    attention_series = [("first token of the sequence", curves.attention_curve(record)),
                        ("first token of the text", curves.attention_curve(record, "text_start"))]
    if mixed:
        attention_series.append(("first token, full layers only (means only)", curves.first_token_by_type(record, "full")))
    charts = [
        _chart("plot-depth", "First-token attention by layer", "α per layer: attention to the first token of the "
               "queries that can see it, averaged over heads and texts, at the profile's length and each length of "
               f"the sweep. Means only: the record keeps no per-text value per layer.{layer_note}", by_length, "layer",
               "α", log_x=False, x_ticks=_layer_ticks(n_layers)),
        _chart("plot-length", "α against context length", "The length sweep: mean α over the layers where it is "
               "defined (each layer over the queries that can see the first token), heads and texts at each profiled "
               f"length; bars: {stats.T_MEAN}, over the texts of that length."
               + (" The full-layer line leaves the sliding or chunked layers out (means only)." if mixed else ""),
               length_series, "context length T (tokens, log scale)", "mean α"),
        _chart("plot-prefix", "Suite score against stress prefix length", "Mean accuracy of the sweep tasks with "
               f"<bos> kept, per stress-prefix length; bars: {stats.LEVEL} intervals (Wilson per task, combined as "
               "the suite score is).", [("suite score", curves.prefix_curve(record))],
               PREFIX_AXIS, heading(COLUMNS_BY_NAME["suite_score"])),
        _chart("plot-retrieval", "Retrieval accuracy against length", "Accuracy of each retrieval family with <bos> "
               f"kept at each length the model reaches; bars: Wilson {stats.LEVEL} intervals.",
               [(family, curves.retrieval_points(record, family)) for family in curves.retrieval_families(record)],
               "context length (tokens, log scale)", "accuracy"),
        _chart("plot-attention", "Attention to the first token against stress prefix length", "Mean over the sweep "
               "tasks' documents of each document's attention to the sequence's first token and to the text's own "
               "first token, over the queries that can see it and the layers where it is defined; bars: the "
               f"{stats.TASK_MEANS}." + (" The full-layer line: the conditions' own sink metrics over the "
                                         "full-attention layers alone (means only)." if mixed else ""),
               attention_series, PREFIX_AXIS, "α"),
        _chart("plot-sinks-by-layer", "Attention to the first token by layer, per stress prefix", "The sink "
               "metrics of each prefix condition's own scoring passes (sinks alpha_by_layer), averaged over the sweep "
               "tasks: which layers keep attending to the sequence's first token as the prefix grows. Means only.",
               [(f"prefix {length}", points) for length, points in curves.sinks_by_layer(record)], "layer", "α",
               log_x=False, x_ticks=_layer_ticks(n_layers)),
        _chart("plot-text-start-by-layer", "Attention to the text's own first token by layer, per stress prefix",
               "The same for the first token of the text behind the prefix (sinks text_start_by_layer): where it "
               "takes over the sink role. Absent where nothing stands in front of the text. Means only.",
               [(f"prefix {length}", points) for length, points in curves.sinks_by_layer(record, "text_start_by_layer")],
               "layer", "α (first token of the text)", log_x=False, x_ticks=_layer_ticks(n_layers)),
        _chart("plot-massive", "Massive activations by layer", "Top |h| over median |h| per layer (Sun et al.), mean "
               f"over the profile's texts; bars: {stats.T_MEAN}.", [("top / median |h|", curves.massive_by_layer(record))],
               "layer", "ratio", log_x=False, fraction=False, x_ticks=_layer_ticks(n_layers)),
        _chart("plot-overmixing", "Over-mixing by layer", "Relative movement of the later tokens' hidden states per "
               "layer after one token is swapped, with and without <bos> in front (Barbero et al.: sinks slow the "
               "spread). Means only: the record keeps per-sequence values for the last layer alone.",
               [(variant.replace("_", " "), points) for variant, points in curves.overmixing_by_layer(record).items()],
               "layer", "relative change", log_x=False, fraction=False, x_ticks=_layer_ticks(n_layers)),
    ]
    return [chart for chart in charts if chart is not None]


def record_heatmap(record: Record, label: str) -> str:
    model = record.model
    return heatmap.alpha_heatmap(record.profile.alpha_by_head, f"{label}: α per layer and head",
                                 f"α per layer and head: {model.name} (family {model.family})")
