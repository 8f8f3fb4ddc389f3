"""The report's charts, drawn by matplotlib into inline SVG: text stays text (no embedded
fonts), nothing is fetched, so the page opens offline. Each chart is a ``<figure>`` that also
carries the numbers it draws (``data-labels``, ``data-values``), so that tests and scripts read
them without parsing the drawing."""

from __future__ import annotations

import contextlib
import html
import io
import json
from collections.abc import Iterator, Sequence

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

_STYLE = {
    "svg.fonttype": "none",  # <text> elements, not glyph outlines
    "svg.hashsalt": "variant_etl",  # the same ids in every run: the same page for the same data
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "axes.axisbelow": True,
}
COLOR = "#4a78b5"
SECOND = "#e07b28"
WIDTH = 7.5  # inches: the page's text width


@contextlib.contextmanager
def _drawing(size: tuple[float, float], grid: str = "x") -> Iterator[tuple[Figure, Axes]]:
    """A figure of ``size`` inches with one axes, in the report's style (grid lines across
    ``grid``) and with fixed margins for the axis labels: one drawing, where matplotlib's tight
    bounding box or constrained layout draws each chart twice."""
    width, height = size
    with rc_context({**_STYLE, "axes.grid.axis": grid}):
        figure = Figure(figsize=size)
        figure.subplots_adjust(
            left=1 / width, right=1 - 0.25 / width, bottom=0.5 / height, top=1 - 0.1 / height
        )
        yield figure, figure.subplots()


def _thousands(value, _position=None) -> str:
    return f"{value:,.0f}"


def _svg(figure: Figure, chart_id: str, labels: Sequence, values: Sequence, caption: str) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})  # (no date: the same bytes each run)
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]  # the inline element, without the XML prolog and doctype
    data = (
        f"data-labels='{html.escape(json.dumps(list(labels)))}' "
        f"data-values='{html.escape(json.dumps(list(values)))}'"
    )
    return (
        f'<figure class="chart" id="{html.escape(chart_id)}" {data}>{svg}'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def horizontal_bars(
    chart_id: str, labels: Sequence[str], values: Sequence[int], *, axis: str, caption: str
) -> str:
    """One bar per label, top to bottom, its value printed at its end; ``axis`` names the unit."""
    with _drawing((WIDTH, 0.5 + 0.22 * len(labels))) as (figure, ax):
        positions = range(len(labels))
        ax.barh(positions, values, color=COLOR, height=0.7)
        ax.set_yticks(list(positions), [str(label) for label in labels])
        ax.invert_yaxis()
        ax.set_xlabel(axis)
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        top = max(values, default=0) or 1
        ax.set_xlim(0, top * 1.15)
        for y, value in zip(positions, values):
            ax.text(value + top * 0.01, y, f"{value:,}", va="center", fontsize=8)
        return _svg(figure, chart_id, labels, values, caption)


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
    with _drawing((WIDTH, 2.6), grid="y") as (figure, ax):
        ax.bar(positions, values, color=COLOR, width=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(12, integer=True))
        return _svg(figure, chart_id, positions, values, caption)


def spectrum(
    chart_id: str, frequencies: Sequence[float], series: dict[str, Sequence[int]], *, caption: str
) -> str:
    """Counts per allele-frequency bin, one line through the non-empty bins per series (SNPs,
    indels), on a log scale."""
    with _drawing((WIDTH, 2.6), grid="y") as (figure, ax):
        for (name, values), color in zip(series.items(), (COLOR, SECOND)):
            shown = [(f, v) for f, v in zip(frequencies, values) if v]  # (a log scale has no 0)
            ax.plot([f for f, _ in shown], [v for _, v in shown], color=color, label=name, marker="o",
                    markersize=2.5, linewidth=0.8)  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("allele frequency (AC/AN)")
        ax.set_ylabel("ALT alleles (log scale)")
        ax.legend(frameon=False)
        return _svg(figure, chart_id, list(frequencies), [list(v) for v in series.values()], caption)


def scatter(
    chart_id: str, labels: Sequence[str], x: Sequence[int], y: Sequence[int], *, xlabel: str, ylabel: str,
    caption: str,
) -> str:  # fmt: skip
    """One point per label (a sample)."""
    with _drawing((WIDTH / 1.6, 3.2), grid="both") as (figure, ax):
        ax.scatter(x, y, s=10, color=COLOR, alpha=0.7, linewidths=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(_thousands))
            axis.set_major_locator(MaxNLocator(5, integer=True))
        return _svg(figure, chart_id, labels, [[a, b] for a, b in zip(x, y)], caption)


def boxes(
    chart_id: str, labels: Sequence[str], samples: Sequence[Sequence[int]], *, axis: str, caption: str
) -> str:
    """The distribution of each label's values (a box from the first to the third quartile, the
    median marked, whiskers to the extremes), one row per label, on a log scale."""
    with _drawing((WIDTH, 0.5 + 0.24 * len(labels))) as (figure, ax):
        ax.boxplot(
            list(samples),
            orientation="horizontal",
            whis=(0, 100),
            widths=0.6,
            patch_artist=True,
            boxprops={"facecolor": "#c9d8ee", "edgecolor": COLOR},
            medianprops={"color": SECOND},
            whiskerprops={"color": COLOR},
            capprops={"color": COLOR},
        )
        ax.set_yticks(range(1, len(labels) + 1), [str(label) for label in labels])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ordered = [np.sort(s) for s in samples]
        summary = [[int(s[0]), int(s[len(s) // 2]), int(s[-1])] if len(s) else [] for s in ordered]
        return _svg(figure, chart_id, labels, summary, caption)
