"""Report figures: each claim's (drawn by its kind from its evidence), the training curves of each
experiment and one per variability table (matplotlib, Agg, via :mod:`restudy.report.draw`).

Nothing here selects, pairs or summarises runs: claim figures come from their kinds
(:mod:`restudy.claims`), variability figures from the reproduced rows compare returned, and curve
figures average the recorded per-epoch curves over seeds. Figures are written as PNG files.

Imports compare, claims, metrics and study (matplotlib and numpy only otherwise; no torch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import compare as cmp
from .. import metrics
from ..claims import claim_kind
from ..study import Study
from . import draw

log = logging.getLogger(__name__)

CURVE_PANELS = (
    ("train_acc", "train accuracy (%)"),
    ("test_acc", "test accuracy (%)"),
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
)
Row = dict[str, Any]


# --------------------------------------------------------------------------------------------
# variability tables
# --------------------------------------------------------------------------------------------


def _panel_entry(row: cmp.VariabilityRow, column: str) -> dict[str, Any] | None:
    if column in cmp.REDUCTION_COLUMNS:
        return (row.reductions or {}).get(cmp.REDUCTION_COLUMNS[column])
    return row.metrics.get(column)


def _bar(ax: Any, x: float, entry: dict[str, Any], label: str | None) -> bool:
    """One reproduced value as a bar with its CI; False when there is no finite value."""
    value = entry.get("value")
    if value is None or not math.isfinite(value):
        return False
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    err = None
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        err = [[max(0.0, value - lo)], [max(0.0, hi - value)]]
    ax.bar(x, value, color="tab:blue", alpha=0.7, yerr=err, capsize=3, label=label)
    return True


def _variability_panel(ax: Any, t: cmp.VariabilityTableResult, column: str, study: Study) -> None:
    """Bars of one metric by model set with 95 % bootstrap CIs; reported values as red crosses
    (only when the runs' scale is the table's: other scales' numbers are not drawn beside them)."""
    decl = study.table(t.table)
    bar_label, rep_label = "reproduced (95% CI)", "reported (± as given)"
    for i, r in enumerate(t.rows):
        if _bar(ax, i, _panel_entry(r, column) or {}, bar_label):
            bar_label = None
        reported = decl.value(r.row, column) if t.comparable else None
        if reported is not None:
            pm = reported.pm or 0.0
            ax.errorbar(
                [i + 0.25], [reported.value], yerr=[[pm], [pm]], fmt="x", color="tab:red", capsize=3, label=rep_label
            )
            rep_label = None
    ax.set_xticks(range(len(t.rows)), [r.row for r in t.rows], rotation=35, ha="right", fontsize=7)
    ax.set_title(column, fontsize=9)


def variability_figure(t: cmp.VariabilityTableResult, study: Study, path: Path) -> Path | None:
    """One panel per column of a variability table: bars by model set with CI error bars.

    Returns:
        ``path``, or None when no row has a value.
    """
    columns = [c for c in t.columns if c in cmp.REDUCTION_COLUMNS or c in metrics.SUMMARY_METRICS]
    if not columns or not any(r.n_models for r in t.rows):
        return None
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = draw.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        _variability_panel(ax, t, column, study)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="upper right", fontsize=7)
    fig.suptitle(f"{t.title} ({t.scale} scale)", fontsize=10)
    fig.tight_layout()
    return draw.save(fig, path)


# --------------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------------


def mean_curves(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant, the seed-mean of each curve quantity by epoch (NaN-aware).

    Args:
        records: full run records of one experiment (``curves``: per-epoch dicts).

    Returns:
        variant_id → {"variant": axis → level, "epoch": epochs, "n": runs, quantity: mean per
        epoch (array)}.
    """
    by_variant: dict[str, list[list[dict[str, Any]]]] = {}
    variants: dict[str, dict[str, str]] = {}
    for rec in records:
        if rec.get("curves"):
            variant = rec["spec"].get("variant") or {}
            vid = cmp.variant_label(variant)
            by_variant.setdefault(vid, []).append(rec["curves"])
            variants[vid] = variant
    return {
        vid: {"variant": variants[vid], "n": len(curves), **_epoch_means(curves)} for vid, curves in by_variant.items()
    }


def _epoch_means(curves: list[list[dict[str, Any]]]) -> dict[str, np.ndarray]:
    """Seed-mean per epoch of each curve quantity; epochs missing in a run count as NaN."""
    epochs = sorted({int(p["epoch"]) for c in curves for p in c if "epoch" in p})
    idx = {e: i for i, e in enumerate(epochs)}
    out: dict[str, np.ndarray] = {"epoch": np.array(epochs, dtype=float)}
    for q, _ in CURVE_PANELS:
        arr = np.full((len(curves), len(epochs)), np.nan)
        for k, c in enumerate(curves):
            for p in c:
                v = p.get(q)
                if "epoch" in p and isinstance(v, (int, float)) and not isinstance(v, bool):
                    arr[k, idx[int(p["epoch"])]] = float(v)
        seen = np.any(~np.isnan(arr), axis=0)
        with np.errstate(all="ignore"):
            means = np.nansum(arr, axis=0) / np.maximum(1, np.sum(~np.isnan(arr), axis=0))
        out[q] = np.where(seen, means, np.nan)
    return out


def _curve_styles(curves: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, float]]:
    """Colour by the level of the first axis, shade (alpha) by the level of the second."""
    variants = [c["variant"] for c in curves.values()]
    axes = list(variants[0]) if variants and variants[0] else []
    first = list(dict.fromkeys(v.get(axes[0]) for v in variants)) if axes else [None]
    second = draw.ordered_levels([v.get(axes[1]) for v in variants]) if len(axes) > 1 else [None]
    styles = {}
    for i, (vid, c) in enumerate(curves.items()):
        v = c["variant"]
        ci = first.index(v.get(axes[0])) if axes else i
        si = second.index(v.get(axes[1])) if len(axes) > 1 else 0
        alpha = 1.0 if len(second) < 2 else 0.3 + 0.7 * si / (len(second) - 1)
        styles[vid] = (draw.color(ci % 10), alpha)
    return styles


def curves_figure(experiment: str, records: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Draws the seed-mean training curves of one experiment: train and test in separate panels.

    Lines are coloured by the first variant axis and shaded by the second (darker = later level).

    Returns:
        ``path``, or None when no record has curves.
    """
    curves = mean_curves(records)
    if not curves:
        return None
    styles = _curve_styles(curves)
    fig, axes = draw.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for vid, c in curves.items():
        color, alpha = styles[vid]
        for ax, (q, _) in zip(axes.flat, CURVE_PANELS):
            ax.plot(c["epoch"], c[q], color=color, alpha=alpha, linewidth=1.3, label=f"{vid} (n={c['n']})")
    for ax, (_, label) in zip(axes.flat, CURVE_PANELS):
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
        title="variant (mean over seeds)",
        title_fontsize=8,
    )
    fig.suptitle(f"{experiment}: training curves", fontsize=11)
    fig.tight_layout()
    return draw.save(fig, path)


# --------------------------------------------------------------------------------------------
# all figures
# --------------------------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def make_figures(
    fig_dir: Path, study: Study, comparison: cmp.Comparison, records: Sequence[dict[str, Any]]
) -> dict[str, Path]:
    """Writes every figure of the report.

    Args:
        fig_dir: the folder for the PNG files.
        study: the study.
        comparison: its comparison at the report's scale (claim figures draw its evidence).
        records: full run records at that scale (for the curves).

    Returns:
        ``"claim:<id>"`` / ``"curves:<experiment>"`` / ``"variability:<table>"`` → PNG path, for
        the figures drawn.
    """
    figures: dict[str, Path] = {}
    fig_dir.mkdir(parents=True, exist_ok=True)
    results = {c.id: c for c in comparison.claims}
    for claim in study.claims:
        path = claim_kind(claim.kind).figure(claim, results[claim.id], fig_dir / f"claim-{_safe_name(claim.id)}.png")
        if path is not None:
            figures[f"claim:{claim.id}"] = path
    for t in comparison.variability:
        path = variability_figure(t, study, fig_dir / f"var-{_safe_name(t.table)}.png")
        if path is not None:
            figures[f"variability:{t.table}"] = path
    for exp in study.experiments:
        recs = [r for r in records if r["spec"].get("experiment") == exp.id]
        path = curves_figure(exp.id, recs, fig_dir / f"curves-{_safe_name(exp.id)}.png")
        if path is not None:
            figures[f"curves:{exp.id}"] = path
    log.info("wrote %d figures to %s", len(figures), fig_dir)
    return figures
