"""The report's figures, drawn with matplotlib and returned as inline SVG markup.

Figures are made with `matplotlib.figure.Figure` (no pyplot, no global state, no display), text
stays text in the SVG (`svg.fonttype: none`, so the numbers are in the page's DOM) and ids are
salted deterministically, so the same run gives the same file.
"""

from __future__ import annotations

import functools
import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from curate.report.summary import FunnelRow, SignalPlot, size_bins

KEPT_COLOR, REMOVED_COLOR, OTHER_COLOR = "#4c78a8", "#e45756", "#c7c1bd"
LINE_COLOR, BOUND_COLOR = "#222222", "#b35900"
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "curate-report", "font.size": 9,
         "axes.spines.top": False, "axes.spines.right": False}


def styled(fn):
    """Draw under the report's style, leaving the caller's matplotlib settings alone."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG goes inline


def _axes(width: float, height: float, layout: str | None = "constrained"):
    fig = Figure(figsize=(width, height), layout=layout)
    return fig, fig.add_subplot()


@styled
def funnel(rows: list[FunnelRow]) -> str:
    rows = [r for r in rows if r.complete]
    fig, ax = _axes(7, 0.5 + 0.45 * len(rows))
    y = np.arange(len(rows))[::-1]
    kept = np.array([r.docs_out for r in rows])
    removed = np.array([r.removed for r in rows])
    ax.barh(y, kept, color=KEPT_COLOR, label="kept")
    ax.barh(y, removed, left=kept, color=REMOVED_COLOR, label="removed")
    for yi, r in zip(y, rows):
        ax.text(r.docs_in, yi, f" {r.docs_out:,} / {r.docs_in:,}", va="center", fontsize=8)
    ax.set_yticks(y, [r.stage for r in rows])
    ax.set_xlabel("documents")
    ax.set_xlim(0, max([r.docs_in for r in rows] + [1]) * 1.25)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return to_svg(fig)


@styled
def hbars(counts: dict[str, int], xlabel: str, color: str = REMOVED_COLOR, top: int = 25) -> str:
    items = list(counts.items())[:top]
    fig, ax = _axes(7, 0.5 + 0.3 * len(items))
    y = np.arange(len(items))[::-1]
    values = [v for _, v in items]
    ax.barh(y, values, color=color)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {v:,}", va="center", fontsize=8)
    ax.set_yticks(y, [k for k, _ in items])
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(values + [1]) * 1.2)
    return to_svg(fig)


SKEW = 10  # the largest bin over the median non-empty one: past this, counts go on a log scale
LABEL_PT = 7  # threshold label font size
ROW_IN = 0.14  # height of one row of threshold labels above the plot (inches)


def skewed(counts: np.ndarray) -> bool:
    """Whether one bin dwarfs the others (a spike at 0 and a long tail): on linear counts the
    rest of the distribution would be invisible."""
    nonzero = counts[counts > 0]
    return nonzero.size >= 2 and counts.max() >= SKEW * np.median(nonzero)


def compact(x: float, _pos=None) -> str:
    """A tick label short enough that five fit side by side: 20k, 1.5M, 0.25."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:.3g}"


def _label_rows(labels: list[tuple[float, str]], width_in: float) -> list[int]:
    """A row for each (axes fraction, text) label, so that labels in one row do not touch; a
    label's width is estimated from its length (a 7 pt character is about 0.055 in)."""
    taken: list[list[tuple[float, float]]] = []
    rows = []
    for frac, text in labels:
        width = (len(text) * LABEL_PT * 0.6 / 72) / width_in + 0.02
        span = (frac, frac + width) if frac < 0.5 else (frac - width, frac)
        row = next((i for i, spans in enumerate(taken) if all(span[1] < a or span[0] > b for a, b in spans)), None)
        if row is None:
            row = len(taken)
            taken.append([])
        taken[row].append(span)
        rows.append(row)
    return rows


@styled
def signal_figure(plot: SignalPlot) -> Figure:
    """The ledger's histogram: kept, removed by this signal's own rules and removed for another
    reason, stacked; a line at each threshold, labelled above the plot so no label covers a bar."""
    h = plot.hist
    edges = np.asarray(h["edges"], dtype=float)
    kept, removed = np.asarray(h["kept"]), np.asarray(h["removed"])
    own = np.minimum(np.asarray(plot.removed_own), removed) if plot.removed_own is not None else np.zeros_like(removed)
    lo, hi = edges[0], edges[-1]
    span = hi - lo
    lines = [(b.threshold, f"{b.rule.param} = {b.threshold:g}", "--", LINE_COLOR) for b in plot.rules
             if b.threshold is not None]
    lines += [(value, label, ":", BOUND_COLOR) for value, label in plot.bounds]
    shown = [line for line in lines if lo - 0.5 * span <= line[0] <= hi + 0.5 * span]
    if shown:
        lo, hi = min([lo] + [t for t, *_ in shown]), max([hi] + [t for t, *_ in shown])
    x0, x1 = lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)
    labels = [((min(max(t, x0), x1) - x0) / (x1 - x0), label if line in shown else
               (f"{label} →" if t > hi else f"← {label}")) for line in lines for t, label, *_ in [line]]
    width, left, right = 4.2, 0.16, 0.97
    rows = _label_rows(labels, width * (right - left))
    n_rows = max(rows, default=-1) + 1
    bottom_in, axes_in, title_in = 0.36, 1.9, 0.24
    height = bottom_in + axes_in + n_rows * ROW_IN + 0.04 + title_in
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    # fixed margins: a layout engine costs more than the plot
    fig.subplots_adjust(left=left, right=right, bottom=bottom_in / height, top=(bottom_in + axes_in) / height)
    total = kept + removed
    log = skewed(total)
    base = 0.7 if log else 0  # on a log scale a bin of one document still shows
    # three filled step outlines (all behind kept + own behind kept) draw as three SVG paths, not 90 bars
    ax.stairs(total, edges, fill=True, color=OTHER_COLOR, baseline=base)
    ax.stairs(kept + own, edges, fill=True, color=REMOVED_COLOR, baseline=base)
    ax.stairs(kept, edges, fill=True, color=KEPT_COLOR, baseline=base)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(base, max(total.max(), 1) * 1.6)
    for t, _label, style, color in shown:
        ax.axvline(t, color=color, linestyle=style, linewidth=1.2)
    for (frac, text), row, line in zip(labels, rows, lines):
        ax.annotate(text, (frac, 1), xycoords="axes fraction", xytext=(0, 3 + row * ROW_IN * 72),
                    textcoords="offset points", ha="left" if frac < 0.5 else "right", va="bottom",
                    fontsize=LABEL_PT, color=line[3], annotation_clip=False)
    ax.set_xlim(x0, x1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.tick_params(labelsize=7.5)
    fig.text(0.02, 1 - 0.04 / height, f"{plot.stage}: {plot.signal}", ha="left", va="top", fontsize=9)
    ax.set_ylabel("documents")  # the colours are explained once, above the figures
    return fig


def signal(plot: SignalPlot) -> str:
    return to_svg(signal_figure(plot))


@styled
def stacked(counts: dict[str, tuple[int, int]], xlabel: str, top: int = 25) -> str:
    """Horizontal bars of (kept, removed) per label, the largest `top` labels."""
    items = list(counts.items())[:top]
    fig, ax = _axes(7, 0.5 + 0.28 * len(items))
    y = np.arange(len(items))[::-1]
    kept = np.array([v[0] for _, v in items])
    removed = np.array([v[1] for _, v in items])
    ax.barh(y, kept, color=KEPT_COLOR, label="kept")
    ax.barh(y, removed, left=kept, color=REMOVED_COLOR, label="removed")
    for yi, k, r in zip(y, kept, removed):
        ax.text(k + r, yi, f" {k + r:,}", va="center", fontsize=8)
    ax.set_yticks(y, [k for k, _ in items])
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max((kept + removed).tolist() + [1]) * 1.2)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return to_svg(fig)


@styled
def cluster_sizes(size_counts: dict[int, int]) -> str:
    """Clusters per size (power-of-two bins when sizes spread widely), log count axis."""
    bins = size_bins(size_counts, exact_up_to=20)
    labels = [b[0] for b in bins]
    values = [b[1] for b in bins]
    fig, ax = _axes(7, 2.8)
    x = np.arange(len(labels))
    ax.bar(x, values, color=KEPT_COLOR)
    for xi, v in zip(x, values):
        ax.text(xi, v, f"{v:,}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, labels)
    ax.set_xlabel("cluster size (documents)")
    ax.set_ylabel("clusters")
    if max(values) > 50 * min(values):  # a long tail of rare large clusters
        ax.set_yscale("log")
    return to_svg(fig)


@styled
def mix(buckets: list[str], shares: dict[str, list[float]]) -> str:
    """Grouped bars: each measure (documents, tokens) as a share of its total, per bucket."""
    fig, ax = _axes(7, 2.8)
    x = np.arange(len(buckets))
    width = 0.8 / max(len(shares), 1)
    colors = [KEPT_COLOR, "#f58518", "#54a24b"]
    for i, (name, values) in enumerate(shares.items()):
        bars = ax.bar(x + i * width, [100 * v for v in values], width, label=name, color=colors[i % 3])
        ax.bar_label(bars, fmt="%.1f%%", fontsize=7)
    ax.set_xticks(x + width * (len(shares) - 1) / 2, buckets)
    ax.set_ylabel("share (%)")
    ax.legend(frameon=False)
    return to_svg(fig)
