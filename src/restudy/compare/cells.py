"""Numeric cells: each reported value of a result table against the runs of its cell, the table as
a whole (mean squared deviation), and the per-variant summaries every report shows.

Cell rule: an equivalence decision (or, for a claim with a ``relation``, a one-sided one: the
(1 − 2α) interval of the difference lies on the claimed side of a line: reported − δ for
``at_least``, beyond the printed value's rounding for ``above``/``below``). With d = reproduced
mean − reported value, its standard error se = √(sd_used²/n + se_reported²) (sd_used floored by the binomial test-set SD
√(p(1−p)/n_test) for accuracies in %) and the (1 − 2α) t-interval of d (n − 1 df):
``reproduced`` when the interval lies inside [−δ, δ] (two one-sided tests at α), ``not_reproduced``
when it lies entirely outside, ``inconclusive`` otherwise, with the seeds after which it would
likely decide either way. Fewer seeds widen the interval, so they never make "reproduced" easier.
δ is the claim's declared tolerance (relative to the reported value, with its reason) plus the
rounding of the printed value, or by default the rounding plus three binomial test-set SDs for
accuracies (two evaluations of one model on that test set differ by up to 2√2 ≈ 2.8 SDs: closer
agreement cannot be asked; the test set is the table's ``test_size`` or the runs' own) and 10 % of
the value otherwise (the reproduction reports' traffic-light threshold).
The reported value's own standard error comes from its ± (an SD of its n runs, or a standard
error) or, printed without ±, is estimated: binomial √(p(1−p)/n_test)/√n for accuracies, 0
otherwise (said in the note). α is the claim's, split over its cells (Bonferroni: any red cell
fails the claim); cells no claim names are judged at α = 0.05. At other scales than the table's
the numbers are computed for information only and the verdict is ``not_evaluated``; so are the
cells of a machine-dependent metric (wall time), whose tables compare column ratios instead
(:mod:`restudy.compare.ratios`).

Imports spec, stats, display and the sibling modules verdicts and select.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..display.numbers import fmt, pct
from ..display.tables import RAN_INSTEAD
from ..spec.claim_base import CellRef, Selector
from ..spec.reported import ReportedTable, ReportedValue, TableLayout
from ..spec.study import Study
from ..stats.agreement import mean_squared_deviation, relative_error, traffic_light
from ..stats.decisions import DIFFERENT, EQUIVALENT, equivalence, one_sided, seeds_to_cross, seeds_to_decide
from ..stats.summary import Summary, binomial_floor_sd_percent
from .quantifiers import cell_alphas
from .select import (
    ACCURACY_METRICS,
    MACHINE_DEPENDENT,
    Row,
    datasets,
    higher_is_better,
    n_test_of,
    select_runs,
    summarize_runs,
    usable,
)
from .verdicts import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    CellResult,
    GroupSummary,
    TableResult,
    chance_sentence,
)

GROUP_METRICS: tuple[str, ...] = ("test_acc", "train_acc", "test_loss", "train_loss", "wall_s")
TEST_SET_SDS = 3.0
"""The default tolerance of an accuracy cell, in binomial test-set SDs (plus the rounding)."""


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


NO_RUNS = "no finished or diverged runs for this cell"


RELATIONS = ("equivalent", "at_least", "above", "below")
RELATION_TEXT = {
    "equivalent": "within ± the tolerance of the reported value",
    "at_least": "at least the reported value less the tolerance",
    "above": "above the reported value (by more than its rounding, and the tolerance if one is declared)",
    "below": "below the reported value (by more than its rounding, and the tolerance if one is declared)",
}


@dataclass(frozen=True)
class CellRule:
    """How a cell is judged: α per one-sided test (the claim's, split over its cells), the
    claim's relative tolerance and its reason, the claim that set them, and the relation the
    reproduced value must have to the reported one (:data:`RELATIONS`)."""

    alpha: float = 0.05
    tolerance: float | None = None
    claim: str | None = None
    tolerance_reason: str = ""
    relation: str = "equivalent"

    @property
    def confidence(self) -> float:
        """Level of the two-sided interval the decision reads: 1 − 2α."""
        return 1.0 - 2.0 * self.alpha


def cell_rules(study: Study) -> dict[tuple[str, str, str], CellRule]:
    """The first claim naming a cell (in its ``cells`` or ``tables``) sets its tolerance,
    relation and α in the tables: α is the claim's α to refute a cell (its Bonferroni share over
    its cells, :func:`restudy.compare.quantifiers.cell_alphas`), so a table shows a cell red only
    where the claim's own test would count it against the claim."""
    rules: dict[tuple[str, str, str], CellRule] = {}
    for c in study.claims:
        refs = c.refs(study) if hasattr(c, "refs") else getattr(c, "cells", None) or ()
        refs = [r for r in refs if isinstance(r, CellRef)]
        if not refs:
            continue
        alpha = cell_alphas(getattr(c, "quantifier", "every"), len(refs), c.alpha)[1]
        for ref in refs:
            rules.setdefault(
                (ref.table, ref.row, ref.column),
                CellRule(
                    alpha,
                    getattr(c, "tolerance", None),
                    c.id,
                    getattr(c, "tolerance_reason", ""),
                    getattr(c, "relation", "equivalent"),
                ),
            )
    return rules


def cell_runs(table: ReportedTable, row: str, column: str, rows: Iterable[Row], scale: str | None = None) -> list[Row]:
    """Returns the rows (any status) behind one cell of a result table (none for variability
    tables, whose cells are computed from a whole model set's predictions); at a ``scale`` with
    stand-ins, the runs of the levels that stand in for the cell's (:class:`TableLayout`)."""
    layout = table.layout
    if not isinstance(layout, TableLayout):
        return []
    where = {**layout.where, **layout.level(scale, row, column)}
    return select_runs(rows, Selector(experiment=layout.experiment, where=where))


def scale_note(table: ReportedTable, scale: str, dataset: str) -> str:
    """Why a table's numbers and these runs are not comparable (scale and data of each)."""
    return (
        f"reported at {table.scale} scale on {table.dataset or 'the paper data'}; "
        f"{RAN_INSTEAD}{scale} scale on {dataset or 'unknown data'}"
    )


def reported_se(table: ReportedTable, reported: ReportedValue, n_test: int | None = None) -> tuple[float, str]:
    """The reported value's standard error and how it was obtained (``n_test``: the test-set
    size when the table states none, e.g. the runs' own at the table's scale)."""
    n = reported.n or 1
    n_test = table.test_size or n_test
    if reported.pm is not None:
        if reported.pm_is == "se":
            return reported.pm, f"its ± {reported.pm:g} as a standard error"
        return reported.pm / math.sqrt(n), f"its ± {reported.pm:g} as the SD of {n} run(s)"
    if str(table.metric) in ACCURACY_METRICS and n_test:
        sd = binomial_floor_sd_percent(min(100.0, max(0.0, reported.value)), n_test)
        return sd / math.sqrt(n), (
            f"no ± printed: binomial SD √(p(1−p)/{n_test}) = {sd:.3g} pp over {n} run(s) (estimate)"
        )
    return 0.0, "no ± printed and none can be estimated: taken as exact"


def cell_tolerance(
    table: ReportedTable, reported: ReportedValue, rule: CellRule, n_test: int | None = None
) -> tuple[float, str]:
    """δ of a cell's equivalence decision (metric unit) and its reason."""
    n_test = table.test_size or n_test
    slack = reported.rounding()
    rounding = f"rounding of the printed {reported.text or reported.value} (±{slack:g})"
    if rule.tolerance is not None:
        why = rule.tolerance_reason or f"declared by claim {rule.claim}"
        return rule.tolerance * abs(reported.value) + slack, (
            f"{rule.tolerance:.1%} of the reported value ({why}) + {rounding}"
        )
    if str(table.metric) in ACCURACY_METRICS and n_test:
        sd = binomial_floor_sd_percent(min(100.0, max(0.0, reported.value)), n_test)
        return TEST_SET_SDS * sd + slack, (
            f"default: {TEST_SET_SDS:g} binomial test-set SDs ({TEST_SET_SDS:g} × {sd:.3g} pp at n_test {n_test}: "
            f"two evaluations of one model on this test set differ by up to 2√2 ≈ 2.8 SDs, so closer "
            f"agreement cannot be asked) + {rounding}"
        )
    return 0.1 * abs(reported.value) + slack, (
        f"default: 10% of the reported value (the reproduction reports' traffic-light threshold) + {rounding}"
    )


@dataclass(frozen=True)
class CellDecision:
    """What the equivalence rule decided for one cell."""

    verdict: str
    note: str
    seeds: int | None = None
    towards: str = ""
    low: float = math.nan
    high: float = math.nan


def _line(reported: ReportedValue, tol: float, rule: CellRule) -> float:
    """Where a one-sided relation's line lies, as reproduced − reported: −δ for ``at_least``;
    + (rounding and the declared tolerance) for ``above``, − the same for ``below``."""
    if rule.relation == "at_least":
        return -tol
    margin = reported.rounding() + (rule.tolerance or 0.0) * abs(reported.value)
    return margin if rule.relation == "above" else -margin


def _one_sided_verdict(
    summary: Summary, reported: ReportedValue, se_rep: float, tol: float, rule: CellRule
) -> CellDecision:
    n, diff = summary.n, summary.mean - reported.value
    line = _line(reported, tol, rule)
    above = rule.relation != "below"
    seeds = seeds_to_cross(diff, summary.sd_used, se_rep, line, rule.alpha)
    towards = ("the claimed side" if (diff >= line) == above else "the other side") if seeds else ""
    need = f"about {seeds} seeds would likely decide ({towards})" if seeds else "no seed count would likely decide"
    if n < 2:
        return CellDecision(INCONCLUSIVE, f"one run cannot separate seed noise from a real gap; {need}", seeds, towards)
    se = math.sqrt(summary.sd_used**2 / n + se_rep**2)
    decision, low, high = one_sided(diff, se, n - 1, line, above, rule.alpha)
    side = "≥" if rule.relation == "at_least" else ">" if above else "<"
    ci = (
        f"{pct(rule.confidence)} CI of reproduced − reported [{fmt(low)}, {fmt(high)}] vs {side} {fmt(line, 3)} "
        f"({RELATION_TEXT[rule.relation]}; n={n})"
    )
    if decision == EQUIVALENT:
        return CellDecision(REPRODUCED, f"{ci}: on the claimed side", None, "", low, high)
    if decision == DIFFERENT:
        return CellDecision(NOT_REPRODUCED, f"{ci}: on the other side", None, "", low, high)
    return CellDecision(INCONCLUSIVE, f"{ci}: straddles the line; {need}", seeds, towards, low, high)


def _cell_verdict(summary: Summary, reported: ReportedValue, se_rep: float, tol: float, rule: CellRule) -> CellDecision:
    """The decision for a cell evaluated at its own scale: equivalence, or one side of a line."""
    n = summary.n
    if n == 0:
        return CellDecision(NOT_EVALUATED, NO_RUNS)
    if rule.relation != "equivalent":
        return _one_sided_verdict(summary, reported, se_rep, tol, rule)
    diff = summary.mean - reported.value
    seeds, towards = seeds_to_decide(diff, summary.sd_used, se_rep, tol, rule.alpha)
    need = f"about {seeds} seeds would likely decide ({towards})" if seeds else towards
    if n < 2:
        return CellDecision(
            INCONCLUSIVE, f"one run cannot separate seed noise from a real gap; {need}", seeds, towards if seeds else ""
        )
    se = math.sqrt(summary.sd_used**2 / n + se_rep**2)
    eq = equivalence(diff, se, n - 1, tol, rule.alpha)
    ci = (
        f"{pct(rule.confidence)} CI of reproduced − reported [{fmt(eq.ci_low)}, {fmt(eq.ci_high)}] "
        f"vs tolerance ±{fmt(tol, 3)} (n={n})"
    )
    if eq.decision == EQUIVALENT:
        return CellDecision(REPRODUCED, f"{ci}: inside", None, "", eq.ci_low, eq.ci_high)
    if eq.decision == DIFFERENT:
        return CellDecision(NOT_REPRODUCED, f"{ci}: outside", None, "", eq.ci_low, eq.ci_high)
    return CellDecision(
        INCONCLUSIVE,
        f"{ci}: overlaps the tolerance's edge; {need}",
        seeds,
        towards if seeds else "",
        eq.ci_low,
        eq.ci_high,
    )


def averaged_squared_deviation(mean: float, sd: float, n: int, reported: float, table: ReportedTable) -> float:
    """The table's squared-deviation criterion's quantity for one cell: the mean over the n runs of
    (unit · (x_i − reported))², from the runs' mean and sample SD (mean squared deviation = squared
    bias + population variance); NaN without a criterion or runs."""
    crit = table.squared_deviation
    if crit is None or n < 1 or not math.isfinite(mean):
        return math.nan
    var = (sd**2) * (n - 1) / n if n > 1 and math.isfinite(sd) else 0.0
    return crit.unit**2 * ((mean - reported) ** 2 + var)


MACHINE_NOTE = (
    "{metric} depends on the machine: values measured on other machines are not compared; the table's column ratios are"
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
        rule: α and tolerance (defaults: α 0.05, the default tolerance).

    Returns:
        A :class:`CellResult`; ``not_evaluated`` unless ``scale`` is the table's scale.
    """
    rule = rule or CellRule()
    ok = usable(runs)
    summary, floor = summarize_runs(ok, str(table.metric), rule.confidence, table.test_size)
    rel = relative_error(summary.mean, reported.value)
    light = traffic_light(summary.mean, reported.value, higher_is_better(str(table.metric)))
    data = datasets(ok, dataset)
    n_test = n_test_of(ok)
    se_rep, se_how = reported_se(table, reported, n_test)
    tol, tol_why = cell_tolerance(table, reported, rule, n_test)
    stand_in = table.layout.stand_in_text(scale, row, column) if isinstance(table.layout, TableLayout) else ""
    if scale != table.scale:
        dec = CellDecision(NOT_EVALUATED, scale_note(table, scale, data))
        # numbers from another scale or other data are shown side by side, not measured against each other
        rel, light = math.nan, "gray"
    elif str(table.metric) in MACHINE_DEPENDENT and summary.n > 0:
        dec = CellDecision(NOT_EVALUATED, MACHINE_NOTE.format(metric=table.metric))
        # a faster or slower machine is neither a better nor a worse reproduction
        rel, light = math.nan, "gray"
    else:
        dec = _cell_verdict(summary, reported, se_rep, tol, rule)
    return CellResult(
        sq_dev=averaged_squared_deviation(summary.mean, summary.sd, summary.n, reported.value, table)
        if scale == table.scale
        else math.nan,
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
        verdict=dec.verdict,
        note=dec.note,
        seeds_needed=dec.seeds,
        sd_floor=floor,
        scale=scale,
        dataset=data,
        reported_text=reported.text,
        reported_se=se_rep,
        reported_se_how=se_how,
        tolerance=tol,
        tolerance_reason=tol_why,
        diff_low=dec.low,
        diff_high=dec.high,
        alpha=rule.alpha,
        decides_towards=dec.towards,
        stand_in=stand_in,
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
                    table,
                    r,
                    c,
                    reported,
                    cell_runs(table, r, c, rows, scale),
                    scale,
                    dataset,
                    rules.get((table.id, r, c)),
                )
            )
    return cells


def table_result(table: ReportedTable, cells: list[CellResult], scale: str, dataset: str) -> TableResult:
    comparable = scale == table.scale
    have = [c for c in cells if c.n > 0 and comparable and str(table.metric) not in MACHINE_DEPENDENT]
    msd = mean_squared_deviation([c.mean for c in have], [c.reported for c in have]) if have else math.nan
    note = (
        "reproduced and reported numbers are comparable"
        if comparable
        else "values are not comparable: " + scale_note(table, scale, dataset)
    )
    alphas = [2.0 * c.alpha for c in cells if c.verdict != NOT_EVALUATED]
    if alphas:
        note += "; " + chance_sentence(alphas)
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
        chance_red=sum(alphas),
    )
