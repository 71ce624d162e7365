"""Drawing primitives every report figure shares (matplotlib, Agg: never a window): figures,
axes positions for levels, error bars from given numbers, per-seed points with their means, saving.

Nothing here computes a statistic: means and intervals come in from the evidence.

Imports matplotlib and numpy only.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # must precede the pyplot import: never open a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..spec.metrics import metric_info

DPI = 100
METRIC_AXIS = {
    "test_acc": "test accuracy (%)",
    "train_acc": "train accuracy (%)",
    "test_loss": "test loss (cross-entropy)",
    "train_loss": "train loss (cross-entropy)",
    "diverged": "fraction of runs diverged",
    "wall_s": "wall time per run (s)",
}


def metric_label(metric: Any) -> str:
    """A run metric as an axis label with its unit: ``test_acc`` → ``test accuracy (%)``; a
    registered run metric's declared label and unit (:class:`restudy.spec.metrics.MetricInfo`)."""
    name = str(metric)
    if name in METRIC_AXIS:
        return METRIC_AXIS[name]
    info = metric_info(name)
    label = info.label or name.replace("_", " ")
    return f"{label} ({info.unit})" if info.unit else label


def subplots(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
    """A new figure and its axes (``plt.subplots``)."""
    return plt.subplots(*args, **kwargs)


def save(fig: Any, path: Path, tight: bool = True) -> Path:
    """Writes the figure as PNG and closes it.

    ``tight`` crops to what was drawn, at the cost of drawing twice; a figure laid out with
    ``tight_layout`` that keeps every artist inside passes False (drawn once).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def fixed_margins(
    fig: Any, nrows: int, ncols: int, bottom_in: float, top_in: float = 0.8, left_in: float = 0.65, gap_in: float = 0.45
) -> None:
    """Lays out a grid of panels with margins given in inches (``tight_layout`` would draw the
    figure once more to measure them, a third of its cost).

    Args:
        bottom_in: room under the last row (tick labels, a legend below the panels).
        top_in: room above the first row (a two-line title and the panel titles).
        left_in: room left of each panel (y tick labels).
        gap_in: extra room between rows for a panel title (the tick labels of the row above
            take ``bottom_in`` minus any legend's room; callers with rotated labels pass more).
    """
    w, h = fig.get_size_inches()
    bottom, top = bottom_in / h, 1 - top_in / h
    left, right = left_in / w, 1 - 0.15 / w
    row_gap, col_gap = bottom_in + gap_in - 0.35, left_in
    axis_h = (h * (top - bottom) - (nrows - 1) * row_gap) / nrows
    axis_w = (w * (right - left) - (ncols - 1) * col_gap) / ncols
    fig.subplots_adjust(
        left=left, right=right, bottom=bottom, top=top, hspace=row_gap / axis_h, wspace=col_gap / axis_w
    )


def close(fig: Any) -> None:
    """Discards a figure without writing it."""
    plt.close(fig)


def color(i: int) -> Any:
    """The i-th colour of the report's palette (tab10)."""
    return plt.get_cmap("tab10")(i)


def floats(values: Sequence[Any]) -> list[float]:
    """Evidence values as floats (None, i.e. a stored NaN, back to NaN)."""
    return [math.nan if v is None else float(v) for v in values]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def numeric(levels: Sequence[Any]) -> bool:
    """Whether every level reads as a number."""
    try:
        [float(v) for v in levels]
    except (TypeError, ValueError):
        return False
    return True


def ordered_levels(values: Sequence[Any]) -> list[Any]:
    """Distinct levels, numerically sorted when all are numbers, else in first-seen order."""
    uniq = list(dict.fromkeys(values))
    return sorted(uniq, key=float) if numeric(uniq) else uniq


def positions(levels: list[Any]) -> dict[Any, float]:
    """x position per level: its value when numeric, else its index."""
    if numeric(levels):
        return {lv: float(lv) for lv in levels}
    return {lv: float(i) for i, lv in enumerate(levels)}


def offset_width(pos: dict[Any, float], n_series: int) -> float:
    """Horizontal offset between series at one x level: they share 60 % of the gap."""
    xs = sorted(set(pos.values()))
    gap = min((b - a for a, b in zip(xs, xs[1:])), default=1.0)
    return 0.6 * gap / max(1, n_series)


def errorbar(ax: Any, x: float, mean: Any, low: Any, high: Any, col: Any, label: str | None = None) -> None:
    """A mean with its interval (a missing bound draws no bar on that side; no mean, nothing)."""
    if not _finite(mean):
        return
    lo = mean - low if _finite(low) else 0.0
    hi = high - mean if _finite(high) else 0.0
    ax.errorbar(
        [x],
        [mean],
        yerr=[[lo], [hi]],
        fmt="o",
        color=col,
        markersize=7,
        markeredgecolor="black",
        capsize=4,
        linewidth=1.5,
        label=label,
        zorder=3,
    )


def series_panel(ax: Any, series: list[dict[str, Any]], axis: str | None) -> None:
    """Per-seed points (jittered) and mean ± CI per (series, x level), series side by side.

    ``series``: ``{"label", "points": [[x, value]], "levels": [{"x", "mean", "ci_low",
    "ci_high"}]}`` as :func:`restudy.compare.select.series` returns them; x is a level of
    ``axis`` (each series at its own position when there is no axis).
    """
    if axis is None:
        levels: list[Any] = [s["label"] for s in series]
    else:
        levels = ordered_levels([x for s in series for x, _ in s["points"]])
    pos = positions(levels)
    width = offset_width(pos, len(series))
    for i, s in enumerate(series):
        col = color(i % 10)
        offset = (i - (len(series) - 1) / 2) * width if axis is not None else 0.0
        means = {lv["x"]: lv for lv in s["levels"]}
        for j, lv in enumerate(levels if axis is not None else [s["label"]]):
            vals = floats([y for x, y in s["points"] if x == lv])
            x = pos[lv] + offset
            jitter = np.linspace(-width / 4, width / 4, len(vals)) if len(vals) > 1 else [0.0]
            if vals:
                ax.scatter(x + np.asarray(jitter), vals, s=14, color=col, alpha=0.5, zorder=2)
            m = means.get(lv)
            if m is not None:
                errorbar(ax, x, m["mean"], m["ci_low"], m["ci_high"], col, s["label"] if j == 0 else None)
    set_ticks(ax, list(pos.values()), [str(lv) for lv in levels])
    ax.set_xlabel(axis or "")


def set_ticks(ax: Any, xs: Sequence[float], labels: Sequence[str], fontsize: int = 7) -> None:
    """x tick labels that do not collide: long names wrapped on several lines, many levels
    rotated, crowded numeric levels thinned to at most 12 labels."""
    labels = [textwrap.fill(t, 26) for t in labels]
    if len(labels) > 12 and numeric([t for t in labels]):
        step = -(-len(labels) // 12)
        labels = [t if i % step == 0 else "" for i, t in enumerate(labels)]
    longest = max((len(line) for t in labels for line in t.splitlines()), default=0)
    rotate = len(labels) * longest > 60 and longest > 4
    ax.set_xticks(list(xs), labels, rotation=30 if rotate else 0, ha="right" if rotate else "center", fontsize=fontsize)


def log_ratio_axis(ax: Any) -> None:
    """A log y axis for ratios (r and 1/r equally far from 1), ticks at 1, 2, 5 × 10^k."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def title(ax: Any, result: Any) -> None:
    """``<claim id>: <verdict>`` as the axes title."""
    ax.set_title(f"{result.id}: {result.verdict.replace('_', ' ')}", fontsize=10)
