"""Layer x head heatmaps as SVG: a record's α per (layer, head), and the α difference of two records.

Like svg.py: ElementTree (every string escaped), fixed decimals (the same table gives the same
bytes), a hover title per cell. Heatmaps live on the model pages, in `board compare --svg` and in
`sinkbench probe`'s alpha_heatmap.svg, never on the index: a board of 500 models would carry 500 of them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

from sinkbench.board.svg import FONT, INK, MUTED, SVG_NS, shorten, tick_label, to_string

VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # five anchor colours, interpolated
DIVERGING = ("#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b")  # blue (less) - white (0) - red (more)


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _rgb(hex_colour: str) -> tuple[int, ...]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def colour(stops: Sequence[str], t: float) -> str:
    """The colour at t in [0, 1] along the stops."""
    t = min(1.0, max(0.0, t)) * (len(stops) - 1)
    index = min(int(t), len(stops) - 2)
    a, b = _rgb(stops[index]), _rgb(stops[index + 1])
    mix = t - index
    return "#" + "".join(f"{round(p + (q - p) * mix):02x}" for p, q in zip(a, b))


UNDEFINED = "#d9d9d9"
UNDEFINED_WHY = "no softmax attention in this layer, or no query could see the first token"


def heatmap(table: Sequence[Sequence[float]], title: str, fill: Callable[[float], str],
            hover: Callable[[int, int, float], str], *, size: int = 240,
            marked: frozenset[tuple[int, int]] = frozenset()) -> ET.Element:
    """Layers down, heads across; one rect per (layer, head) with a hover title; `marked` cells outlined.
    A None cell (α undefined: a layer without softmax attention, or one no query could see the first
    token through) is drawn blank grey and says so."""
    layers, heads = len(table), len(table[0])
    cell_w = max(1.5, min(36.0, size / heads))
    cell_h = max(1.5, min(36.0, size / layers))
    shown = shorten(title, 40)
    left, top = 30, 40
    width = max(left + cell_w * heads + 10, 7.5 * len(shown), 180)
    height = top + cell_h * layers + 28
    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {_n(width)} {_n(height)}", "width": _n(width),
                             "height": _n(height), "role": "img", "font-family": FONT, "font-size": "10"})
    ET.SubElement(svg, "title").text = title
    heading = ET.SubElement(svg, "text", {"x": "0", "y": "14", "font-size": "12", "font-weight": "600", "fill": INK})
    heading.text = shown
    cells = ET.SubElement(svg, "g", {"class": "cells"})
    for layer, row in enumerate(table):
        for head, value in enumerate(row):
            rect = ET.SubElement(cells, "rect", {"x": _n(left + head * cell_w), "y": _n(top + layer * cell_h),
                                                 "width": _n(cell_w), "height": _n(cell_h),
                                                 "fill": UNDEFINED if value is None else fill(value)})
            ET.SubElement(rect, "title").text = (f"layer {layer}, head {head}: undefined ({UNDEFINED_WHY})"
                                                 if value is None else hover(layer, head, value))
            if (layer, head) in marked:
                rect.set("stroke", INK)
                rect.set("stroke-width", "1.5")
    for layer in sorted({0, layers // 2, layers - 1}):
        _label(svg, left - 4, top + (layer + 0.5) * cell_h + 3.5, str(layer), "end")
    for head in sorted({0, heads // 2, heads - 1}):
        _label(svg, left + (head + 0.5) * cell_w, top - 4, str(head), "middle")
    _label(svg, left, top + cell_h * layers + 16, "heads →, layers ↓", "start")
    return svg


def _label(svg: ET.Element, x: float, y: float, text: str, anchor: str) -> ET.Element:
    element = ET.SubElement(svg, "text", {"x": _n(x), "y": _n(y), "text-anchor": anchor, "fill": MUTED})
    element.text = text
    return element


def colour_bar(title: str, stops: Sequence[str], low: float, high: float, *, width: int = 260) -> ET.Element:
    """A horizontal colour bar from low to high with five tick labels."""
    pad = 16  # room for the first and last tick label
    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {width + 2 * pad} 52", "width": str(width + 2 * pad),
                             "height": "52", "role": "img", "font-family": FONT, "font-size": "10"})
    ET.SubElement(svg, "title").text = title
    _label(svg, pad, 12, title, "start")
    steps = 64
    for i in range(steps):
        ET.SubElement(svg, "rect", {"x": _n(pad + i * width / steps), "y": "18", "width": _n(width / steps + 0.3),
                                    "height": "12", "fill": colour(stops, (i + 0.5) / steps)})
    for i in range(5):
        value = low + (high - low) * i / 4
        _label(svg, pad + width * i / 4, 44, f"{value:+.2f}" if low < 0 else f"{value:.2f}", "middle")
    return svg


def text_block(lines: Sequence[str], *, size: int = 11) -> ET.Element:
    """Lines of text as an SVG element, for captions in a standalone SVG."""
    height = 8 + len(lines) * (size + 5)
    width = max([7 * len(line) for line in lines] + [100])
    svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {width} {height}", "width": str(width),
                             "height": str(height), "font-family": FONT, "font-size": str(size)})
    for index, line in enumerate(lines):
        _label(svg, 0, (index + 1) * (size + 5), line, "start").set("fill", INK)
    return svg


def stack(*parts: ET.Element) -> ET.Element:
    """SVG elements one under another, in one SVG on a white ground."""
    outer = ET.Element("svg", {"xmlns": SVG_NS, "font-family": FONT})
    ET.SubElement(outer, "rect", {"width": "100%", "height": "100%", "fill": "#fff"})  # first: under the parts
    y = width = 0.0
    for part in parts:
        part.set("y", _n(y))
        y += float(part.get("height"))
        width = max(width, float(part.get("width")))
        outer.append(part)
    outer.set("width", _n(width))
    outer.set("height", _n(y))
    outer.set("viewBox", f"0 0 {_n(width)} {_n(y)}")
    return outer


def _alpha_grid(table: list[list[float | None]], title: str, hover_title: str) -> ET.Element:
    element = heatmap(table, title, lambda value: colour(VIRIDIS, value),
                      lambda layer, head, value: f"layer {layer}, head {head}: α = {value:.3f}", size=300)
    element.find("title").text = hover_title
    return element


def _alpha_bar() -> ET.Element:
    return colour_bar("α: attention to the first token", VIRIDIS, 0.0, 1.0)


def alpha_heatmap(table: list[list[float | None]], title: str, hover_title: str) -> str:
    """One model's α per (layer, head); the hover of a cell is short (a 32 x 32 model has 1,024 of them)."""
    return to_string(_alpha_grid(table, title, hover_title))


def alpha_colour_bar() -> str:
    return to_string(_alpha_bar())


def alpha_heatmap_file(table: list[list[float | None]], title: str, hover_title: str) -> str:
    """A standalone SVG (`sinkbench probe`'s alpha_heatmap.svg): the α heatmap of a model page, its colour
    bar beneath."""
    return to_string(stack(_alpha_grid(table, title, hover_title), _alpha_bar()))


def difference_heatmap(before: list[list[float]], after: list[list[float]], names: tuple[str, str], eps: float) -> str:
    """A standalone SVG: α(B) − α(A) per (layer, head) on a diverging scale; heads that crossed ε outlined."""
    delta = [[None if a is None or b is None else b - a for a, b in zip(row_a, row_b)] for row_a, row_b in zip(before, after)]
    limit = max([abs(v) for row in delta for v in row if v is not None] + [0.05])
    crossed = frozenset((layer, head) for layer, row in enumerate(before) for head, a in enumerate(row)
                        if a is not None and after[layer][head] is not None and (a > eps) != (after[layer][head] > eps))

    def hover(layer, head, value):
        a, b = before[layer][head], after[layer][head]
        change = "gained its sink" if a <= eps < b else "lost its sink" if b <= eps < a else "no sink change"
        return f"layer {layer}, head {head}: α {a:.3f} → {b:.3f} ({value:+.3f}); {change} at ε={tick_label(eps)}"

    fill = lambda v: colour(DIVERGING, 0.5 + v / (2 * limit))  # noqa: E731
    grid = heatmap(delta, "α(B) − α(A) per layer and head", fill, hover, size=360, marked=crossed)
    caption = text_block([f"A: {names[0]}", f"B: {names[1]}",
                          f"Outlined: the {len(crossed)} heads that crossed ε={tick_label(eps)} (gained or lost their sink)."])
    bar = colour_bar("α change (red: more attention to the first token, blue: less)", DIVERGING, -limit, limit,
                     width=320)
    return to_string(stack(caption, grid, bar))
