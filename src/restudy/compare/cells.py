"""Numeric cells: each reported value of a result table against the runs of its cell, the table as
a whole (mean squared deviation), and the per-variant summaries every report shows.

Cell rule (α from the first claim naming the cell, else 0.05): the CI is the two-sided (1 − α)
t-interval of the mean with SD ``max(sd, floor)``, where the floor is the binomial test-set SD
√(p(1−p)/n_test) in percentage points for accuracies in %. ``reproduced`` if n ≥ 2 and the
reported value lies in the CI (or |relative error| ≤ the claim's tolerance); ``not_reproduced`` if
it lies outside and n ≥ 3; ``inconclusive`` otherwise (n = 1, or n = 2 outside the CI), with the
seeds a two-sided one-sample t-test would need to detect the observed gap (at least 3). At other
scales than the table's the numbers are computed for information only and the verdict is
``not_evaluated``.

Imports study, stats and the sibling modules results and select.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import stats
from ..numbers import fmt, pct
from ..study import CellRef, ReportedTable, ReportedValue, Selector, Study, TableLayout
from .results import (
    INCONCLUSIVE,
    MIN_SEEDS_TO_REJECT,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    POWER,
    REPRODUCED,
    CellResult,
    GroupSummary,
    TableResult,
)
from .select import Row, datasets, higher_is_better, select_runs, summarize_runs, usable

GROUP_METRICS: tuple[str, ...] = ("test_acc", "train_acc", "test_loss", "train_loss", "wall_s")


def group_summary(runs: list[Row]) -> GroupSummary:
    """The runs of one (experiment, variant) with every :data:`GROUP_METRICS` summarised."""
    status = [r.get("status") for r in runs]
    ok = usable(runs)
    metrics = {m: summarize_runs(ok, m)[0].to_dict() for m in GROUP_METRICS}
    first = runs[0]
    return GroupSummary(
        experiment=first["experiment"],
        variant=dict(first.get("variant") or {}),
        variant_id=first["variant_id"],
        n_runs=len(runs),
        n_finished=status.count("finished"),
        n_diverged=status.count("diverged"),
        n_failed=status.count("failed"),
        metrics=metrics,
    )


@dataclass(frozen=True)
class CellRule:
    """How a cell is judged: CI level, optional relative tolerance, the claim that set them."""

    confidence: float = 0.95
    tolerance: float | None = None
    claim: str | None = None


def cell_rules(study: Study) -> dict[tuple[str, str, str], CellRule]:
    """The first claim naming a cell (in its ``cells``) sets its tolerance and α in the tables."""
    rules: dict[tuple[str, str, str], CellRule] = {}
    for c in study.claims:
        for ref in getattr(c, "cells", None) or ():
            if isinstance(ref, CellRef):
                rules.setdefault(
                    (ref.table, ref.row, ref.column), CellRule(1.0 - c.alpha, getattr(c, "tolerance", None), c.id)
                )
    return rules


def cell_runs(table: ReportedTable, row: str, column: str, rows: Iterable[Row]) -> list[Row]:
    """Returns the rows (any status) behind one cell of a result table (none for variability
    tables, whose cells are computed from a whole model set's predictions)."""
    layout = table.layout
    if not isinstance(layout, TableLayout):
        return []
    where = {**layout.where, layout.row_axis: row, layout.column_axis: column}
    return select_runs(rows, Selector(experiment=layout.experiment, where=where))


def scale_note(table: ReportedTable, scale: str, dataset: str) -> str:
    """Why a table's numbers and these runs are not comparable (scale and data of each)."""
    return (
        f"reported at {table.scale} scale on {table.dataset or 'the paper data'}; "
        f"these runs are {scale} scale on {dataset or 'unknown data'}"
    )


def _cell_seeds(summary: stats.Summary, reported: float, confidence: float) -> int | None:
    """Seeds a two-sided one-sample t-test needs to detect the observed gap (at least 3)."""
    gap = abs(summary.mean - reported)
    sd = summary.sd_used
    if not (math.isfinite(gap) and math.isfinite(sd)) or gap == 0.0:
        return None
    n = stats.seeds_needed(gap, sd, alpha=1.0 - confidence, power=POWER, paired=True, alternative="two-sided")
    return None if n is None else max(MIN_SEEDS_TO_REJECT, n)


def _cell_verdict(summary: stats.Summary, reported: float, rel: float, rule: CellRule) -> tuple[str, str, int | None]:
    """Verdict, note and seeds needed for a cell evaluated at its own scale."""
    n, level = summary.n, pct(rule.confidence)
    if n == 0:
        return NOT_EVALUATED, "no finished or diverged runs for this cell", None
    ci = f"{level} CI [{fmt(summary.ci_low)}, {fmt(summary.ci_high)}]"
    in_ci = summary.ci_low <= reported <= summary.ci_high
    in_tol = rule.tolerance is not None and math.isfinite(rel) and abs(rel) <= rule.tolerance
    seeds = _cell_seeds(summary, reported, rule.confidence)
    if n < 2:
        return (
            INCONCLUSIVE,
            (f"one run cannot separate seed noise from a real gap; {seeds or 'more'} seeds would be needed"),
            seeds,
        )
    if in_ci:
        return REPRODUCED, f"reported value lies in the {ci} (n={n})", None
    if in_tol:
        return (
            REPRODUCED,
            (f"|rel. error| {abs(rel):.1%} is within the tolerance {rule.tolerance:.1%} (outside the {ci})"),
            None,
        )
    if n >= MIN_SEEDS_TO_REJECT:
        return NOT_REPRODUCED, f"reported value lies outside the {ci} (n={n})", None
    return (
        INCONCLUSIVE,
        (
            f"reported value lies outside the {ci}, but n={n} is too few to reject; "
            f"{seeds or 'more'} seeds would be needed"
        ),
        seeds,
    )


def evaluate_cell(
    table: ReportedTable,
    row: str,
    column: str,
    reported: ReportedValue,
    runs: Sequence[Row],
    scale: str,
    dataset: str,
    rule: CellRule | None = None,
) -> CellResult:
    """Compares one reported value with the runs of its cell.

    Args:
        table: the reported table.
        row, column: the cell.
        reported: the reported value.
        runs: the cell's rows (any status; failed ones are dropped here).
        scale: the scale of the runs.
        dataset: the data set label of the runs (used when rows carry none).
        rule: CI level and tolerance (defaults: 95 %, no tolerance).

    Returns:
        A :class:`CellResult`; ``not_evaluated`` unless ``scale`` is the table's scale.
    """
    rule = rule or CellRule()
    ok = usable(runs)
    summary, floor = summarize_runs(ok, str(table.metric), rule.confidence, table.test_size)
    rel = stats.relative_error(summary.mean, reported.value)
    light = stats.traffic_light(summary.mean, reported.value, higher_is_better(str(table.metric)))
    data = datasets(ok, dataset)
    if scale != table.scale:
        verdict, note, seeds = NOT_EVALUATED, scale_note(table, scale, data), None
    else:
        verdict, note, seeds = _cell_verdict(summary, reported.value, rel, rule)
    if rule.claim and rule.tolerance is not None:
        note += f" (tolerance from claim {rule.claim})"
    return CellResult(
        table=table.id,
        row=row,
        column=column,
        reported=reported.value,
        reported_pm=reported.pm,
        reported_n=reported.n,
        mean=summary.mean,
        sd=summary.sd,
        n=summary.n,
        ci_low=summary.ci_low,
        ci_high=summary.ci_high,
        abs_error=summary.mean - reported.value,
        rel_error=rel,
        light=light,
        verdict=verdict,
        note=note,
        seeds_needed=seeds,
        sd_floor=floor,
        scale=scale,
        dataset=data,
    )


def table_cells(
    table: ReportedTable, rows: list[Row], scale: str, dataset: str, rules: dict[tuple[str, str, str], CellRule]
) -> list[CellResult]:
    cells = []
    for r in table.rows:
        for c in table.columns:
            reported = table.value(r, c)
            if reported is None:
                continue
            cells.append(
                evaluate_cell(
                    table, r, c, reported, cell_runs(table, r, c, rows), scale, dataset, rules.get((table.id, r, c))
                )
            )
    return cells


def table_result(table: ReportedTable, cells: list[CellResult], scale: str, dataset: str) -> TableResult:
    have = [c for c in cells if c.n > 0]
    msd = stats.mean_squared_deviation([c.mean for c in have], [c.reported for c in have]) if have else math.nan
    comparable = scale == table.scale
    note = (
        "reproduced and reported numbers are comparable"
        if comparable
        else "values are not comparable: " + scale_note(table, scale, dataset)
    )
    return TableResult(
        table=table.id,
        title=table.title,
        scale=scale,
        dataset=dataset,
        msd=msd,
        n_cells=len(cells),
        n_evaluated=sum(c.verdict != NOT_EVALUATED for c in cells),
        note=note,
        reported_scale=table.scale,
        reported_dataset=table.dataset,
        comparable=comparable,
    )
