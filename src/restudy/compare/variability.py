"""Variability tables: reported tables whose rows are model sets (``VariabilityLayout``) and whose
columns are variability metrics or reductions, reproduced from stored predictions.

Every row's metrics (and reductions against the layout's reference row) are always computed with
their 95 % bootstrap CIs over models — at any scale they are the main output of such a study. A
reported cell is judged only at the table's scale: reproduced if the reported value lies in the CI
widened by the reported ± (in quadrature, as a normal SE) and by half a unit of the reported
value's last printed digit (exact 0 and correlation 1 are not rounded), or within a claim's
tolerance; not reproduced outside it with ≥ 3 models; else inconclusive.

Imports study, stats, metrics and the sibling modules results, cells, modelsets and context.
"""

from __future__ import annotations

import logging
import math
from statistics import NormalDist
from typing import Any

import numpy as np

from .. import metrics, stats
from ..numbers import fmt, pct
from ..study import ModelSet, ReportedTable, ReportedValue, VariabilityLayout
from .cells import CellRule, scale_note
from .context import EvaluationContext
from .modelsets import VAR_CONFIDENCE, SetData, joint_draws, no_variability
from .results import (
    INCONCLUSIVE,
    MIN_SEEDS_TO_REJECT,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    CellResult,
    VariabilityCell,
    VariabilityRow,
    VariabilityTableResult,
)

log = logging.getLogger(__name__)

REDUCTION_COLUMNS: dict[str, str] = {"reduction_original": "original", "reduction_recalculated": "recalculated"}


def _metric_entries(data: SetData, confidence: float = VAR_CONFIDENCE) -> dict[str, dict[str, float]]:
    """metric → {value, ci_low, ci_high, se} with the bootstrap CI over models."""
    out: dict[str, dict[str, float]] = {}
    draws = data.draws()
    for metric in metrics.SUMMARY_METRICS:
        value = data.values.get(metric, math.nan)
        d = draws.get(metric)
        low, high = metrics.percentile_ci(d, confidence) if d is not None else (math.nan, math.nan)
        out[metric] = {
            "value": value,
            "ci_low": low,
            "ci_high": high,
            "se": metrics.bootstrap_sd(d) if d is not None else math.nan,
        }
    out["mean_accuracy"] = {"value": data.mean_accuracy, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    if "cka" in data.values:  # no bootstrap: one CKA per pair is already costly
        out["cka"] = {"value": data.values["cka"], "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
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
    out = {}
    for kind in ("original", "recalculated"):
        low, high = metrics.percentile_ci(np.asarray(boot[kind]), confidence)
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
        metrics=_metric_entries(data),
        reductions=reductions,
    )


def _rounding(value: float, column: str) -> float:
    """Half a unit of the reported value's last printed digit (0 for exact no-variability
    values: SD 0, correlation 1). Trailing zeros are lost in parsing: 8.0 reads as 8."""
    if column in REDUCTION_COLUMNS or not no_variability(column, value):
        text = repr(float(value))
        if "e" in text or "." not in text:
            return 0.0
        decimals = len(text.split(".")[1].rstrip("0"))
        return 0.5 * 10.0 ** (-decimals)
    return 0.0


def _column_entry(row: VariabilityRow, column: str) -> dict[str, Any] | None:
    if column in REDUCTION_COLUMNS:
        return (row.reductions or {}).get(REDUCTION_COLUMNS[column])
    return row.metrics.get(column)


def _var_higher_is_better(column: str) -> bool:
    """Less variability counts as better: higher correlations and reductions are better."""
    return column.startswith("correlation") or column in REDUCTION_COLUMNS


def _var_verdict(
    entry: dict[str, Any], reported: ReportedValue, column: str, row: VariabilityRow, rule: CellRule
) -> tuple[str, str, float, float]:
    """Verdict, note and the verdict interval of one reported variability cell."""
    value, low, high = entry["value"], entry["ci_low"], entry["ci_high"]
    if row.n_models < 2:
        return NOT_EVALUATED, row.why, math.nan, math.nan
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE, "no bootstrap interval (too few models)", math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + rule.confidence / 2.0)
    extra = z * (reported.pm or 0.0)
    slack = _rounding(reported.value, column)
    lo = value - math.hypot(value - low, extra) - slack
    hi = value + math.hypot(high - value, extra) + slack
    widened = " widened by the reported ±" if reported.pm else ""
    widened += " and rounding" if slack else ""
    span = f"{pct(rule.confidence)} bootstrap CI{widened} [{fmt(lo, 4)}, {fmt(hi, 4)}]"
    rel = stats.relative_error(value, reported.value)
    if lo <= reported.value <= hi:
        return REPRODUCED, f"reported value lies in the {span} (M={row.n_models})", lo, hi
    if rule.tolerance is not None and math.isfinite(rel) and abs(rel) <= rule.tolerance:
        note = f"|rel. error| {abs(rel):.1%} within the tolerance {rule.tolerance:.1%}"
        return REPRODUCED, note, lo, hi
    if row.n_models >= MIN_SEEDS_TO_REJECT:
        return NOT_REPRODUCED, f"reported value lies outside the {span} (M={row.n_models})", lo, hi
    return INCONCLUSIVE, f"outside the {span}, but M={row.n_models} models are too few", lo, hi


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
        rule: CI level and tolerance (default 95 %, none).
        entry: {value, ci_low, ci_high, se} at ``rule.confidence`` (default: the row's 95 % one).

    Returns:
        The :class:`VariabilityCell`; ``not_evaluated`` at another scale than the table's.
    """
    rule = rule or CellRule()
    known = entry if entry is not None else _column_entry(row, column)
    entry = known or {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    rel = stats.relative_error(entry["value"], reported.value)
    light = stats.traffic_light(entry["value"], reported.value, _var_higher_is_better(column))
    if known is None:
        verdict, note, lo, hi = NOT_EVALUATED, _missing_note(table, row, column), math.nan, math.nan
    elif scale != table.scale:
        verdict, note, lo, hi = NOT_EVALUATED, scale_note(table, scale, dataset), math.nan, math.nan
    else:
        verdict, note, lo, hi = _var_verdict(entry, reported, column, row, rule)
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
        interval_low=lo,
        interval_high=hi,
        rel_error=rel,
        light=light,
        verdict=verdict,
        note=note,
        confidence=rule.confidence,
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
    return _metric_entries(data, confidence).get(column)


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
    )
