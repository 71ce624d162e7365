"""Report figures: each claim's (drawn by its kind from its evidence), the training curves of each
experiment and one per variability table (matplotlib, Agg, via :mod:`restudy.display.draw`).

Nothing here selects, pairs or summarises runs: claim figures come from their kinds
(:mod:`restudy.claims`), variability figures from the reproduced rows compare returned, and curve
figures average the recorded per-epoch curves over seeds (with their range as a band). Titles say
what ran (model, data, models per set); every figure is drawn once, none for a claim without data.
Figures are written as PNG files.

Imports compare, claims, display, stats and spec (matplotlib and numpy only otherwise; no torch).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import compare as cmp
from ..claims.base import claim_kind
from ..display import draw
from ..display.tables import METRIC_LABELS
from ..spec.study import Study
from ..stats import variability as metrics
from .provenance import describe_runs
from .variability import merged_rows, split_title

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


def _variability_panel(ax: Any, t: cmp.VariabilityTableResult, column: str, study: Study) -> bool:
    """Bars of one metric by model set with 95 % bootstrap CIs; reported values as red crosses
    (only when the runs' scale is the table's: other scales' numbers are not drawn beside them).
    Only model sets with a value get a slot; sets selecting the same models share one."""
    decl = study.table(t.table)
    bar_label, rep_label = "this run: value, 95% bootstrap CI", "reported (± as given)"
    rows = [(names, r) for names, r in merged_rows(t.rows) if _finite((_panel_entry(r, column) or {}).get("value"))]
    for i, (_, r) in enumerate(rows):
        if _bar(ax, i, _panel_entry(r, column) or {}, bar_label):
            bar_label = None
        reported = decl.value(r.row, column) if t.comparable else None
        if reported is not None:
            pm = reported.pm or 0.0
            ax.errorbar(
                [i + 0.25], [reported.value], yerr=[[pm], [pm]], fmt="x", color="tab:red", capsize=3, label=rep_label
            )
            rep_label = None
    labels = [_short(" = ".join(names) if len(names) < 3 else f"{names[0]}…{names[-1]}") for names, _ in rows]
    ax.set_xticks(
        range(len(rows)),
        labels,
        rotation=35 if len(rows) > 3 else 0,
        ha="right" if len(rows) > 3 else "center",
        fontsize=7,
    )
    ax.set_title(METRIC_LABELS.get(column, column), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return bool(rows)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def variability_figure(t: cmp.VariabilityTableResult, study: Study, path: Path, ran: str = "") -> Path | None:
    """One panel per column of a variability table that has values: bars by model set with CI
    error bars, titled with what ran (models per row, model, data, scale).

    Returns:
        ``path``, or None when no row has a value.
    """
    columns = [c for c in t.columns if c in cmp.REDUCTION_COLUMNS or c in metrics.SUMMARY_METRICS]
    columns = [c for c in columns if any(_finite((_panel_entry(r, c) or {}).get("value")) for r in t.rows)]
    if not columns or not any(r.n_models for r in t.rows):
        return None
    n_rows = len(merged_rows(t.rows))
    ncols = min(3, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    width = max(3.6, 0.45 * n_rows + 1.6)
    fig, axes = draw.subplots(nrows, ncols, figsize=(width * ncols, 3.4 * nrows + 0.6), squeeze=False)
    for ax, column in zip(axes.flat, columns):
        _variability_panel(ax, t, column, study)
    for ax in list(axes.flat)[len(columns) :]:
        ax.axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    heading = split_title(t.title)[0]
    per = sorted({r.n_models for r in t.rows if r.n_models})
    models = f"{per[0]}" if len(per) == 1 else f"{per[0]}–{per[-1]}"
    fig.suptitle(
        f"{heading}\n{models} models per set; {ran + ', ' if ran else ''}{t.scale} scale on {t.dataset}", fontsize=9
    )
    if legend:
        fig.legend(
            list(legend.values()),
            list(legend),
            loc="lower center",
            ncol=len(legend),
            fontsize=7,
            bbox_to_anchor=(0.5, 0.0),
        )
    rotated = n_rows > 3  # as _variability_panel sets its tick labels
    draw.fixed_margins(fig, nrows, ncols, bottom_in=(1.1 if rotated else 0.35) + (0.35 if legend else 0.0))
    return draw.save(fig, path, tight=False)


# --------------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------------


def mean_curves(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant, the seed-mean of each curve quantity by epoch (NaN-aware), and its range over
    seeds (``<quantity>:min`` / ``<quantity>:max``).

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
            filled_lo = np.where(np.isnan(arr), np.inf, arr).min(axis=0) if len(curves) else means
            filled_hi = np.where(np.isnan(arr), -np.inf, arr).max(axis=0) if len(curves) else means
        out[q] = np.where(seen, means, np.nan)
        out[f"{q}:min"] = np.where(seen, filled_lo, np.nan)
        out[f"{q}:max"] = np.where(seen, filled_hi, np.nan)
    return out


def _curve_styles(curves: dict[str, dict[str, Any]]) -> dict[str, tuple[Any, float]]:
    """Colour by the level of the first axis whose level varies, shade (alpha) by the level of the
    second (an axis with one level here, e.g. a single model, would colour every line alike)."""
    variants = [c["variant"] for c in curves.values()]
    names = list(variants[0]) if variants and variants[0] else []
    axes = [a for a in names if len({v.get(a) for v in variants}) > 1]
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


def curves_figure(title: str, curves: dict[str, dict[str, Any]], path: Path, ran: str = "") -> Path | None:
    """Draws training curves: per line the seed mean and the range over seeds (band), train and
    test in separate panels.

    Args:
        title: what the lines are (an experiment, or several experiments of one variant each).
        curves: line label → :func:`mean_curves` entry; lines are coloured by the first variant
            axis and shaded by the second (darker = later level), or one colour each.

    Returns:
        ``path``, or None when there is no curve.
    """
    if not curves:
        return None
    styles = _curve_styles(curves)
    fig, axes = draw.subplots(2, 2, figsize=(12.5, 6.5), sharex=True)
    for name, c in curves.items():
        color, alpha = styles[name]
        for ax, (q, _) in zip(axes.flat, CURVE_PANELS):
            ax.plot(c["epoch"], c[q], color=color, alpha=alpha, linewidth=1.3, label=f"{name} ({c['n']} seeds)")
            if c["n"] > 1:
                ax.fill_between(c["epoch"], c[f"{q}:min"], c[f"{q}:max"], color=color, alpha=0.15 * alpha, linewidth=0)
    for ax, (_, label) in zip(axes.flat, CURVE_PANELS):
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="center left",
        bbox_to_anchor=(0.79, 0.5),
        fontsize=7,
        title="line: mean over seeds\nband: min–max over seeds",
        title_fontsize=7,
    )
    fig.suptitle(f"{title}: training curves" + (f" — {ran}" if ran else ""), fontsize=10)
    # fixed margins (this layout never changes; tight_layout would cost a third of the drawing):
    # the legend sits right of the panels, inside the figure
    fig.subplots_adjust(left=0.06, right=0.78, bottom=0.08, top=0.93, wspace=0.2, hspace=0.08)
    return draw.save(fig, path, tight=False)


MAX_LINES = 6  # experiments of one variant each drawn together, at most this many per figure


def curve_groups(experiments: Sequence[str], records: Sequence[dict[str, Any]]) -> list[tuple[list[str], dict]]:
    """The training-curve figures: an experiment with several variants gets its own (one line per
    variant); experiments of one variant each share figures, one line per experiment, up to
    :data:`MAX_LINES` per figure in the study's order (one figure each would repeat the same axes
    many times over).

    Returns:
        ``[(experiments drawn, line label → mean_curves entry)]``; experiments without curves
        are left out.
    """
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_exp.setdefault(r["spec"].get("experiment"), []).append(r)
    groups: list[tuple[list[str], dict]] = []
    single: list[tuple[str, dict]] = []
    for exp in experiments:
        curves = mean_curves(by_exp.get(exp, []))
        if len(curves) == 1:
            single.append((exp, next(iter(curves.values()))))
        elif curves:
            groups.append(([exp], curves))
    for k in range(0, len(single), MAX_LINES):
        chunk = single[k : k + MAX_LINES]
        groups.append(([e for e, _ in chunk], {e: c for e, c in chunk}))
    order = {e: i for i, e in enumerate(experiments)}
    return sorted(groups, key=lambda g: order[g[0][0]])


# --------------------------------------------------------------------------------------------
# all figures
# --------------------------------------------------------------------------------------------


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


_JOBS: list[Any] = []  # the figure jobs a forked drawing process inherits (see run_jobs)
MIN_PARALLEL_JOBS = 4  # below this, starting processes costs more than it saves


def _draw_job(i: int) -> Path | None:
    return _JOBS[i]()


def run_jobs(jobs: Sequence[Any], workers: int, progress: Any = None) -> list[Path | None]:
    """Runs figure jobs (callables returning a path or None), in order of results.

    With ``workers`` > 1 and enough jobs, they run in forked processes: each inherits the jobs
    (closures over the study and its evidence, which need no pickling) and returns only a path.
    Figures are drawn from the evidence alone and write their own files, so a figure is the same
    drawn in a process or here. Where fork is unavailable, they run here one after another.
    """
    global _JOBS
    n = len(jobs)
    tick = progress or (lambda done, total: None)
    if workers < 2 or n < MIN_PARALLEL_JOBS or "fork" not in mp.get_all_start_methods():
        out = []
        for i, job in enumerate(jobs):
            out.append(job())
            tick(i + 1, n)
        return out
    _JOBS = list(jobs)
    sys.stdout.flush()  # a forked process flushes what it inherited: nothing may be pending
    sys.stderr.flush()
    try:
        with ProcessPoolExecutor(min(workers, n), mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(_draw_job, i) for i in range(n)]
            for done, _ in enumerate(as_completed(futures), 1):
                tick(done, n)
            return [f.result() for f in futures]
    finally:
        _JOBS = []


def make_figures(
    fig_dir: Path,
    study: Study,
    comparison: cmp.Comparison,
    records: Sequence[dict[str, Any]],
    progress: Any = None,
    workers: int = 1,
) -> dict[str, Path]:
    """Writes every figure of the report, each once, drawn by up to ``workers`` processes.

    Args:
        fig_dir: the folder for the PNG files.
        study: the study.
        comparison: its comparison at the report's scale (claim figures draw its evidence).
        records: full run records at that scale (for the curves).
        progress: called as ``progress(done, total)`` after each figure (optional).
        workers: processes drawing figures at once (see :func:`run_jobs`).

    Returns:
        ``"claim:<id>"`` / ``"curves:<experiment>"`` / ``"variability:<table>"`` → PNG path, for
        the figures drawn.
    """
    figures: dict[str, Path] = {}
    fig_dir.mkdir(parents=True, exist_ok=True)
    results = {c.id: c for c in comparison.claims}
    ran = describe_runs(records)
    jobs: list[tuple[str | tuple[str, ...], Any]] = []
    for claim in study.claims:
        res = results[claim.id]
        if res.verdict == cmp.NOT_EVALUATED:
            continue  # no verdict at this scale (or no runs): no figure, never an empty one
        name = fig_dir / f"claim-{_safe_name(claim.id)}.png"
        jobs.append((f"claim:{claim.id}", lambda c=claim, r=res, n=name: claim_kind(c.kind).figure(c, r, n)))
    for t in comparison.variability:
        name = fig_dir / f"var-{_safe_name(t.table)}.png"
        jobs.append((f"variability:{t.table}", lambda t=t, n=name: variability_figure(t, study, n, ran)))
    for exps, curves in curve_groups([e.id for e in study.experiments], records):
        name = fig_dir / f"curves-{_safe_name(exps[0])}.png"
        title = exps[0] if len(exps) == 1 else ", ".join(exps)
        keys = tuple(f"curves:{e}" for e in exps)
        what = describe_runs([r for r in records if r["spec"].get("experiment") in exps])  # these runs only
        jobs.append((keys, lambda t=title, c=curves, n=name, w=what: curves_figure(t, c, n, w)))
    for (key, _), path in zip(jobs, run_jobs([job for _, job in jobs], workers, progress)):
        if path is not None:
            for k in (key,) if isinstance(key, str) else key:
                figures[k] = path
    drawn = {p.name for p in figures.values()}
    for stale in fig_dir.glob("*.png"):
        if stale.name not in drawn:  # e.g. a claim that has no verdict since: no figure lingers
            stale.unlink(missing_ok=True)
    log.info("wrote %d figures to %s", len(figures), fig_dir)
    return figures
