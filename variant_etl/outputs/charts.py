"""The report's charts, written as inline SVG: text stays text, nothing is fetched, so the page
opens offline. Each chart is a ``<figure>`` that also carries the numbers it draws
(``data-labels``, ``data-values``), so that tests and scripts read them without parsing the
drawing.

Bars, boxes, lines and points on linear or log axes are all the report draws, so they are
written here directly: matplotlib took ~0.7 s of every launch (its import and ~0.1 s a chart),
this takes milliseconds, and the same numbers give the same bytes."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence

import numpy as np

COLOR = "#4a78b5"
SECOND = "#e07b28"
BOX = "#c9d8ee"
GRID = "#dddddd"
WIDTH = 720  # pixels: the page's text width
FONT = 12  # pixels
CHAR = 6.8  # the width of an average character of the font, in pixels


def _thousands(value: float) -> str:
    return f"{value:,.0f}"


def _ticks(lo: float, hi: float, count: int, integer: bool = False) -> list[float]:
    """Round values (steps of 1, 2 or 5 times a power of ten) from lo to hi, about ``count``."""
    span = hi - lo if hi > lo else 1.0
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= span / count)
    if integer:
        step = max(1, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _decades(lo: float, hi: float) -> list[float]:
    """Powers of ten from below lo to above hi (the ticks of a log axis)."""
    first, last = math.floor(math.log10(max(lo, 1e-12))), math.ceil(math.log10(max(hi, 1e-12)))
    return [10.0**k for k in range(first, max(last, first + 1) + 1)]


class _Axis:
    """A linear or log scale from data to pixels."""

    def __init__(self, lo: float, hi: float, start: float, end: float, log: bool = False):
        self.log = log
        self._lo, self._hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        self._start, self._end = start, end

    def __call__(self, value: float) -> float:
        value = math.log10(value) if self.log else value
        return self._start + (value - self._lo) / ((self._hi - self._lo) or 1) * (self._end - self._start)


class _Drawing:
    """One chart: a plot area inside margins, what is drawn on it in order, the axes' ticks and
    labels; ``figure`` wraps it with its numbers and caption."""

    def __init__(self, height: float, *, left: float = 70, bottom: float = 44, width: float = WIDTH):
        self.width, self.height = width, height
        self.left, self.right = left, width - 24
        self.top, self.bottom = 8, height - bottom
        self._grid: list[str] = []  # drawn first, then the marks, then the axes over them
        self._marks: list[str] = []
        self._axes: list[str] = []

    def add(self, mark: str) -> None:
        self._marks.append(mark)

    def x_axis(self, scale: _Axis, ticks: Sequence[float], label: str, fmt: Callable = _thousands, grid=True):
        for tick in ticks:
            x = scale(tick)
            if grid:
                self._grid.append(_line(x, self.top, x, self.bottom, GRID))
            self._axes.append(_text(x, self.bottom + 16, fmt(tick), anchor="middle"))
        self._axes.append(_line(self.left, self.bottom, self.right, self.bottom, "#333333"))
        self._axes.append(_text((self.left + self.right) / 2, self.height - 6, label, anchor="middle"))

    def y_axis(self, scale: _Axis, ticks: Sequence[float], label: str, fmt: Callable = _thousands, grid=True):
        for tick in ticks:
            y = scale(tick)
            if grid:
                self._grid.append(_line(self.left, y, self.right, y, GRID))
            self._axes.append(_text(self.left - 6, y + 4, fmt(tick), anchor="end"))
        self._axes.append(_line(self.left, self.top, self.left, self.bottom, "#333333"))
        middle = (self.top + self.bottom) / 2
        self._axes.append(
            f'<text x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">'
            f"{html.escape(label)}</text>"
        )

    def rows(self, labels: Sequence) -> tuple[list[float], float]:
        """The centre of each label's row, top to bottom, and a row's height; the labels
        written left of the plot area."""
        step = (self.bottom - self.top) / max(len(labels), 1)
        centres = [self.top + (i + 0.5) * step for i in range(len(labels))]
        for label, y in zip(labels, centres):
            self._axes.append(_text(self.left - 6, y + 4, str(label), anchor="end"))
        self._axes.append(_line(self.left, self.top, self.left, self.bottom, "#333333"))
        return centres, step

    def figure(self, chart_id: str, labels: Sequence, values: Sequence, caption: str) -> str:
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
            f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="sans-serif" font-size="{FONT}" '
            f'role="img">{"".join(self._grid)}{"".join(self._marks)}{"".join(self._axes)}</svg>'
        )
        data = (
            f"data-labels='{html.escape(json.dumps(list(labels)))}' "
            f"data-values='{html.escape(json.dumps(list(values)))}'"
        )
        return (
            f'<figure class="chart" id="{html.escape(chart_id)}" {data}>{svg}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )


def _line(x1: float, y1: float, x2: float, y2: float, color: str, width: float = 1) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
        f'stroke-width="{width:g}"/>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int | None = None) -> str:
    font = f' font-size="{size}"' if size else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{font}>{html.escape(text)}</text>'


def _rect(x: float, y: float, width: float, height: float, fill: str, stroke: str = "") -> str:
    line = f' stroke="{stroke}"' if stroke else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0):.1f}" '
        f'fill="{fill}"{line}/>'
    )


def _label_margin(labels: Sequence) -> float:
    """Room left of the plot for the longest row label."""
    return min(300.0, 16 + CHAR * max((len(str(label)) for label in labels), default=0))


def horizontal_bars(
    chart_id: str, labels: Sequence[str], values: Sequence[int], *, axis: str, caption: str
) -> str:
    """One bar per label, top to bottom, its value printed at its end; ``axis`` names the unit."""
    drawing = _Drawing(48 + 21 * max(len(labels), 1), left=_label_margin(labels))
    top = max(values, default=0) or 1
    scale = _Axis(0, top * 1.15, drawing.left, drawing.right)
    drawing.x_axis(scale, _ticks(0, top * 1.15, 6, integer=True), axis)
    centres, step = drawing.rows(labels)
    for y, value in zip(centres, values):
        drawing.add(_rect(scale(0), y - 0.35 * step, scale(value) - scale(0), 0.7 * step, COLOR))
        drawing.add(_text(scale(value) + 4, y + 4, f"{value:,}", size=11))
    return drawing.figure(chart_id, labels, values, caption)


def vertical_bars(
    chart_id: str,
    positions: Sequence[float],
    values: Sequence[int],
    *,
    xlabel: str,
    ylabel: str,
    caption: str,
) -> str:
    """Bars at numeric ``positions`` (a distribution: lengths, frequencies)."""
    drawing = _Drawing(250)
    lo, hi = (min(positions, default=0) - 0.6, max(positions, default=0) + 0.6)
    x = _Axis(lo, hi, drawing.left, drawing.right)
    top = max(values, default=0) or 1
    y = _Axis(0, top * 1.05, drawing.bottom, drawing.top)
    drawing.x_axis(x, _ticks(lo + 0.6, hi - 0.6, 12, integer=True), xlabel, grid=False)
    drawing.y_axis(y, _ticks(0, top * 1.05, 5, integer=True), ylabel)
    for position, value in zip(positions, values):
        left, right = x(position - 0.4), x(position + 0.4)
        drawing.add(_rect(left, y(value), right - left, y(0) - y(value), COLOR))
    return drawing.figure(chart_id, positions, values, caption)


def spectrum(
    chart_id: str, frequencies: Sequence[float], series: dict[str, Sequence[int]], *, caption: str
) -> str:
    """Counts per allele-frequency bin, one line through the non-empty bins per series (SNPs,
    indels), on a log scale."""
    drawing = _Drawing(250)
    counts = [v for values in series.values() for v in values if v]
    lo, hi = (min(counts, default=1), max(counts, default=1))
    decades = _decades(lo, hi)
    x = _Axis(0, 1, drawing.left, drawing.right)
    y = _Axis(decades[0], decades[-1], drawing.bottom, drawing.top, log=True)
    drawing.x_axis(x, _ticks(0, 1, 5), "allele frequency (AC/AN)", fmt=lambda v: f"{v:g}")
    drawing.y_axis(y, decades, "ALT alleles (log scale)")
    for number, ((name, values), color) in enumerate(zip(series.items(), (COLOR, SECOND))):
        shown = [(x(f), y(v)) for f, v in zip(frequencies, values) if v]  # (a log scale has no 0)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in shown)
        drawing.add(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1"/>')
        drawing.add("".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2" fill="{color}"/>' for a, b in shown))
        legend_y = drawing.top + 12 + 16 * number
        drawing.add(_line(drawing.right - 90, legend_y - 4, drawing.right - 70, legend_y - 4, color, 2))
        drawing.add(_text(drawing.right - 64, legend_y, name))
    return drawing.figure(chart_id, list(frequencies), [list(v) for v in series.values()], caption)


def scatter(
    chart_id: str, labels: Sequence[str], x: Sequence[int], y: Sequence[int], *, xlabel: str, ylabel: str,
    caption: str,
) -> str:  # fmt: skip
    """One point per label (a sample)."""
    drawing = _Drawing(310, left=80, width=WIDTH / 1.6)
    xs = _ticks(0, max(x, default=0) or 1, 5, integer=True)
    ys = _ticks(0, max(y, default=0) or 1, 5, integer=True)
    x_scale = _Axis(0, max(xs[-1], max(x, default=0)) * 1.05, drawing.left, drawing.right)
    y_scale = _Axis(0, max(ys[-1], max(y, default=0)) * 1.05, drawing.bottom, drawing.top)
    drawing.x_axis(x_scale, xs, xlabel)
    drawing.y_axis(y_scale, ys, ylabel)
    drawing.add(
        "".join(
            f'<circle cx="{x_scale(a):.1f}" cy="{y_scale(b):.1f}" r="2.5" fill="{COLOR}" fill-opacity="0.7"/>'
            for a, b in zip(x, y)
        )
    )
    return drawing.figure(chart_id, labels, [[a, b] for a, b in zip(x, y)], caption)


def boxes(
    chart_id: str, labels: Sequence[str], samples: Sequence[Sequence[int]], *, axis: str, caption: str
) -> str:
    """The distribution of each label's values (a box from the first to the third quartile, the
    median marked, whiskers to the extremes), one row per label, on a log scale."""
    drawing = _Drawing(48 + 23 * max(len(labels), 1), left=_label_margin(labels))
    ordered = [np.sort(np.asarray(s)) for s in samples]
    present = [s for s in ordered if len(s)]
    lo = min((float(s[0]) for s in present), default=1.0)
    hi = max((float(s[-1]) for s in present), default=1.0)
    decades = _decades(max(lo, 1.0), max(hi, 1.0))
    scale = _Axis(decades[0], decades[-1], drawing.left, drawing.right, log=True)
    drawing.x_axis(scale, decades, axis)
    centres, step = drawing.rows(labels)
    for y, values in zip(centres, ordered):
        if not len(values):
            continue
        quartiles = np.percentile(values, [0, 25, 50, 75, 100])
        low, q1, median, q3, high = (max(float(v), decades[0]) for v in quartiles)
        half = 0.3 * step
        drawing.add(_line(scale(low), y, scale(q1), y, COLOR))
        drawing.add(_line(scale(q3), y, scale(high), y, COLOR))
        drawing.add(_line(scale(low), y - half / 2, scale(low), y + half / 2, COLOR))
        drawing.add(_line(scale(high), y - half / 2, scale(high), y + half / 2, COLOR))
        drawing.add(_rect(scale(q1), y - half, scale(q3) - scale(q1), 2 * half, BOX, COLOR))
        drawing.add(_line(scale(median), y - half, scale(median), y + half, SECOND, 2))
    summary = [[int(s[0]), int(s[len(s) // 2]), int(s[-1])] if len(s) else [] for s in ordered]
    return drawing.figure(chart_id, labels, summary, caption)
