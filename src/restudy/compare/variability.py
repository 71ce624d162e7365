"""Variability tables: reported tables whose rows are model sets (``VariabilityLayout``) and whose
columns are variability metrics or reductions, reproduced from stored predictions.

Every row's metrics (and reductions against the layout's reference row) are always computed with
their 95 % bootstrap CIs over models (log-scale or BCa, expanded level;
:func:`restudy.stats.bootstrap_interval`) —
at any scale they are the main output of such a study. A reported cell is judged only at the
table's scale, by the same equivalence rule as numeric cells: the (1 − 2α) bootstrap CI of the
reproduced value, widened in quadrature by the reported ± (a bootstrap standard error in these
tables), minus the reported value must lie within ±δ (reproduced) or entirely outside it (not
reproduced); else inconclusive with the models per set that would likely decide (CI width ∝
1/√M). δ is the claim's tolerance (a fraction of the reported variability V, V = 1 − ρ for
correlations) or by default 10 % of V (the reproduction report's traffic-light threshold), plus
half a unit of the printed last digit; an exact "no variability" value (SD 0, correlation 1) gets
δ = 0: only exact zeros reproduce it.

Imports spec, stats, display and the sibling modules verdicts, cells, modelsets and context.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ..display.numbers import fmt, pct
from ..spec.claim_base import ModelSet
from ..spec.reported import ReportedTable, ReportedValue, VariabilityLayout
from ..stats import variability as metrics
from ..stats.agreement import relative_error, traffic_light
from ..stats.decisions import DIFFERENT, EQUIVALENT, interval_decision
from .cells import CellRule, scale_note
from .context import EvaluationContext
from .modelsets import VAR_CONFIDENCE, SetData, bca, joint_draws, joint_jackknife, no_variability
from .verdicts import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    CellResult,
    VariabilityCell,
    VariabilityRow,
    VariabilityTableResult,
    chance_sentence,
)

log = logging.getLogger(__name__)

REDUCTION_COLUMNS: dict[str, str] = {"reduction_original": "original", "reduction_recalculated": "recalculated"}


def _metric_entries(
    data: SetData, confidence: float = VAR_CONFIDENCE, cka: bool = False
) -> dict[str, dict[str, float]]:
    """metric → {value, ci_low, ci_high, se} with the bootstrap CI over models; with ``cka`` (a
    table with a CKA column) the mean pairwise CKA too."""
    out: dict[str, dict[str, float]] = {}
    draws = data.draws()
    for metric in metrics.SUMMARY_METRICS:
        value = data.values.get(metric, math.nan)
        d = draws.get(metric)
        low, high = data.interval(metric, confidence) if d is not None else (math.nan, math.nan)
        out[metric] = {
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "se": metrics.bootstrap_sd(d) if d is not None else math.nan,
        }
    out["mean_accuracy"] = {"value": data.mean_accuracy, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    if cka and (value := data.cka()) is not None:  # no bootstrap: one CKA per pair is already costly
        out["cka"] = {"value": value, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    return out


def reduction_entries(
    data: SetData, ref: SetData, confidence: float = VAR_CONFIDENCE
) -> dict[str, dict[str, Any]] | None:
    """Reduction % against the reference, both formulas, with bootstrap CIs (None if unusable)."""
    if data.why or ref.why or data.n_models < 2 or ref.n_models < 2:
        return None
    point = metrics.reduction_percent(data.values, ref.values)
    draws_g, draws_r = joint_draws(data, ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = metrics.reduction_percent(draws_g, draws_r)
        jack = [metrics.reduction_percent(jg, jr) for jg, jr in joint_jackknife(data, ref)]
    out = {}
    for kind in ("original", "recalculated"):
        low, high = bca(
            point[kind],
            np.asarray(boot[kind]),
            [np.atleast_1d(np.asarray(j[kind], dtype=float)) for j in jack],
            confidence,
            min(data.n_models, ref.n_models),
        )
        out[kind] = {
            "value": point[kind],
            "ci_low": low,
            "ci_high": high,
            "se": metrics.bootstrap_sd(np.asarray(boot[kind])),
            "label": point["labels"][kind],
            "per_metric": point["per_metric"][kind],
        }
    return out


def _variability_row(table: ReportedTable, name: str, ms: ModelSet, ctx: EvaluationContext) -> VariabilityRow:
    layout = table.layout
    assert isinstance(layout, VariabilityLayout)
    data = ctx.model_set(ms)
    reductions = None
    if layout.reference and name != layout.reference and layout.reference in layout.rows:
        reductions = reduction_entries(data, ctx.model_set(layout.rows[layout.reference]))
    return VariabilityRow(
        table=table.id,
        row=name,
        label=ms.label or name,
        experiment=ms.experiment,
        view=ms.view,
        n_runs=data.n_runs,
        n_models=data.n_models,
        missing=list(data.missing),
        nonfinite=list(data.nonfinite),
        why=data.why,
        metrics=_metric_entries(data, cka="cka" in table.columns),
        reductions=reductions,
        diverged=list(data.diverged),
    )


def _exact(reported: ReportedValue, column: str) -> bool:
    """An exact "no variability" value (SD 0, disagreement 0, correlation 1): not rounded."""
    return column not in REDUCTION_COLUMNS and no_variability(column, reported.value)


def var_tolerance(reported: ReportedValue, column: str, rule: CellRule) -> tuple[float, str]:
    """δ of a variability cell (metric unit) and its reason."""
    if _exact(reported, column):
        return 0.0, "an exact 'no variability' value: only exact zeros reproduce it"
    v = (
        abs(float(metrics.variability_value(column, reported.value)))
        if column not in REDUCTION_COLUMNS
        else abs(reported.value)
    )
    what = "of 1 − ρ" if column.startswith("correlation") else "of the reported value"
    slack = reported.rounding()
    rounding = f"rounding of the printed {reported.text or reported.value} (±{slack:g})"
    if rule.tolerance is not None:
        why = rule.tolerance_reason or f"declared by claim {rule.claim}"
        return rule.tolerance * v + slack, f"{rule.tolerance:.0%} {what} ({why}) + {rounding}"
    return 0.1 * v + slack, (f"default: 10% {what} (the reproduction report's traffic-light threshold) + {rounding}")


def _column_entry(row: VariabilityRow, column: str) -> dict[str, Any] | None:
    if column in REDUCTION_COLUMNS:
        return (row.reductions or {}).get(REDUCTION_COLUMNS[column])
    return row.metrics.get(column)


def _var_higher_is_better(column: str) -> bool:
    """Less variability counts as better: higher correlations and reductions are better."""
    return column.startswith("correlation") or column in REDUCTION_COLUMNS


@dataclass(frozen=True)
class _VarDecision:
    verdict: str
    note: str
    low: float = math.nan
    high: float = math.nan
    tolerance: float = math.nan
    tolerance_reason: str = ""
    models: int | None = None


def _models_to_decide(
    value: float, low: float, high: float, extra: float, gap: float, tol: float, m: int
) -> int | None:
    """Models per set after which the cell's interval would likely decide, if its bootstrap
    half-width shrinks as 1/√M and the reported ± (``extra``, which no M shrinks) stays."""
    half = max(value - low, high - value)
    room = (tol - gap) if gap < tol else (gap - tol)
    if not (math.isfinite(half) and half > 0) or room <= extra:
        return None
    needed = math.ceil(m * half**2 / (room**2 - extra**2))
    return needed if needed <= 100000 else None


def _var_verdict(
    entry: dict[str, Any], reported: ReportedValue, column: str, row: VariabilityRow, rule: CellRule
) -> _VarDecision:
    """The equivalence decision of one reported variability cell."""
    value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
    tol, why = var_tolerance(reported, column, rule)
    if row.n_models < 2:
        return _VarDecision(NOT_EVALUATED, row.why, tolerance=tol, tolerance_reason=why)
    if not (math.isfinite(low) and math.isfinite(high)):
        return _VarDecision(INCONCLUSIVE, "no bootstrap interval (too few models)", tolerance=tol, tolerance_reason=why)
    z = NormalDist().inv_cdf(1.0 - rule.alpha)
    extra = z * (reported.pm or 0.0)
    lo = value - math.hypot(value - low, extra) - reported.value
    hi = value + math.hypot(high - value, extra) - reported.value
    decision, _ = interval_decision(lo, hi, tol)
    widened = " widened by the reported ±" if reported.pm else ""
    span = (
        f"{pct(rule.confidence)} bootstrap CI{widened} of reproduced − reported [{fmt(lo, 4)}, {fmt(hi, 4)}] "
        f"vs tolerance ±{fmt(tol, 4)} (M={row.n_models})"
    )
    if decision == EQUIVALENT:
        return _VarDecision(REPRODUCED, f"{span}: inside", lo, hi, tol, why)
    if decision == DIFFERENT:
        return _VarDecision(NOT_REPRODUCED, f"{span}: outside", lo, hi, tol, why)
    models = _models_to_decide(value, low, high, extra, abs(value - reported.value), tol, row.n_models)
    need = f"about {models} models per set would likely decide" if models else "no model count is likely to decide"
    return _VarDecision(INCONCLUSIVE, f"{span}: overlaps the tolerance's edge; {need}", lo, hi, tol, why, models)


def variability_cell(
    table: ReportedTable,
    row: VariabilityRow,
    column: str,
    reported: ReportedValue,
    scale: str,
    dataset: str,
    rule: CellRule | None = None,
    entry: dict[str, Any] | None = None,
) -> VariabilityCell:
    """Judges one reported cell of a variability table (only at the table's scale).

    Args:
        table: the reported table; row: its reproduced row; column: the cell's column.
        reported: the reported value (its ± is taken as a normal SE).
        scale, dataset: of the runs.
        rule: α and tolerance (default α 0.05, the default tolerance).
        entry: {value, ci_low, ci_high, se} at ``rule.confidence`` (default: the row's 95 % one,
            which is the 1 − 2α interval for the default α).

    Returns:
        The :class:`VariabilityCell`; ``not_evaluated`` at another scale than the table's.
    """
    rule = rule or CellRule()
    known = entry if entry is not None else _column_entry(row, column)
    entry = known or {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    rel = relative_error(entry["value"], reported.value)
    light = traffic_light(entry["value"], reported.value, _var_higher_is_better(column))
    if known is None:
        dec = _VarDecision(NOT_EVALUATED, _missing_note(table, row, column))
    elif scale != table.scale:
        tol, why = var_tolerance(reported, column, rule)
        dec = _VarDecision(NOT_EVALUATED, scale_note(table, scale, dataset), tolerance=tol, tolerance_reason=why)
        rel, light = math.nan, "gray"  # another scale or other data: shown, not measured against each other
    else:
        dec = _var_verdict(entry, reported, column, row, rule)
    return VariabilityCell(
        table=table.id,
        row=row.row,
        column=column,
        value=entry["value"],
        ci_low=entry["ci_low"],
        ci_high=entry["ci_high"],
        se=entry["se"],
        n_models=row.n_models,
        reported=reported.value,
        reported_pm=reported.pm,
        interval_low=dec.low,
        interval_high=dec.high,
        rel_error=rel,
        light=light,
        verdict=dec.verdict,
        note=dec.note,
        confidence=rule.confidence,
        tolerance=dec.tolerance,
        tolerance_reason=dec.tolerance_reason,
        alpha=rule.alpha,
        reported_text=reported.text,
        seeds_needed=dec.models,
    )


def _missing_note(table: ReportedTable, row: VariabilityRow, column: str) -> str:
    if column in REDUCTION_COLUMNS:
        reference = getattr(table.layout, "reference", None)
        if row.row == reference:
            return "the reference row itself has no reduction"
        return row.why or (
            "no reduction: the reference row has no usable models"
            if reference
            else "no reduction: the table's layout names no reference row"
        )
    return f"unknown column '{column}'; known: {', '.join(metrics.SUMMARY_METRICS)}"


def variability_table(table: ReportedTable, ctx: EvaluationContext) -> VariabilityTableResult:
    """Reproduces every row of a variability table and judges its reported cells."""
    layout = table.layout
    assert isinstance(layout, VariabilityLayout)
    rows = []
    for name in table.rows:
        ms = layout.rows.get(name)
        if ms is None:
            log.warning("table %s: row %r has no model set in its layout", table.id, name)
            continue
        row = _variability_row(table, name, ms, ctx)
        ctx.var_rows[(table.id, name)] = row
        rows.append(row)
    cells = [
        _judged_cell(table, r.row, c, rep, ctx, ctx.rules.get((table.id, r.row, c)))
        for r in rows
        for c in table.columns
        if (rep := table.value(r.row, c)) is not None
    ]
    comparable = ctx.scale == table.scale
    note = (
        "reproduced and reported numbers are comparable"
        if comparable
        else "values are not comparable: " + scale_note(table, ctx.scale, ctx.dataset)
    )
    alphas = [2.0 * c.alpha for c in cells if c.verdict != NOT_EVALUATED]
    if alphas:
        note += "; " + chance_sentence(alphas)
    return VariabilityTableResult(
        table=table.id,
        title=table.title,
        columns=list(table.columns),
        reference=layout.reference,
        scale=ctx.scale,
        dataset=ctx.dataset,
        reported_scale=table.scale,
        reported_dataset=table.dataset,
        comparable=comparable,
        note=note,
        rows=rows,
        cells=cells,
        chance_red=sum(alphas),
    )


def _entry_at(
    table: ReportedTable, row: str, column: str, ctx: EvaluationContext, confidence: float
) -> dict[str, Any] | None:
    """A cell's {value, ci_low, ci_high, se} with the CI at ``confidence`` (same draws)."""
    layout = table.layout
    assert isinstance(layout, VariabilityLayout)
    data = ctx.model_set(layout.rows[row])
    if column in REDUCTION_COLUMNS:
        ref = layout.reference
        if not ref or ref == row or ref not in layout.rows:
            return None
        red = reduction_entries(data, ctx.model_set(layout.rows[ref]), confidence)
        return None if red is None else red[REDUCTION_COLUMNS[column]]
    return _metric_entries(data, confidence, cka=column == "cka").get(column)


def _judged_cell(
    table: ReportedTable, row: str, column: str, reported: ReportedValue, ctx: EvaluationContext, rule: CellRule | None
) -> VariabilityCell:
    """A variability cell judged with ``rule`` (its CI recomputed when the level is not 95 %)."""
    rule = rule or CellRule()
    vrow = ctx.var_rows[(table.id, row)]
    entry = None if rule.confidence == VAR_CONFIDENCE else _entry_at(table, row, column, ctx, rule.confidence)
    return variability_cell(table, vrow, column, reported, ctx.scale, ctx.dataset, rule, entry)


def variability_cell_result(
    table: ReportedTable, row: str, column: str, reported: ReportedValue, ctx: EvaluationContext, rule: CellRule
) -> CellResult:
    """A numeric claim's cell in a variability table, as a :class:`CellResult` (mean = the
    reproduced value, sd = its bootstrap SD, n = models, CI = the verdict interval)."""
    vrow = ctx.var_rows.get((table.id, row))
    if vrow is None:
        nan = math.nan
        return CellResult(
            table=table.id,
            row=row,
            column=column,
            reported=reported.value,
            reported_pm=reported.pm,
            reported_n=reported.n,
            mean=nan,
            sd=nan,
            n=0,
            ci_low=nan,
            ci_high=nan,
            abs_error=nan,
            rel_error=nan,
            light="gray",
            verdict=NOT_EVALUATED,
            note="no model set for this row",
            scale=ctx.scale,
            dataset=ctx.dataset,
        )
    vc = _judged_cell(table, row, column, reported, ctx, rule)
    return CellResult(
        table=table.id,
        row=row,
        column=column,
        reported=reported.value,
        reported_pm=reported.pm,
        reported_n=reported.n,
        mean=vc.value,
        sd=vc.se,
        n=vc.n_models,
        ci_low=vc.ci_low,
        ci_high=vc.ci_high,
        abs_error=vc.value - reported.value,
        rel_error=vc.rel_error,
        light=vc.light,
        verdict=vc.verdict,
        note=vc.note,
        scale=ctx.scale,
        dataset=ctx.dataset,
        seeds_needed=vc.seeds_needed,
        reported_text=reported.text,
        reported_se=reported.pm if reported.pm is not None else 0.0,
        reported_se_how="its ± as a bootstrap standard error"
        if reported.pm is not None
        else "no ± printed: taken as exact",
        tolerance=vc.tolerance,
        tolerance_reason=vc.tolerance_reason,
        diff_low=vc.interval_low,
        diff_high=vc.interval_high,
        alpha=vc.alpha,
    )
