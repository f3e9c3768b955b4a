"""Small deterministic SVG charts: axes with ticks, points, lines, labels, heatmaps and colour bars.

Built with xml.etree.ElementTree, which escapes every text and attribute, so a record's strings
(model names in labels and hover titles) can never become markup. Coordinates are printed with
one decimal, so the same data always gives the same bytes. No JavaScript, no external resources.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Okabe-Ito: families stay apart for colour-blind readers too; markers extend it past 8 families.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#B8A200")
MARKERS = ("circle", "square", "triangle", "diamond")
INK, GRID, MUTED = "#222", "#e4e4e4", "#666"


def _n(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step + 1e-9) * step
    ticks = [start]
    while ticks[-1] < high - 1e-9:
        ticks.append(start + len(ticks) * step)
    return [round(t, 10) for t in ticks]


def shorten(text: str, limit: int = 28) -> str:
    """A label that fits beside a chart; the full text stays in the hover title."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tick_label(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}".rstrip("0")


class Chart:
    """An x-y plot area in an SVG element; data coordinates map to pixels, optionally log2 on x."""

    def __init__(self, title: str, x_label: str, y_label: str, x_ticks: Sequence[float], y_ticks: Sequence[float],
                 *, legend: Sequence[tuple[str, str, str]] = (), width: int = 600, height: int = 380, right: int = 40,
                 log_x: bool = False, x_format: Callable[[float], str] = tick_label):
        rows = _legend_rows(legend, width - 58)
        height += 16 * max(0, len(rows) - 1)  # the plot keeps its size; the legend takes what it needs
        self.width, self.height, self.log_x = width, height, log_x
        self.left, self.right, self.top, self.bottom = 58, width - right, 36 + 16 * len(rows), height - 46
        self.x_ticks, self.y_ticks = list(x_ticks), list(y_ticks)
        self.svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {width} {height}", "width": str(width),
                                      "height": str(height), "role": "img", "font-family": FONT, "font-size": "11"})
        ET.SubElement(self.svg, "title").text = title
        ET.SubElement(self.svg, "rect", {"width": str(width), "height": str(height), "fill": "#fff"})
        self.text(self.left, 18, title, size=13, weight="600")
        self._legend(rows)
        self._axes(x_label, y_label, x_format)
        self.marks = ET.SubElement(self.svg, "g", {"class": "marks"})
        self.occupied: list[tuple[float, float, float]] = []  # (x, baseline y, width) that labels keep off

    def _scale_x(self, value: float) -> float:
        return math.log2(value) if self.log_x else value

    # Marks on the first or last tick stay clear of the axis lines: the domain is padded by PAD.
    PAD = 0.04

    def x(self, value: float) -> float:
        low, high = self._scale_x(self.x_ticks[0]), self._scale_x(self.x_ticks[-1])
        t = (self._scale_x(value) - low) / (high - low)
        return self.left + (self.PAD + t * (1 - 2 * self.PAD)) * (self.right - self.left)

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        t = (value - low) / (high - low)
        return self.bottom - (self.PAD + t * (1 - 2 * self.PAD)) * (self.bottom - self.top)

    def _axes(self, x_label: str, y_label: str, x_format) -> None:
        axes = ET.SubElement(self.svg, "g", {"class": "axes"})
        for value in self.y_ticks:
            y = _n(self.y(value))
            ET.SubElement(axes, "line", {"x1": _n(self.left), "x2": _n(self.right), "y1": y, "y2": y, "stroke": GRID})
            self.text(self.left - 6, self.y(value) + 4, tick_label(value), anchor="end", color=MUTED, parent=axes)
        for value in self.x_ticks:
            x = _n(self.x(value))
            ET.SubElement(axes, "line", {"x1": x, "x2": x, "y1": _n(self.top), "y2": _n(self.bottom), "stroke": GRID})
            self.text(self.x(value), self.bottom + 15, x_format(value), anchor="middle", color=MUTED, parent=axes)
        ET.SubElement(axes, "path", {"d": f"M{_n(self.left)},{_n(self.top)}V{_n(self.bottom)}H{_n(self.right)}",
                                     "stroke": INK, "fill": "none"})
        self.text((self.left + self.right) / 2, self.height - 8, x_label, anchor="middle", parent=axes)
        label = self.text(14, (self.top + self.bottom) / 2, y_label, anchor="middle", parent=axes)
        label.set("transform", f"rotate(-90 14 {_n((self.top + self.bottom) / 2)})")

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", size: int | None = None,
             weight: str | None = None, color: str = INK, parent: ET.Element | None = None) -> ET.Element:
        attributes = {"x": _n(x), "y": _n(y), "fill": color}
        if anchor != "start":
            attributes["text-anchor"] = anchor
        if size:
            attributes["font-size"] = str(size)
        if weight:
            attributes["font-weight"] = weight
        element = ET.SubElement(self.svg if parent is None else parent, "text", attributes)
        element.text = text
        return element

    def _legend(self, rows: list[list[tuple[float, str, str, str]]]) -> None:
        """Rows of (x, label, colour, marker) under the title."""
        group = ET.SubElement(self.svg, "g", {"class": "legend"})
        for index, row in enumerate(rows):
            y = 33 + 16 * index
            for x, label, color, marker in row:
                marker_element(group, self.left + x + 5, y, color, marker, radius=4.5)
                self.text(self.left + x + 13, y + 4, label, parent=group)

    def point(self, x: float, y: float, color: str, marker: str, hover: str, *, hollow: bool = False) -> None:
        group = ET.SubElement(self.marks, "g", {"class": "point"})
        ET.SubElement(group, "title").text = hover
        marker_element(group, self.x(x), self.y(y), color, marker, hollow=hollow)
        self.occupied.append((self.x(x) - 7, self.y(y) + 4, 14))

    def line(self, points: Sequence[tuple[float, float]], color: str, marker: str, hover: str) -> None:
        group = ET.SubElement(self.marks, "g", {"class": "series"})
        ET.SubElement(group, "title").text = hover
        path = "M" + "L".join(f"{_n(self.x(x))},{_n(self.y(y))}" for x, y in points)
        ET.SubElement(group, "path", {"d": path, "stroke": color, "stroke-width": "2", "fill": "none"})
        for x, y in points:
            marker_element(group, self.x(x), self.y(y), color, marker, radius=3.5)

    def labels(self, placed: Sequence[tuple[float, float, str, str]], *, gap: float = 12) -> None:
        """Text labels at pixel positions (x, y, text, colour), nudged up or down, inside the plot, off each other."""
        group = ET.SubElement(self.svg, "g", {"class": "labels"})
        taken = list(self.occupied)

        def free(x, y, width):
            inside = self.top + 8 <= y <= self.bottom - 3
            return inside and not any(abs(y - ty) < gap and x < tx + tw and tx < x + width for tx, ty, tw in taken)

        for x, y, text, color in sorted(placed, key=lambda p: (p[1], p[0], p[2])):
            width = 6.2 * len(shorten(text))
            tries = [y + sign * step * gap / 2 for step in range(40) for sign in (-1, 1)]
            y = next((t for t in tries if free(x, t, width)), y)
            taken.append((x, y, width))
            self.text(x, y, shorten(text), color=color, parent=group)

    def to_string(self) -> str:
        return to_string(self.svg)


def _legend_rows(entries, width: float) -> list[list[tuple[float, str, str, str]]]:
    """Legend entries (label, colour, marker) laid out in rows no wider than `width`; labels shortened."""
    rows: list[list] = []
    x = width
    for label, color, marker in entries:
        label = shorten(label, 24)
        size = 26 + 6.5 * len(label)
        if x + size > width and (not rows or rows[-1]):
            rows.append([])
            x = 0.0
        rows[-1].append((x, label, color, marker))
        x += size
    return rows


def marker_element(parent: ET.Element, x: float, y: float, color: str, marker: str, *, radius: float = 5.5,
                   hollow: bool = False) -> ET.Element:
    fill = "#fff" if hollow else color
    style = {"fill": fill, "stroke": color, "stroke-width": "1.5"}
    r = radius
    if marker == "square":
        return ET.SubElement(parent, "rect", {"x": _n(x - r * 0.85), "y": _n(y - r * 0.85), "width": _n(r * 1.7),
                                              "height": _n(r * 1.7), **style})
    if marker == "triangle":
        d = f"M{_n(x)},{_n(y - r)}L{_n(x + r)},{_n(y + r * 0.8)}L{_n(x - r)},{_n(y + r * 0.8)}Z"
        return ET.SubElement(parent, "path", {"d": d, **style})
    if marker == "diamond":
        d = f"M{_n(x)},{_n(y - r)}L{_n(x + r)},{_n(y)}L{_n(x)},{_n(y + r)}L{_n(x - r)},{_n(y)}Z"
        return ET.SubElement(parent, "path", {"d": d, **style})
    return ET.SubElement(parent, "circle", {"cx": _n(x), "cy": _n(y), "r": _n(r), **style})


# ---- colour scales and heatmaps -------------------------------------------------------------

VIRIDIS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")  # five anchor colours, interpolated
DIVERGING = ("#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b")  # blue (less) - white (0) - red (more)


def _rgb(hex_colour: str) -> tuple[int, ...]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def colour(stops: Sequence[str], t: float) -> str:
    """The colour at t in [0, 1] along the stops."""
    t = min(1.0, max(0.0, t)) * (len(stops) - 1)
    index = min(int(t), len(stops) - 2)
    a, b = _rgb(stops[index]), _rgb(stops[index + 1])
    mix = t - index
    return "#" + "".join(f"{round(p + (q - p) * mix):02x}" for p, q in zip(a, b))


def heatmap(table: Sequence[Sequence[float]], title: str, fill: Callable[[float], str],
            hover: Callable[[int, int, float], str], *, size: int = 240,
            marked: frozenset[tuple[int, int]] = frozenset()) -> ET.Element:
    """Layers down, heads across; one rect per (layer, head) with a hover title; `marked` cells outlined."""
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
                                                 "width": _n(cell_w), "height": _n(cell_h), "fill": fill(value)})
            ET.SubElement(rect, "title").text = hover(layer, head, value)
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


def to_string(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")
