"""Small deterministic SVG charts: axes with ticks, lines and points with 95% error bars, legends, labels.

Built with xml.etree.ElementTree, which escapes every text and attribute, so a record's strings
(model names in hover titles and labels) can never become markup. Coordinates are printed with
fixed decimals, so the same data always gives the same bytes. No JavaScript, no external resources.

A chart of a whole board draws hundreds of series, so each series is one group: a hover title
(the model's name), one path holding the line and its error bars, and one path of dots. Line
widths, dots and the highlighting of a family live in the page's CSS (classes `s` and `d`);
colours are attributes, so a series keeps its colour wherever it is shown.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Okabe-Ito: families stay apart for colour-blind readers too; dash patterns extend it past 8 families.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000", "#B8A200")
DASHES = (None, "6 3", "2 2", "8 3 2 3")
INK, GRID, MUTED = "#222", "#e4e4e4", "#666"
MANY = 12  # above this many series a chart names them on hover only: end labels would pile up


def style(index: int) -> tuple[str, str | None]:
    """(colour, dash pattern) of the index-th family or line."""
    return PALETTE[index % len(PALETTE)], DASHES[(index // len(PALETTE)) % len(DASHES)]


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


def value_ticks(values: Sequence[float | None], fraction: bool = False) -> list[float]:
    """Y ticks for these values (interval bounds included): 0 to 1 for fractions that fit, else round ticks."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if fraction and all(0 <= v <= 1 for v in values):
        return [0, 0.2, 0.4, 0.6, 0.8, 1]
    if not values:
        return [0, 1]
    return nice_ticks(min(values), max(values))


def shorten(text: str, limit: int = 28) -> str:
    """A label that fits beside a chart; the full text stays in the hover title."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tick_label(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.2f}".rstrip("0")


class Chart:
    """An x-y plot area in an SVG element. x is linear or log2; a log axis can hold 0 in a slot one step
    left of its smallest positive tick (a stress prefix of 0 tokens beside 256, 1024, ...)."""

    PAD = 0.04  # marks on the first or last tick stay clear of the axis lines

    def __init__(self, title: str, x_label: str, y_label: str, x_ticks: Sequence[float], y_ticks: Sequence[float],
                 *, legend: Sequence[tuple[str, str, str | None]] = (), width: int = 600, height: int = 360,
                 right: int = 30, log_x: bool = False, decimals: int = 1,
                 x_format: Callable[[float], str] = tick_label):
        rows = _legend_rows(legend, width - 70)
        height += 16 * max(0, len(rows) - 1)  # the plot keeps its size; the legend takes what it needs
        self.width, self.height, self.log_x, self.decimals = width, height, log_x, decimals
        self.left, self.right, self.top, self.bottom = 62, width - right, 36 + 16 * len(rows), height - 44
        self.x_ticks, self.y_ticks = sorted(x_ticks), list(y_ticks)
        positive = [t for t in self.x_ticks if t > 0]
        if log_x and len(positive) < len(self.x_ticks):  # 0 sits one step left of the smallest length
            step = math.log2(positive[1] / positive[0]) if len(positive) > 1 else 1.0
            self.zero_slot = math.log2(positive[0]) - step
        else:
            self.zero_slot = None
        self.svg = ET.Element("svg", {"xmlns": SVG_NS, "viewBox": f"0 0 {width} {height}", "width": str(width),
                                      "height": str(height), "role": "img", "font-family": FONT, "font-size": "11"})
        ET.SubElement(self.svg, "title").text = title
        ET.SubElement(self.svg, "rect", {"width": str(width), "height": str(height), "fill": "#fff"})
        self.text(self.left, 18, title, size=13, weight="600")
        self._legend(rows)
        self._axes(x_label, y_label, x_format)
        self.marks = ET.SubElement(self.svg, "g", {"class": "marks"})
        self.occupied: list[tuple[float, float, float]] = []  # (x, baseline y, width) that labels keep off

    def n(self, value: float) -> str:
        text = f"{value:.{self.decimals}f}"
        return text[1:] if text.startswith("-0") and float(text) == 0 else text

    def _scale_x(self, value: float) -> float:
        if not self.log_x:
            return value
        return self.zero_slot if value <= 0 and self.zero_slot is not None else math.log2(value)

    def x(self, value: float) -> float:
        low, high = self._scale_x(self.x_ticks[0]), self._scale_x(self.x_ticks[-1])
        t = (self._scale_x(value) - low) / ((high - low) or 1.0)
        return self.left + (self.PAD + t * (1 - 2 * self.PAD)) * (self.right - self.left)

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        t = (min(max(value, low), high) - low) / ((high - low) or 1.0)  # an interval past the axis stops at it
        return self.bottom - (self.PAD + t * (1 - 2 * self.PAD)) * (self.bottom - self.top)

    def _axes(self, x_label: str, y_label: str, x_format) -> None:
        axes = ET.SubElement(self.svg, "g", {"class": "axes"})
        for value in self.y_ticks:
            y = self.n(self.y(value))
            ET.SubElement(axes, "line", {"x1": self.n(self.left), "x2": self.n(self.right), "y1": y, "y2": y,
                                         "stroke": GRID})
            self.text(self.left - 6, self.y(value) + 4, tick_label(value), anchor="end", color=MUTED, parent=axes)
        for value in self.x_ticks:
            x = self.n(self.x(value))
            line = ET.SubElement(axes, "line", {"x1": x, "x2": x, "y1": self.n(self.top), "y2": self.n(self.bottom),
                                                "stroke": GRID})
            if self.zero_slot is not None and value <= 0:
                line.set("stroke-dasharray", "3 3")  # 0 is not on the log scale: its slot is set apart
            self.text(self.x(value), self.bottom + 15, x_format(value), anchor="middle", color=MUTED, parent=axes)
        ET.SubElement(axes, "path", {"d": f"M{self.n(self.left)},{self.n(self.top)}V{self.n(self.bottom)}"
                                          f"H{self.n(self.right)}", "stroke": INK, "fill": "none"})
        self.text((self.left + self.right) / 2, self.height - 8, x_label, anchor="middle", parent=axes)
        middle = (self.top + self.bottom) / 2
        label = self.text(14, middle, y_label, anchor="middle", parent=axes)
        label.set("transform", f"rotate(-90 14 {self.n(middle)})")

    def text(self, x: float, y: float, text: str, *, anchor: str = "start", size: int | None = None,
             weight: str | None = None, color: str = INK, parent: ET.Element | None = None) -> ET.Element:
        attributes = {"x": self.n(x), "y": self.n(y), "fill": color}
        if anchor != "start":
            attributes["text-anchor"] = anchor
        if size:
            attributes["font-size"] = str(size)
        if weight:
            attributes["font-weight"] = weight
        element = ET.SubElement(self.svg if parent is None else parent, "text", attributes)
        element.text = text
        return element

    def _legend(self, rows) -> None:
        group = ET.SubElement(self.svg, "g", {"class": "legend"})
        for index, row in enumerate(rows):
            y = 33 + 16 * index
            for x, label, colour, dash in row:
                attributes = {"d": f"M{self.n(self.left + x)},{self.n(y)}h16", "stroke": colour, "stroke-width": "3"}
                if dash:
                    attributes["stroke-dasharray"] = dash
                ET.SubElement(group, "path", attributes)
                self.text(self.left + x + 21, y + 4, label, parent=group)

    def _group(self, colour: str, hover: str, row: int | None) -> ET.Element:
        attributes = {"class": "s", "stroke": colour}
        if row is not None:
            attributes["data-r"] = str(row)  # the table row this series belongs to (the page's filters)
        group = ET.SubElement(self.marks, "g", attributes)
        ET.SubElement(group, "title").text = hover
        return group

    def series(self, points, colour: str, hover: str, *, row: int | None = None, dash: str | None = None,
               dots: bool = True) -> None:
        """A line through points (objects with x, value, low, high), a vertical 95% error bar at each point
        that has an interval, and a dot at each point (always, when there is only one)."""
        if not points:
            return
        group = self._group(colour, hover, row)
        xy = [(self.n(self.x(p.x)), self.n(self.y(p.value))) for p in points]
        d = "M" + "L".join(f"{x},{y}" for x, y in xy)
        d += "".join(f"M{x},{self.n(self.y(p.low))}V{self.n(self.y(p.high))}"
                     for (x, _), p in zip(xy, points) if p.low is not None and p.high is not None)
        line = ET.SubElement(group, "path", {"d": d})
        if dash:
            line.set("stroke-dasharray", dash)
        if dots or len(points) == 1:
            ET.SubElement(group, "path", {"class": "d", "d": "".join(f"M{x},{y}h0" for x, y in xy)})

    def point(self, x, y, colour: str, hover: str, *, row: int | None = None) -> None:
        """One mark with 95% error bars both ways: x and y are Points-like (value, low, high)."""
        group = self._group(colour, hover, row)
        px, py = self.x(x.value), self.y(y.value)
        ET.SubElement(group, "path", {"class": "d", "d": f"M{self.n(px)},{self.n(py)}h0"})
        bars = ""
        if x.low is not None and x.high is not None:
            bars += f"M{self.n(self.x(x.low))},{self.n(py)}H{self.n(self.x(x.high))}"
        if y.low is not None and y.high is not None:
            bars += f"M{self.n(px)},{self.n(self.y(y.low))}V{self.n(self.y(y.high))}"
        if bars:
            ET.SubElement(group, "path", {"d": bars})
        self.occupied.append((px - 7, py + 4, 14))

    def ring(self, x: float, value: float, colour: str, hover: str) -> None:
        """A hollow ring around the point at (x, value): a mark on a point another series drew."""
        group = ET.SubElement(self.marks, "g", {"class": "ring"})
        ET.SubElement(group, "title").text = hover
        ET.SubElement(group, "circle", {"cx": self.n(self.x(x)), "cy": self.n(self.y(value)), "r": "7", "fill": "none",
                                        "stroke": colour, "stroke-width": "2"})

    def labels(self, placed: Sequence[tuple[float, float, str, str]], *, gap: float = 12) -> None:
        """Text labels at pixel positions (x, y, text, colour), nudged up or down, inside the plot, off each other."""
        group = ET.SubElement(self.svg, "g", {"class": "labels"})
        taken = list(self.occupied)

        def free(x, y, width):
            inside = self.top + 8 <= y <= self.bottom - 3
            return inside and not any(abs(y - ty) < gap and x < tx + tw and tx < x + width for tx, ty, tw in taken)

        for x, y, text, colour in sorted(placed, key=lambda p: (p[1], p[0], p[2])):
            width = 6.2 * len(shorten(text))
            tries = [y + sign * step * gap / 2 for step in range(40) for sign in (-1, 1)]
            y = next((t for t in tries if free(x, t, width)), y)
            taken.append((x, y, width))
            self.text(x, y, shorten(text), color=colour, parent=group)

    def end_labels(self, series: Sequence[tuple[str, str, Sequence]]) -> None:
        """Name each of a few series (label, colour, points) beside its last point."""
        self.labels([(self.x(points[-1].x) + 8, self.y(points[-1].value) + 4, label, colour)
                     for label, colour, points in series if points])

    def note(self, text: str) -> None:
        """A line of text inside the plot area, for a chart with nothing to draw."""
        self.text((self.left + self.right) / 2, (self.top + self.bottom) / 2, text, anchor="middle", color=MUTED)

    def to_string(self) -> str:
        return to_string(self.svg)


def _legend_rows(entries, width: float) -> list[list[tuple[float, str, str, str | None]]]:
    """Legend entries (label, colour, dash) laid out in rows no wider than `width`; labels shortened."""
    rows: list[list] = []
    x = width
    for label, colour, dash in entries:
        label = shorten(label, 32)
        size = 30 + 6.5 * len(label)
        if x + size > width and (not rows or rows[-1]):
            rows.append([])
            x = 0.0
        rows[-1].append((x, label, colour, dash))
        x += size
    return rows


def to_string(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")
