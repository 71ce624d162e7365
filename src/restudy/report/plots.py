"""Report figures: one per claim, one of training curves per experiment and one per variability
table (matplotlib, Agg).

Each figure shows the runs themselves (one point per seed) next to the summary a verdict rests on
(mean ± 95 % CI, or a rate with its exact interval), so a reader sees the noise the verdict had to
beat. Figures are written as PNG files; nothing is shown on screen.

Imports compare and study (matplotlib and numpy only otherwise; no torch).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # must precede the pyplot import: never open a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
import numpy as np  # noqa: E402

from .. import compare as cmp  # noqa: E402
from .. import metrics, stats  # noqa: E402
from ..study import (BeatsClaim, NumericClaim, Selector, Study, ThresholdClaim,  # noqa: E402
                     TrendClaim, VariabilityClaim)

log = logging.getLogger(__name__)

DPI = 100
CURVE_PANELS = (("train_acc", "train accuracy (%)"), ("test_acc", "test accuracy (%)"),
                ("train_loss", "train loss"), ("test_loss", "test loss"))
Row = dict[str, Any]


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _numeric(levels: Sequence[Any]) -> bool:
    try:
        [float(v) for v in levels]
    except (TypeError, ValueError):
        return False
    return True


def _ordered_levels(values: Sequence[Any]) -> list[Any]:
    uniq = list(dict.fromkeys(values))
    return sorted(uniq, key=float) if _numeric(uniq) else uniq


def _positions(levels: list[Any]) -> dict[Any, float]:
    if _numeric(levels):
        return {lv: float(lv) for lv in levels}
    return {lv: float(i) for i, lv in enumerate(levels)}


def _mean_ci(runs: Sequence[Row], metric: str) -> tuple[float, float, float]:
    """Mean and 95 % CI (floored for accuracies) of the runs' metric."""
    s, _ = cmp.summarize_runs(runs, metric)
    return s.mean, s.ci_low, s.ci_high


def _errorbar(ax: Any, x: float, mean: float, low: float, high: float, color: Any,
              label: str | None = None) -> None:
    if not math.isfinite(mean):
        return
    lo = mean - low if math.isfinite(low) else 0.0
    hi = high - mean if math.isfinite(high) else 0.0
    ax.errorbar([x], [mean], yerr=[[lo], [hi]], fmt="o", color=color, markersize=7,
                markeredgecolor="black", capsize=4, linewidth=1.5, label=label, zorder=3)


def _free_axis(runs: Sequence[Row], selectors: Sequence[Selector]) -> str | None:
    """The first axis with several levels that no selector pins: the figure's x axis."""
    pinned = set().union(*(cmp.pinned_axes(s) for s in selectors))
    axes: dict[str, set[str]] = {}
    for r in runs:
        for ax, lv in (r.get("variant") or {}).items():
            axes.setdefault(ax, set()).add(lv)
    for ax, levels in axes.items():
        if ax not in pinned and len(levels) > 1:
            return ax
    return None


def _offset_width(pos: dict[Any, float], n_series: int) -> float:
    """Horizontal offset between series at one x level: they share 60 % of the gap."""
    xs = sorted(set(pos.values()))
    gap = min((b - a for a, b in zip(xs, xs[1:])), default=1.0)
    return 0.6 * gap / max(1, n_series)


def _series_plot(ax: Any, series: list[tuple[str, list[Row]]], axis: str | None,
                 metric: str) -> None:
    """Points per seed and mean ± 95 % CI per (series, x level)."""
    colors = plt.get_cmap("tab10")
    if axis is None:
        levels: list[Any] = [label for label, _ in series]
    else:
        levels = _ordered_levels([r["variant"].get(axis) for _, runs in series for r in runs])
    pos = _positions(levels)
    width = _offset_width(pos, len(series))
    for i, (label, runs) in enumerate(series):
        color = colors(i % 10)
        offset = (i - (len(series) - 1) / 2) * width if axis is not None else 0.0
        for j, lv in enumerate(levels if axis is not None else [label]):
            sub = [r for r in runs if axis is None or r["variant"].get(axis) == lv]
            vals = [cmp.metric_value(r, metric) for r in sub]
            x = pos[lv] + offset
            jitter = np.linspace(-width / 4, width / 4, len(vals)) if len(vals) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), vals, s=14, color=color, alpha=0.5, zorder=2)
            mean, lo, hi = _mean_ci(cmp.usable(sub), metric)
            _errorbar(ax, x, mean, lo, hi, color, label if j == 0 else None)
    ax.set_xticks(list(pos.values()), [str(lv) for lv in levels])
    ax.set_xlabel(axis or "")


def _title(ax: Any, claim: cmp.ClaimResult) -> None:
    ax.set_title(f"{claim.id}: {claim.verdict.replace('_', ' ')}", fontsize=10)


# --------------------------------------------------------------------------------------------
# claim figures
# --------------------------------------------------------------------------------------------


def _diff_panel(ax: Any, claim: BeatsClaim, rows: list[Row], axis: str | None) -> None:
    """Paired differences a − b (what the test sees): points per pair, mean ± 95 % CI."""
    colors = plt.get_cmap("tab10")
    a_runs = cmp.usable(cmp.select_runs(rows, claim.a))
    all_levels: list[Any] = []
    for i, b in enumerate(claim.b):
        pairs, _ = cmp.pair_runs(a_runs, cmp.usable(cmp.select_runs(rows, b)), claim.a, b)
        pts = [((ra.get("variant") or {}).get(axis) if axis else b.label(),
                cmp.metric_value(ra, claim.metric) - cmp.metric_value(rb, claim.metric))
               for ra, rb in pairs]
        levels = _ordered_levels([x for x, _ in pts])
        all_levels += levels
        pos = _positions(levels) if axis else {lv: float(i) for lv in levels}
        width = _offset_width(pos, len(claim.b)) if axis else 0.0
        for lv in levels:
            ys = np.array([y for x, y in pts if x == lv], dtype=float)
            x = pos[lv] + (i - (len(claim.b) - 1) / 2) * width
            ax.scatter([x] * len(ys), ys, s=14, color=colors(i + 1), alpha=0.5)
            s = stats.summarize(ys)
            _errorbar(ax, x, s.mean, s.ci_low, s.ci_high, colors(i + 1),
                      f"− {b.label()}" if lv == levels[0] else None)
    ax.axhline(claim.margin, color="grey", linewidth=0.8)
    ax.set_title(f"paired differences ({claim.a.label()} − b), mean ± 95% CI", fontsize=8)
    ax.set_xlabel(axis or "")
    if not axis:
        ax.set_xticks(range(len(claim.b)), [b.label() for b in claim.b], fontsize=7)
    elif all_levels:
        levels = _ordered_levels(all_levels)
        ax.set_xticks(list(_positions(levels).values()), [str(lv) for lv in levels])
    ax.legend(fontsize=7)


def _beats_figure(claim: BeatsClaim, result: cmp.ClaimResult, rows: list[Row], path: Path) -> Path:
    series = [(sel.label(), cmp.select_runs(rows, sel)) for sel in (claim.a, *claim.b)]
    all_runs = [r for _, runs in series for r in runs]
    axis = _free_axis(all_runs, [claim.a, *claim.b])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2),
                                      gridspec_kw={"width_ratios": [3, 2]})
    _series_plot(left, [(lbl, cmp.usable(runs)) for lbl, runs in series], axis, claim.metric)
    left.set_ylabel(claim.metric)
    left.set_title("per seed; mean ± 95% CI per group", fontsize=8)
    left.legend(fontsize=7, loc="best")
    _diff_panel(right, claim, rows, axis)
    fig.suptitle(f"{result.id}: {result.verdict.replace('_', ' ')}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _trend_figure(claim: TrendClaim, result: cmp.ClaimResult, rows: list[Row], path: Path) -> Path:
    pts, _ = cmp.trend_points(claim, rows)
    pts = [(float(x), y) for x, y in pts if math.isfinite(y)]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    if pts:
        xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        ax.scatter(xs, ys, s=14, alpha=0.5, color="tab:blue",
                   label=("one run pair" if claim.baseline else "one run") + "; mean ± 95% CI")
        for x in np.unique(xs):
            s = stats.summarize(ys[xs == x])
            _errorbar(ax, float(x), s.mean, s.ci_low, s.ci_high, "tab:blue")
        slope = result.evidence.get("slope")
        if slope is not None:
            intercept = float(np.mean(ys) - slope * np.mean(xs))
            grid = np.linspace(xs.min(), xs.max(), 50)
            ax.plot(grid, intercept + slope * grid, color="tab:red", label=f"fit, slope {slope:+.3f}")
        ax.legend(fontsize=8)
    if claim.baseline is not None:
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(f"{claim.metric}: {claim.select.label()} − {claim.baseline.label()}", fontsize=8)
    else:
        ax.set_ylabel(claim.metric)
    ax.set_xlabel(claim.over)
    _title(ax, result)
    return _save(fig, path)


def _rate_bars(ax: Any, groups: dict[str, list[Row]], value: float, confidence: float) -> None:
    labels = list(groups) + ["all"]
    runs_all = [r for runs in groups.values() for r in runs]
    for i, lbl in enumerate(labels):
        runs = runs_all if lbl == "all" else groups[lbl]
        k = sum(cmp.metric_value(r, "diverged") >= 0.5 for r in runs)
        low, high = stats.rate_ci(k, len(runs), confidence)
        color = "tab:grey" if lbl == "all" else "tab:orange"
        ax.bar(i, k / len(runs), color=color, alpha=0.7)
        ax.errorbar([i], [k / len(runs)], yerr=[[k / len(runs) - low], [high - k / len(runs)]],
                    color="black", capsize=4)
        ax.text(i, 0.03, f"{k}/{len(runs)}", ha="center", fontsize=8)
    ax.axhline(value if value <= 1 else value / 100, color="tab:red", linestyle="--",
               label="claimed threshold")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"fraction of runs diverged ({cmp.pct(confidence)} exact CI)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _threshold_figure(claim: ThresholdClaim, result: cmp.ClaimResult, rows: list[Row],
                      path: Path) -> Path:
    runs = cmp.usable(cmp.select_runs(rows, claim.select))
    groups = cmp.group_rows(runs)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    if claim.metric == "diverged" and runs:
        conf = result.evidence.get("confidence") or 0.95
        _rate_bars(ax, {vid: rs for (_, vid), rs in groups.items()}, claim.value, conf)
    else:
        _series_plot(ax, [(vid, rs) for (_, vid), rs in groups.items()], None, claim.metric)
        ax.axhline(claim.value, color="tab:red", linestyle="--", label="claimed threshold")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.set_ylabel(claim.metric)
        ax.legend(fontsize=8)
    _title(ax, result)
    return _save(fig, path)


def _numeric_figure(claim: NumericClaim, result: cmp.ClaimResult, study: Study, rows: list[Row],
                    path: Path) -> Path:
    cells = result.evidence.get("cells", [])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(cells) + 2), 4.2))
    for i, cell in enumerate(cells):
        table = study.table(cell["table"])
        runs = cmp.usable(cmp.cell_runs(table, cell["row"], cell["column"], rows))
        vals = [cmp.metric_value(r, str(table.metric)) for r in runs]
        ax.scatter([i] * len(vals), vals, s=14, color="tab:blue", alpha=0.5, zorder=2)
        mean, lo, hi = (cell.get(k) for k in ("mean", "ci_low", "ci_high"))
        if mean is not None:
            _errorbar(ax, i, mean, lo if lo is not None else math.nan,
                      hi if hi is not None else math.nan, "tab:blue",
                      "reproduced mean ± CI" if i == 0 else None)
        pm = cell.get("reported_pm") or 0.0
        ax.errorbar([i + 0.2], [cell["reported"]], yerr=[[pm], [pm]], fmt="x", color="tab:red",
                    markersize=8, capsize=3, label="reported" if i == 0 else None)
    ax.set_xticks(range(len(cells)), [f"{c['row']} / {c['column']}" for c in cells],
                  rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(claim.metric)
    if cells:
        ax.legend(fontsize=8)
    _title(ax, result)
    return _save(fig, path)


def _ratio_panel(ax: Any, result: cmp.ClaimResult) -> bool:
    """Ratios r = V_group/V_reference per (group, metric) with their CIs, the band or 1 marked."""
    ev = result.evidence
    groups = [g for g in ev.get("groups", []) if g.get("comparisons")]
    metric_names = list(ev.get("metrics") or [])
    colors = plt.get_cmap("tab10")
    width = 0.7 / max(1, len(metric_names))
    drawn, positive = False, True
    for gi, g in enumerate(groups):
        for mi, c in enumerate(g["comparisons"]):
            x = gi + (mi - (len(metric_names) - 1) / 2) * width
            ratio = c.get("ratio")
            if ratio is None or not math.isfinite(ratio):
                continue
            lo, hi = c.get("ci_low"), c.get("ci_high")
            _errorbar(ax, x, ratio, lo if lo is not None else math.nan,
                      hi if hi is not None else math.nan, colors(mi % 10),
                      c["metric"] if gi == 0 else None)
            drawn = True
            positive = positive and ratio > 0 and (lo is None or lo > 0)
    band = ev.get("band") or [1.0, 1.0]
    if ev.get("relation") == "comparable":
        ax.axhspan(band[0], band[1], color="tab:green", alpha=0.1, label="band")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(groups)), [g["group"] for g in groups], rotation=20, ha="right",
                  fontsize=7)
    ax.set_ylabel(f"V(group) / V({ev.get('reference')}), {cmp.pct(ev.get('confidence') or 0.95)} CI")
    if drawn and positive:  # ratios: a log axis makes r and 1/r equally far from 1
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    if drawn:
        ax.legend(fontsize=7, loc="best")
    return drawn


def _zero_panel(ax: Any, result: cmp.ClaimResult) -> bool:
    """Variability V of each group per metric (0 means none; V = 1 − correlation)."""
    ev = result.evidence
    groups = [g for g in ev.get("groups", []) if g.get("values")]
    colors = plt.get_cmap("tab10")
    names = list(ev.get("metrics") or [])
    width = 0.8 / max(1, len(groups))
    for gi, g in enumerate(groups):
        vals = [g["values"].get(m) for m in names]
        v = [(1.0 - x if m.startswith("correlation") else x) if x is not None else math.nan
             for m, x in zip(names, vals)]
        ax.bar(np.arange(len(names)) + (gi - (len(groups) - 1) / 2) * width, v, width,
               color=colors(gi % 10), label=f"{g['group']} ({g['n_models']} models)")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    if groups and all(g.get("verdict") == cmp.REPRODUCED for g in groups):
        ax.text(0.5, 0.6, "every metric exactly 0: no variability", transform=ax.transAxes,
                ha="center", fontsize=9, color="tab:green")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("variability V (0 = none; 1 − corr. for correlations)")
    if groups:
        ax.legend(fontsize=7)
    return bool(groups)


def _variability_claim_figure(result: cmp.ClaimResult, path: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    zero = result.evidence.get("relation") == "zero"
    drawn = _zero_panel(ax, result) if zero else _ratio_panel(ax, result)
    if not drawn:
        plt.close(fig)
        return None
    _title(ax, result)
    return _save(fig, path)


def claim_figure(claim: Any, result: cmp.ClaimResult, study: Study, rows: list[Row],
                 path: Path) -> Path | None:
    """Draws the figure of one claim.

    Args:
        claim: the claim as declared in the study.
        result: its :class:`restudy.compare.ClaimResult`.
        study: the study (numeric claims look up their tables).
        rows: run rows at the report's scale.
        path: the PNG to write.

    Returns:
        ``path``, or None when the claim selects no runs.
    """
    if isinstance(claim, BeatsClaim):
        return _beats_figure(claim, result, rows, path)
    if isinstance(claim, TrendClaim):
        return _trend_figure(claim, result, rows, path) if cmp.trend_points(claim, rows)[0] else None
    if isinstance(claim, ThresholdClaim):
        return _threshold_figure(claim, result, rows, path)
    if isinstance(claim, NumericClaim) and result.evidence.get("cells"):
        return _numeric_figure(claim, result, study, rows, path)
    if isinstance(claim, VariabilityClaim):
        return _variability_claim_figure(result, path)
    return None


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
            ax.errorbar([i + 0.25], [reported.value], yerr=[[pm], [pm]], fmt="x", color="tab:red",
                        capsize=3, label=rep_label)
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        _variability_panel(ax, t, column, study)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="upper right", fontsize=7)
    fig.suptitle(f"{t.title} ({t.scale} scale)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


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
    return {vid: {"variant": variants[vid], "n": len(curves), **_epoch_means(curves)}
            for vid, curves in by_variant.items()}


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
    second = _ordered_levels([v.get(axes[1]) for v in variants]) if len(axes) > 1 else [None]
    cmap = plt.get_cmap("tab10")
    styles = {}
    for i, (vid, c) in enumerate(curves.items()):
        v = c["variant"]
        ci = first.index(v.get(axes[0])) if axes else i
        si = second.index(v.get(axes[1])) if len(axes) > 1 else 0
        alpha = 1.0 if len(second) < 2 else 0.3 + 0.7 * si / (len(second) - 1)
        styles[vid] = (cmap(ci % 10), alpha)
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
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for vid, c in curves.items():
        color, alpha = styles[vid]
        for ax, (q, _) in zip(axes.flat, CURVE_PANELS):
            ax.plot(c["epoch"], c[q], color=color, alpha=alpha, linewidth=1.3,
                    label=f"{vid} (n={c['n']})")
    for ax, (_, label) in zip(axes.flat, CURVE_PANELS):
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7,
               title="variant (mean over seeds)", title_fontsize=8)
    fig.suptitle(f"{experiment}: training curves", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# all figures
# --------------------------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def make_figures(fig_dir: Path, study: Study, comparison: cmp.Comparison, rows: list[Row],
                 records: Sequence[dict[str, Any]]) -> dict[str, Path]:
    """Writes every figure of the report.

    Args:
        fig_dir: the folder for the PNG files.
        study: the study.
        comparison: its comparison at the report's scale.
        rows: run rows at that scale.
        records: full run records at that scale (for the curves).

    Returns:
        ``"claim:<id>"`` / ``"curves:<experiment>"`` / ``"variability:<table>"`` → PNG path, for
        the figures drawn.
    """
    figures: dict[str, Path] = {}
    results = {c.id: c for c in comparison.claims}
    for claim in study.claims:
        path = claim_figure(claim, results[claim.id], study, rows,
                            fig_dir / f"claim-{_safe_name(claim.id)}.png")
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
