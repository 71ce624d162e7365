"""What compare returns: the verdict vocabulary and the frozen, JSON-safe result dataclasses.

:class:`Comparison` holds a :class:`GroupSummary` per (experiment, variant), a :class:`CellResult`
per reported cell, a :class:`TableResult` per result table, a :class:`VariabilityTableResult` per
variability table, a :class:`LeakageResult` per reported train or test value, a
:class:`ColumnRatio` per compared pair of columns of a machine-dependent table and a
:class:`ClaimResult` per claim (whose ``evidence`` is whatever its claim kind's evaluator returned,
JSON-safe). ``to_dict()`` turns any of them into plain values (NaN and
±inf become None), as ``results.json`` stores them.

Imports numpy and stats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

import numpy as np

from ..stats.decisions import borderline

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not_reproduced"
INCONCLUSIVE = "inconclusive"
NOT_EVALUATED = "not_evaluated"
VERDICTS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_EVALUATED)
POWER = 0.8
MIN_SEEDS_TO_REJECT = 3
SMOKE_NOTE = "smoke checks the pipeline only"


def combine(verdicts: Sequence[str]) -> str:
    """Aggregates sub-verdicts: any not reproduced wins, all reproduced is reproduced, all not
    evaluated (or none) is not evaluated, anything else inconclusive."""
    if not verdicts or all(v == NOT_EVALUATED for v in verdicts):
        return NOT_EVALUATED
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


def directional_verdict(low: float, high: float, claimed_positive: bool) -> str:
    """reproduced if the interval excludes 0 on the claimed side, not reproduced if on the other."""
    if claimed_positive:
        return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else INCONCLUSIVE
    return REPRODUCED if high < 0 else NOT_REPRODUCED if low > 0 else INCONCLUSIVE


def directional_borderline(low: float, high: float, claimed_positive: bool, verdict: str) -> bool:
    """Whether a directional verdict (interval against 0) was decided by an edge close to 0:
    within 10 % of the interval's width.

    Deprecated: no verdict is marked borderline any more (the mark did not predict which verdicts
    flip on a rerun); a verdict's stability is estimated by resampling its seeds instead
    (:mod:`restudy.compare.stability`). Kept for one release for studies that call it."""
    if verdict not in (REPRODUCED, NOT_REPRODUCED):
        return False
    above = (verdict == REPRODUCED) == claimed_positive  # the interval lies above 0
    return bool(borderline(low, high, 0.0, decided_inside=not above))


def threshold_borderline(
    low: float, high: float, threshold: float, below: bool, verdict: str, by_width: bool = False
) -> bool:
    """Whether an interval judged against ``threshold`` was decided by an edge close to it;
    ``below`` when the verdict means "the interval lies below the threshold"; ``by_width``: close
    relative to the interval's width, not the threshold's size (a level, e.g. an accuracy bound).

    Deprecated, as :func:`directional_borderline`."""
    if verdict not in (REPRODUCED, NOT_REPRODUCED):
        return False
    return bool(borderline(low, high, threshold, decided_inside=below, by_width=by_width))


def clean(obj: Any) -> Any:
    """Returns ``obj`` as JSON-safe Python values; NaN and ±inf become None."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return clean(obj.to_dict())
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: clean(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class _ToDict:
    """Mixin: ``to_dict()`` of a frozen dataclass as JSON-safe values (NaN/inf → None)."""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-safe dict."""
        items = fields(self)  # type: ignore[arg-type]
        return {f.name: clean(getattr(self, f.name)) for f in items}


@dataclass(frozen=True)
class GroupSummary(_ToDict):
    """The runs of one (experiment, variant) and their metric summaries.

    Attributes:
        experiment: experiment id.
        variant: axis → level.
        variant_id: ``"axis=level,..."``.
        n_runs: runs of any status.
        n_finished: runs that finished.
        n_diverged: runs that diverged (their accuracies are included in ``metrics``).
        n_failed: runs that failed (excluded from ``metrics``).
        metrics: metric → :class:`restudy.stats.Summary` as a dict (95 % CI; accuracies floored by
            the binomial test-set SD).
    """

    experiment: str
    variant: dict[str, str]
    variant_id: str
    n_runs: int
    n_finished: int
    n_diverged: int
    n_failed: int
    metrics: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class CellResult(_ToDict):
    """One reported table cell against the runs of that cell.

    Attributes:
        table, row, column: the cell.
        reported: the reported value; reported_pm / reported_n its ± and run count if given.
        mean, sd, n, ci_low, ci_high: reproduced mean, sample SD, runs used and the CI.
        abs_error: mean − reported, signed, in metric units.
        rel_error: (mean − reported)/|reported|, a signed fraction.
        light: traffic light ``black`` (within 10 %), ``green`` (better), ``red`` (worse), ``gray``.
        verdict: one of :data:`VERDICTS`.
        note: why, in one sentence (scale and dataset when not comparable).
        seeds_needed: for an inconclusive cell, the seeds after which the equivalence CI would
            likely decide (either way, see ``decides_towards``).
        sd_floor: the binomial test-set SD used as the least SD (0 if none).
        scale, dataset: the scale and data set of the runs behind ``mean``.
        reported_text: the reported value as printed; reported_se: its standard error (from its
            ± and n, or estimated: binomial for accuracies) and how it was obtained.
        tolerance, tolerance_reason: δ of the equivalence decision (metric unit) and why.
        diff_low, diff_high: the (1 − 2α) CI of reproduced − reported.
        alpha: α of each one-sided test (after the claim's Bonferroni split).
        decides_towards: for an inconclusive cell, where the seeds needed would lead.
        stand_in: at another scale, the levels whose runs stand in for the cell's ("fc for
            resnet56"; '' when the cell's own levels ran).
        sq_dev: the runs' squared deviation from the reported value, averaged over the runs, in
            the unit of the table's ``squared_deviation`` criterion (NaN without one).
    """

    table: str
    row: str
    column: str
    reported: float
    reported_pm: float | None
    reported_n: int | None
    mean: float
    sd: float
    n: int
    ci_low: float
    ci_high: float
    abs_error: float
    rel_error: float
    light: str
    verdict: str
    note: str
    seeds_needed: int | None = None
    sd_floor: float = 0.0
    scale: str = ""
    dataset: str = ""
    reported_text: str = ""
    reported_se: float = math.nan
    reported_se_how: str = ""
    tolerance: float = math.nan
    tolerance_reason: str = ""
    diff_low: float = math.nan
    diff_high: float = math.nan
    alpha: float = 0.05
    decides_towards: str = ""
    stand_in: str = ""
    sq_dev: float = math.nan


@dataclass(frozen=True)
class TableResult(_ToDict):
    """A reported table as a whole.

    Attributes:
        table, title: the table.
        scale, dataset: scale and data set of the runs compared with it.
        msd: mean squared deviation of reproduced means from reported values (metric unit²), over
            cells with runs, at any scale (not comparable when ``comparable`` is False).
        n_cells: reported cells.
        n_evaluated: cells with a verdict other than ``not_evaluated``.
        note: comparability note.
        reported_scale, reported_dataset: where the reported numbers come from.
        comparable: whether the runs' scale is the table's.
        chance_red: how many of the evaluated cells chance alone would mark not reproduced at
            their α (Σ 2α over them: either side of the tolerance), with the sentence in ``note``.
    """

    table: str
    title: str
    scale: str
    dataset: str
    msd: float
    n_cells: int
    n_evaluated: int
    note: str
    reported_scale: str = "paper"
    reported_dataset: str = ""
    comparable: bool = True
    chance_red: float = 0.0


def chance_sentence(alphas: Sequence[float]) -> str:
    """How many red cells chance alone would give: each cell judged at its α can be marked not
    reproduced by chance at most at rate α per side."""
    if not alphas:
        return ""
    expected = sum(alphas)
    return (
        f"of its {len(alphas)} judged cells, chance alone would mark about {expected:.2g} not reproduced "
        f"(each at α = {min(alphas):.3g}{'' if min(alphas) == max(alphas) else f'–{max(alphas):.3g}'})"
    )


@dataclass(frozen=True)
class ClaimResult(_ToDict):
    """A claim's verdict with the numbers behind it.

    Attributes:
        id, statement, kind, metric: the claim.
        verdict: one of :data:`VERDICTS`.
        summary: one sentence with the numbers.
        evidence: what the kind's evaluator returned (JSON-safe): the test details and the
            numbers its figure and report section show.
        seeds_needed: for inconclusive claims, the seeds (or seed pairs) a test would need at the
            observed effect for 80 % power; for variability claims, the models per set at which
            the CIs would likely decide (an estimate from CI width ∝ 1/√M); None when no count
            would do or it is not estimated.
        scale_note: which scale and data set the verdict comes from, or why none was given.
        stability: the share of resamples of the seeds that give the same verdict, with the
            others' shares (:func:`restudy.compare.stability.stability`); None when not
            estimated (no verdict, one seed, or a claim on model sets).
        notes: what else the verdict depends on (calibrated settings, excluded runs, ...).
    """

    id: str
    statement: str
    kind: str
    metric: str
    verdict: str
    summary: str
    evidence: dict[str, Any]
    seeds_needed: int | None
    scale_note: str
    notes: list[str] = field(default_factory=list)
    stability: dict[str, Any] | None = None


@dataclass(frozen=True)
class VariabilityCell(_ToDict):
    """One reported cell of a variability table against the reproduced model set.

    Attributes:
        table, row, column: the cell (column: a metric or ``reduction_original`` /
            ``reduction_recalculated``).
        value: the reproduced value; ci_low, ci_high its bootstrap CI (over models) at
            ``confidence``; se the bootstrap SD of the estimate.
        n_models: models behind the value.
        reported, reported_pm: the reported value and its ± (None if not given).
        interval_low, interval_high: the CI widened by the reported ± and rounding (the verdict
            interval).
        rel_error: (value − reported)/|reported|.
        light: ``black`` (within 10 %), ``green`` (less variable than reported), ``red`` (more),
            ``gray``.
        verdict, note: the verdict (only at the table's scale) and why.
        tolerance, tolerance_reason, alpha: the equivalence decision's δ, its reason,
            α per side.
        reported_text: the reported value as printed.
    """

    table: str
    row: str
    column: str
    value: float
    ci_low: float
    ci_high: float
    se: float
    n_models: int
    reported: float
    reported_pm: float | None
    interval_low: float
    interval_high: float
    rel_error: float
    light: str
    verdict: str
    note: str
    confidence: float = 0.95
    tolerance: float = math.nan
    tolerance_reason: str = ""
    alpha: float = 0.05
    reported_text: str = ""
    seeds_needed: int | None = None


@dataclass(frozen=True)
class VariabilityRow(_ToDict):
    """One model set of a variability table, reproduced.

    Attributes:
        table, row: where it sits.
        label: the model set's name; experiment, view: what it selects.
        n_runs: usable runs selected; n_models: those whose predictions were stacked.
        missing: run keys without stored predictions for the view; nonfinite: run keys left out
            because their logits are not finite (e.g. diverged runs).
        why: why no metric could be computed ('' if they were).
        metrics: metric → {value, ci_low, ci_high, se} (95 % bootstrap CI over models), every metric
            of :data:`restudy.stats.variability.SUMMARY_METRICS` plus ``mean_accuracy``.
        reductions: ``original`` / ``recalculated`` → {value, ci_low, ci_high, se, label} against the
            layout's reference row (None for the reference itself or without one).
        diverged: run keys left out because they diverged.
    """

    table: str
    row: str
    label: str
    experiment: str
    view: str
    n_runs: int
    n_models: int
    missing: list[str]
    nonfinite: list[str]
    why: str
    metrics: dict[str, dict[str, float]]
    reductions: dict[str, dict[str, Any]] | None = None
    diverged: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VariabilityTableResult(_ToDict):
    """A reported variability table: rows reproduced, reported cells judged.

    Attributes:
        table, title: the table; columns its columns; reference its reduction reference row.
        scale, dataset: of the runs; reported_scale, reported_dataset: of the reported numbers.
        comparable: whether the runs' scale is the table's (only then do cells get verdicts).
        note: comparability note.
        rows: one :class:`VariabilityRow` per model set.
        cells: one :class:`VariabilityCell` per reported value.
        chance_red: expected not-reproduced cells from chance alone (see :class:`TableResult`).
    """

    table: str
    title: str
    columns: list[str]
    reference: str | None
    scale: str
    dataset: str
    reported_scale: str
    reported_dataset: str
    comparable: bool
    note: str
    rows: list[VariabilityRow]
    cells: list[VariabilityCell]
    chance_red: float = 0.0


@dataclass(frozen=True)
class LeakageResult(_ToDict):
    """One reported value of a train/test metric against both metrics of its cell's runs
    (:mod:`restudy.compare.leakage`).

    Attributes:
        table, row, column: the cell; reported, reported_text: its value and as printed.
        metric: the table's metric (e.g. ``test_acc``); other: its counterpart (``train_acc``).
        n: seeds with both metrics.
        own_mean, own_sd, other_mean, other_sd: the two metrics over those seeds.
        gap_low, gap_high: the (1 − 2α) CI of other − own (per seed).
        side, side_low, side_high: how far the reported value lies past the per-seed midpoint of
            the two metrics towards ``other`` (metric unit), with its (1 − 2α) CI.
        status: ``flagged`` (closer to ``other`` beyond noise), ``clear`` (closer to ``metric``
            beyond noise) or ``cannot_tell``.
        looks_like: the split ``other`` is measured on (``training-set``/``test-set``).
        note: why, in one sentence.
        alpha: level of each one-sided test.
        scale, comparable: the runs' scale and whether it is the table's.
    """

    table: str
    row: str
    column: str
    reported: float
    reported_text: str
    metric: str
    other: str
    n: int
    own_mean: float
    own_sd: float
    other_mean: float
    other_sd: float
    gap_low: float
    gap_high: float
    side: float
    side_low: float
    side_high: float
    status: str
    looks_like: str
    note: str
    alpha: float = 0.05
    scale: str = ""
    comparable: bool = True


@dataclass(frozen=True)
class ColumnRatio(_ToDict):
    """One row's column over its base column (the table's first).

    Attributes:
        table, row, column, base: the cells compared (``column`` / ``base``).
        measured: geometric mean over seeds of the per-seed ratio (NaN without a paired seed).
        ci_low, ci_high: its (1 − 2α) interval (NaN with fewer than 2 seeds).
        n: seeds with a run in both cells.
        reported: the reported values' ratio (NaN when either is missing or the scales differ).
    """

    table: str
    row: str
    column: str
    base: str
    measured: float
    ci_low: float
    ci_high: float
    n: int
    reported: float


@dataclass(frozen=True)
class Comparison(_ToDict):
    """Everything compare computed for one study at one scale."""

    study: str
    scale: str
    dataset: str
    groups: list[GroupSummary] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    tables: list[TableResult] = field(default_factory=list)
    claims: list[ClaimResult] = field(default_factory=list)
    variability: list[VariabilityTableResult] = field(default_factory=list)
    leakage: list[LeakageResult] = field(default_factory=list)
    ratios: list[ColumnRatio] = field(default_factory=list)

    def verdict_counts(self) -> dict[str, int]:
        """Returns the number of claims per verdict (every verdict present, possibly 0)."""
        counts = {v: 0 for v in VERDICTS}
        for c in self.claims:
            counts[c.verdict] = counts.get(c.verdict, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Returns the comparison as a JSON-safe dict, with ``verdict_counts``."""
        d = super().to_dict()
        d["verdict_counts"] = self.verdict_counts()
        return d
