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

from curate.report.summary import FunnelRow, SignalPlot, size_bins

KEPT_COLOR, REMOVED_COLOR, LINE_COLOR, BOUND_COLOR = "#4c78a8", "#e45756", "#222222", "#b35900"
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


@styled
def signal(plot: SignalPlot) -> str:
    """The ledger's histogram, kept and removed stacked, with a line at each threshold."""
    h = plot.hist
    edges = np.asarray(h["edges"], dtype=float)
    kept, removed = np.asarray(h["kept"]), np.asarray(h["removed"])
    fig, ax = _axes(4.2, 2.6, layout=None)
    fig.subplots_adjust(left=0.16, right=0.97, bottom=0.12, top=0.9)  # fixed: a layout engine costs more than the plot
    # two filled step outlines (kept+removed behind kept) draw as two SVG paths, not 60 bars
    ax.stairs(kept + removed, edges, fill=True, color=REMOVED_COLOR)
    ax.stairs(kept, edges, fill=True, color=KEPT_COLOR)
    lo, hi = edges[0], edges[-1]
    span = hi - lo
    lines = [(b.threshold, f"{b.rule.param} = {b.threshold:g}", "--", LINE_COLOR) for b in plot.rules
             if b.threshold is not None]
    lines += [(value, label, ":", BOUND_COLOR) for value, label in plot.bounds]
    off_scale = []
    for t, label, style, color in lines:
        if lo - 0.5 * span <= t <= hi + 0.5 * span:
            ax.axvline(t, color=color, linestyle=style, linewidth=1.2)
            ax.annotate(label, (t, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                        fontsize=7, color=color,
                        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
            lo, hi = min(lo, t), max(hi, t)
        else:
            off_scale.append(f"{label} (off scale)")
    ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    if off_scale:
        ax.text(0.99, 0.97, "\n".join(off_scale), transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.set_title(f"{plot.stage}: {plot.signal}", fontsize=9, loc="left")
    ax.set_ylabel("documents")  # kept/removed colours are explained once, above the figures
    return to_svg(fig)


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
