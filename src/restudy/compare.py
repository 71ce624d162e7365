"""Reproduced versus reported: table cells and claim verdicts, each with its evidence.

Input is the flat run rows of :func:`restudy.record.row`; output is a :class:`Comparison` of frozen
dataclasses that the report renders and ``results.json`` stores. Failed runs have no metrics: they
are counted but never enter a statistic. Diverged runs keep their measured accuracy (usually
chance: a method that diverges is worse) and enter accuracy statistics; their losses are NaN and
are dropped.

Verdict rules (α is the claim's ``alpha``; every verdict is one of :data:`VERDICTS`):

* **Numeric cell** (reported table value vs the runs of its cell, only at the table's ``scale``):
  the CI is the two-sided (1 − α) t-interval of the mean with SD ``max(sd, floor)``, where the
  floor is the binomial test-set SD √(p(1−p)/n_test) in percentage points for accuracies in %.
  ``reproduced`` if n ≥ 2 and the reported value lies in the CI (or |relative error| ≤ the claim's
  tolerance); ``not_reproduced`` if it lies outside and n ≥ 3; ``inconclusive`` otherwise (n = 1,
  or n = 2 outside the CI), with the seeds a two-sided one-sample t-test would need to detect the
  observed gap (at least 3). At other scales the numbers are computed for information only and the
  verdict is ``not_evaluated``.
* **a_beats_b**: runs of ``a`` and each ``b`` are paired by seed index and by the level of every
  axis that neither selector pins to a single level; d = a − b (b − a if lower is better) minus
  ``margin``. Each of the k comparisons gets α/k (Bonferroni) and a one-sided paired t-test; its CI
  is the two-sided (1 − 2α/k) interval, whose lower bound is the one-sided (1 − α/k) bound, so
  "p < α/k" and "CI low > 0" agree. ``reproduced`` if both hold; ``not_reproduced`` if the CI's
  upper bound is < 0 (the data exclude the claimed direction); else ``inconclusive`` with the seed
  pairs needed for 80 % power at the observed difference. Without pairs: Welch's test.
* **trend**: least-squares slope of the metric (or its paired difference to ``baseline``) on the
  numeric axis ``over``, one point per run (or pair); two-sided (1 − 2α) CI of the slope (a
  one-sided α test in the claimed direction). ``reproduced`` if the CI excludes 0 on the claimed
  side, ``not_reproduced`` if it excludes 0 on the other side, else ``inconclusive``.
* **threshold**: for ``diverged`` the rate k/n with its Clopper–Pearson (1 − 2α) interval, else
  the (1 − 2α) mean CI (n ≥ 2). ``>=``: reproduced if CI low ≥ value, not reproduced if CI high <
  value; ``<=`` mirrors it.
* **numeric claim**: its cells' verdicts: all reproduced → reproduced; any not reproduced → not
  reproduced; all not evaluated → not evaluated; else inconclusive.

* **variability** (:class:`restudy.study.VariabilityClaim`): each model set's runs (usable rows of
  its experiment and axis levels, in seed-index order) are stacked from their stored predictions
  (``predictions``, e.g. :func:`load_predictions`) and measured with
  :func:`restudy.metrics.variability`. V is the metric as an amount of variability (1 − ρ for the
  correlation). Uncertainty comes from a seeded percentile bootstrap over **models** (4,000
  resamples): sets of different runs are resampled independently; two views of the *same* runs
  (e.g. TTA vs plain logits) are resampled jointly, since they are paired model by model.

  - ``zero``: reproduced iff every group has ≥ 2 models and every requested metric shows exactly no
    variability (SDs = 0, disagreement = 0, correlation = 1, ensemble gain = 0); not reproduced
    otherwise, naming the metric and its value. No statistics: bit-identical runs give exact zeros.
  - ``comparable``: per group and metric, r = V_group/V_reference with its (1 − 2α/k) bootstrap CI
    (k groups, Bonferroni as for a_beats_b; metrics are not corrected: they measure one property
    and move together). Reproduced if every CI lies inside ``band`` (an equivalence test); not
    reproduced if any CI lies entirely outside it; else inconclusive, with an *estimate* of the
    models per set that would decide, from the CI width shrinking as 1/√M at the observed ratio.
  - ``lower``: the same ratios; a CI entirely below 1 is reproduced, entirely above 1 not
    reproduced, else inconclusive; the (group, metric) verdicts combine as numeric cells do. The
    evidence adds the variability reduction % both ways (:func:`restudy.metrics.reduction_percent`).
  - ``not_evaluated`` when a set has fewer than 2 models with predictions or none are stored.

* **Variability tables** (``VariabilityLayout``): every row's metrics (and reductions against the
  layout's reference row) are always computed with their 95 % bootstrap CIs — at any scale they
  are the main output of such a study. A reported cell is judged only at the table's scale:
  reproduced if the reported value lies in the CI widened by the reported ± (in quadrature, as a
  normal SE) and by half a unit of the reported value's last printed digit (exact 0 and
  correlation 1 are not rounded), or within a claim's tolerance; not reproduced outside it with
  ≥ 3 models; else inconclusive.

A claim is ``not_evaluated`` when the scale is not among its ``scales`` or no run is selected.

Imports study, stats and metrics (numpy; safetensors to read stored predictions); no torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import artifacts, metrics, stats
from .study import (BeatsClaim, ModelSet, NumericClaim, ReportedTable, ReportedValue, Selector,
                    Study, TableLayout, ThresholdClaim, TrendClaim, VariabilityClaim,
                    VariabilityLayout)

log = logging.getLogger(__name__)

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not_reproduced"
INCONCLUSIVE = "inconclusive"
NOT_EVALUATED = "not_evaluated"
VERDICTS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_EVALUATED)

ACCURACY_METRICS: tuple[str, ...] = ("test_acc", "train_acc")
GROUP_METRICS: tuple[str, ...] = ("test_acc", "train_acc", "test_loss", "train_loss", "wall_s")
LOWER_IS_BETTER: frozenset[str] = frozenset({"test_loss", "train_loss", "diverged", "wall_s"})
POWER = 0.8
MIN_SEEDS_TO_REJECT = 3

Row = dict[str, Any]
Predictions = Callable[[str, str], "tuple[np.ndarray, np.ndarray] | None"]
"""(run key, view) → (logits [examples, classes], labels [examples]), or None when not stored."""

VAR_RESAMPLES = 4000
VAR_CONFIDENCE = 0.95
MAX_MODELS = 100000


# --------------------------------------------------------------------------------------------
# JSON-safe dataclasses
# --------------------------------------------------------------------------------------------


def _clean(obj: Any) -> Any:
    """Returns ``obj`` as JSON-safe Python values; NaN and ±inf become None."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _clean(obj.to_dict())
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _clean(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class _ToDict:
    """Mixin: ``to_dict()`` of a frozen dataclass as JSON-safe values (NaN/inf → None)."""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-safe dict."""
        items = fields(self)  # type: ignore[arg-type]
        return {f.name: _clean(getattr(self, f.name)) for f in items}


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
        seeds_needed: for an inconclusive cell, seeds to detect the observed gap (80 % power).
        sd_floor: the binomial test-set SD used as the least SD (0 if none).
        scale, dataset: the scale and data set of the runs behind ``mean``.
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


@dataclass(frozen=True)
class ClaimResult(_ToDict):
    """A claim's verdict with the numbers behind it.

    Attributes:
        id, statement, kind, metric: the claim.
        verdict: one of :data:`VERDICTS`.
        summary: one sentence with the numbers.
        evidence: the test details (JSON-safe dict).
        seeds_needed: for inconclusive claims, the seeds (or seed pairs) a test would need at the
            observed effect for 80 % power; for variability claims, the models per set at which
            the CIs would likely decide (an estimate from CI width ∝ 1/√M); None when no count
            would do or it is not estimated.
        scale_note: which scale and data set the verdict comes from, or why none was given.
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
            of :data:`restudy.metrics.SUMMARY_METRICS` plus ``mean_accuracy``.
        reductions: ``original`` / ``recalculated`` → {value, ci_low, ci_high, se, label} against the
            layout's reference row (None for the reference itself or without one).
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


# --------------------------------------------------------------------------------------------
# runs and their metrics
# --------------------------------------------------------------------------------------------


def metric_value(row: Row, metric: str) -> float:
    """Returns one run's value of ``metric`` as a float (NaN when missing or not numeric).

    ``wall_s`` comes from the row's timing; ``diverged`` falls back to the run's status.
    """
    metrics = row.get("metrics") or {}
    if metric == "wall_s":
        value = row.get("wall_s", metrics.get("wall_s"))
    elif metric == "diverged" and metrics.get("diverged") is None:
        value = 1.0 if row.get("status") == "diverged" else 0.0
    else:
        value = metrics.get(metric)
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def variant_label(variant: dict[str, str]) -> str:
    """Returns ``"axis=level,..."`` (``"-"`` for no axes), as :func:`restudy.record.row` does."""
    return ",".join(f"{k}={v}" for k, v in variant.items()) or "-"


def usable(rows: Iterable[Row]) -> list[Row]:
    """Returns the runs that have metrics: finished and diverged ones (failed runs dropped)."""
    return [r for r in rows if r.get("status") != "failed"]


def select_runs(rows: Iterable[Row], selector: Selector) -> list[Row]:
    """Returns the rows (any status) of ``selector``'s experiment and axis levels."""
    return [r for r in rows if selector.matches(r["experiment"], r.get("variant") or {})]


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (accuracies) or worse (losses, time)."""
    return metric not in LOWER_IS_BETTER


def n_test_of(runs: Sequence[Row]) -> int | None:
    """Returns the test-set size of the runs (their median ``n_test``), or None if unknown."""
    sizes = [metric_value(r, "n_test") for r in runs]
    sizes = [s for s in sizes if math.isfinite(s) and s > 0]
    return int(np.median(sizes)) if sizes else None


def floor_sd(metric: str, mean: float, n_test: int | None) -> float:
    """Returns the binomial test-set SD floor (pp) for an accuracy in %, else 0.

    Args:
        metric: the metric name; only ``test_acc``/``train_acc`` get a floor.
        mean: the mean accuracy in % (clipped to [0, 100]).
        n_test: test examples per evaluation; None means no floor.
    """
    if metric not in ACCURACY_METRICS or not n_test or not math.isfinite(mean):
        return 0.0
    return stats.binomial_floor_sd_percent(min(100.0, max(0.0, mean)), int(n_test))


def summarize_runs(runs: Sequence[Row], metric: str, confidence: float = 0.95,
                   n_test: int | None = None) -> tuple[stats.Summary, float]:
    """Summarises ``metric`` over runs with the binomial floor for accuracies.

    Args:
        runs: usable runs.
        metric: metric name.
        confidence: two-sided CI level.
        n_test: test-set size when the runs do not record one.

    Returns:
        The :class:`restudy.stats.Summary` and the floor SD used (0 if none).
    """
    values = np.array([metric_value(r, metric) for r in runs], dtype=float)
    finite = values[~np.isnan(values)]
    mean = float(np.mean(finite)) if finite.size else math.nan
    floor = floor_sd(metric, mean, n_test_of(runs) or n_test)
    return stats.summarize(values, confidence=confidence, floor_sd=floor), floor


def _datasets(runs: Sequence[Row], default: str) -> str:
    labels = sorted({str(r["dataset"]) for r in runs if r.get("dataset")})
    return ", ".join(labels) if labels else default


def _unit(metric: str) -> str:
    return {"test_acc": " pp", "train_acc": " pp", "wall_s": " s"}.get(metric, "")


def _f(x: float | None, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "n/a" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.{digits}f}"


def pct(level: float) -> str:
    """A confidence level as a percentage: ``90%``, ``96.7%``."""
    text = f"{100 * level:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _combine(verdicts: Sequence[str]) -> str:
    """Aggregates sub-verdicts: any not reproduced wins, all reproduced is reproduced."""
    if not verdicts or all(v == NOT_EVALUATED for v in verdicts):
        return NOT_EVALUATED
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


# --------------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------------


def group_rows(rows: Iterable[Row]) -> dict[tuple[str, str], list[Row]]:
    """Returns rows grouped by (experiment, variant_id), in first-seen order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["experiment"], r["variant_id"]), []).append(r)
    return groups


def _group_summary(runs: list[Row]) -> GroupSummary:
    status = [r.get("status") for r in runs]
    ok = usable(runs)
    metrics = {m: summarize_runs(ok, m)[0].to_dict() for m in GROUP_METRICS}
    first = runs[0]
    return GroupSummary(
        experiment=first["experiment"], variant=dict(first.get("variant") or {}),
        variant_id=first["variant_id"], n_runs=len(runs), n_finished=status.count("finished"),
        n_diverged=status.count("diverged"), n_failed=status.count("failed"), metrics=metrics)


# --------------------------------------------------------------------------------------------
# table cells
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CellRule:
    """How a cell is judged: CI level, optional relative tolerance, the claim that set them."""

    confidence: float = 0.95
    tolerance: float | None = None
    claim: str | None = None


def _cell_rules(study: Study) -> dict[tuple[str, str, str], _CellRule]:
    """The first numeric claim naming a cell sets its tolerance and α in the tables."""
    rules: dict[tuple[str, str, str], _CellRule] = {}
    for c in study.claims:
        if isinstance(c, NumericClaim):
            for ref in c.cells:
                rules.setdefault((ref.table, ref.row, ref.column),
                                 _CellRule(1.0 - c.alpha, c.tolerance, c.id))
    return rules


def cell_runs(table: ReportedTable, row: str, column: str, rows: Iterable[Row]) -> list[Row]:
    """Returns the rows (any status) behind one cell of a result table (none for variability
    tables, whose cells are computed from a whole model set's predictions)."""
    layout = table.layout
    if not isinstance(layout, TableLayout):
        return []
    where = {**layout.where, layout.row_axis: row, layout.column_axis: column}
    return select_runs(rows, Selector(experiment=layout.experiment, where=where))


def _scale_note(table: ReportedTable, scale: str, dataset: str) -> str:
    return (f"reported at {table.scale} scale on {table.dataset or 'the paper data'}; "
            f"these runs are {scale} scale on {dataset or 'unknown data'}")


def _cell_seeds(summary: stats.Summary, reported: float, confidence: float) -> int | None:
    """Seeds a two-sided one-sample t-test needs to detect the observed gap (at least 3)."""
    gap = abs(summary.mean - reported)
    sd = summary.sd_used
    if not (math.isfinite(gap) and math.isfinite(sd)) or gap == 0.0:
        return None
    n = stats.seeds_needed(gap, sd, alpha=1.0 - confidence, power=POWER, paired=True,
                           alternative="two-sided")
    return None if n is None else max(MIN_SEEDS_TO_REJECT, n)


def _cell_verdict(summary: stats.Summary, reported: float, rel: float,
                  rule: _CellRule) -> tuple[str, str, int | None]:
    """Verdict, note and seeds needed for a cell evaluated at its own scale."""
    n, level = summary.n, pct(rule.confidence)
    if n == 0:
        return NOT_EVALUATED, "no finished or diverged runs for this cell", None
    ci = f"{level} CI [{_f(summary.ci_low)}, {_f(summary.ci_high)}]"
    in_ci = summary.ci_low <= reported <= summary.ci_high
    in_tol = rule.tolerance is not None and math.isfinite(rel) and abs(rel) <= rule.tolerance
    seeds = _cell_seeds(summary, reported, rule.confidence)
    if n < 2:
        return INCONCLUSIVE, (f"one run cannot separate seed noise from a real gap; "
                              f"{seeds or 'more'} seeds would be needed"), seeds
    if in_ci:
        return REPRODUCED, f"reported value lies in the {ci} (n={n})", None
    if in_tol:
        return REPRODUCED, (f"|rel. error| {abs(rel):.1%} is within the tolerance "
                            f"{rule.tolerance:.1%} (outside the {ci})"), None
    if n >= MIN_SEEDS_TO_REJECT:
        return NOT_REPRODUCED, f"reported value lies outside the {ci} (n={n})", None
    return INCONCLUSIVE, (f"reported value lies outside the {ci}, but n={n} is too few to reject; "
                          f"{seeds or 'more'} seeds would be needed"), seeds


def evaluate_cell(table: ReportedTable, row: str, column: str, reported: ReportedValue,
                  runs: Sequence[Row], scale: str, dataset: str,
                  rule: _CellRule | None = None) -> CellResult:
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
    rule = rule or _CellRule()
    ok = usable(runs)
    summary, floor = summarize_runs(ok, str(table.metric), rule.confidence, table.test_size)
    rel = stats.relative_error(summary.mean, reported.value)
    light = stats.traffic_light(summary.mean, reported.value, higher_is_better(str(table.metric)))
    data = _datasets(ok, dataset)
    if scale != table.scale:
        verdict, note, seeds = NOT_EVALUATED, _scale_note(table, scale, data), None
    else:
        verdict, note, seeds = _cell_verdict(summary, reported.value, rel, rule)
    if rule.claim and rule.tolerance is not None:
        note += f" (tolerance from claim {rule.claim})"
    return CellResult(
        table=table.id, row=row, column=column, reported=reported.value, reported_pm=reported.pm,
        reported_n=reported.n, mean=summary.mean, sd=summary.sd, n=summary.n,
        ci_low=summary.ci_low, ci_high=summary.ci_high, abs_error=summary.mean - reported.value,
        rel_error=rel, light=light, verdict=verdict, note=note, seeds_needed=seeds,
        sd_floor=floor, scale=scale, dataset=data)


def _table_cells(table: ReportedTable, rows: list[Row], scale: str, dataset: str,
                 rules: dict[tuple[str, str, str], _CellRule]) -> list[CellResult]:
    cells = []
    for r in table.rows:
        for c in table.columns:
            reported = table.value(r, c)
            if reported is None:
                continue
            cells.append(evaluate_cell(table, r, c, reported, cell_runs(table, r, c, rows), scale,
                                       dataset, rules.get((table.id, r, c))))
    return cells


def _table_result(table: ReportedTable, cells: list[CellResult], scale: str,
                  dataset: str) -> TableResult:
    have = [c for c in cells if c.n > 0]
    msd = stats.mean_squared_deviation([c.mean for c in have], [c.reported for c in have]) \
        if have else math.nan
    comparable = scale == table.scale
    note = ("reproduced and reported numbers are comparable" if comparable else
            "values are not comparable: " + _scale_note(table, scale, dataset))
    return TableResult(
        table=table.id, title=table.title, scale=scale, dataset=dataset, msd=msd,
        n_cells=len(cells), n_evaluated=sum(c.verdict != NOT_EVALUATED for c in cells), note=note,
        reported_scale=table.scale, reported_dataset=table.dataset, comparable=comparable)


# --------------------------------------------------------------------------------------------
# pairing
# --------------------------------------------------------------------------------------------


def pinned_axes(selector: Selector) -> set[str]:
    """Returns the axes a selector pins to a single level (a list of several levels is free)."""
    return {ax for ax, v in selector.where.items() if not isinstance(v, list) or len(v) == 1}


def _axes(runs: Sequence[Row]) -> set[str]:
    out: set[str] = set()
    for r in runs:
        out |= set(r.get("variant") or {})
    return out


def pair_runs(a_runs: Sequence[Row], b_runs: Sequence[Row], a_sel: Selector,
              b_sel: Selector) -> tuple[list[tuple[Row, Row]], dict[str, Any]]:
    """Pairs runs of two selectors by seed index and the axes both leave free.

    The free axes are those present in both sides' variants and pinned by neither selector. A
    key (seed index, free-axis levels) must be unique on each side; otherwise the pairing is
    ambiguous and no pairs are returned.

    Returns:
        The (a, b) pairs and info: ``by`` (the free axes), ``ambiguous``, ``unpaired_a``,
        ``unpaired_b``.
    """
    free = sorted((_axes(a_runs) & _axes(b_runs)) - pinned_axes(a_sel) - pinned_axes(b_sel))

    def key(r: Row) -> tuple[Any, ...]:
        return (r["seed_index"], *[(r.get("variant") or {}).get(ax) for ax in free])

    index_a = {key(r): r for r in a_runs}
    index_b = {key(r): r for r in b_runs}
    info: dict[str, Any] = {"by": ["seed_index", *free], "ambiguous": False}
    if len(index_a) < len(a_runs) or len(index_b) < len(b_runs):
        info.update(ambiguous=True, unpaired_a=len(a_runs), unpaired_b=len(b_runs))
        return [], info
    pairs = [(index_a[k], index_b[k]) for k in index_a if k in index_b]
    info.update(unpaired_a=len(a_runs) - len(pairs), unpaired_b=len(b_runs) - len(pairs),
                cells=len({k[1:] for k in index_a if k in index_b}))
    return pairs, info


# --------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """What every claim evaluation needs (``sets`` caches model sets' variability by key)."""

    study: Study
    scale: str
    dataset: str
    rows: list[Row]
    rules: dict[tuple[str, str, str], _CellRule]
    predictions: Predictions | None = None
    sets: dict[tuple[str, str, str], "_SetData"] = field(default_factory=dict)
    var_rows: dict[tuple[str, str], VariabilityRow] = field(default_factory=dict)


def _label(sel: Selector, other: Selector | None = None) -> str:
    """Short selector label: its levels when both sides share an experiment."""
    if sel.where and (other is None or other.experiment == sel.experiment):
        pinned = {k: (v[0] if isinstance(v, list) else v) for k, v in sel.where.items()
                  if not isinstance(v, list) or len(v) == 1}
        if len(pinned) == 1:
            return str(next(iter(pinned.values())))
        return ", ".join(f"{k}={v}" for k, v in pinned.items()) or sel.label()
    return sel.label()


def _result(claim: Any, verdict: str, summary: str, evidence: dict[str, Any], ctx: _Ctx,
            seeds: int | None = None, scale_note: str | None = None) -> ClaimResult:
    note = scale_note or f"from {ctx.scale}-scale runs on {ctx.dataset or 'unknown data'}"
    return ClaimResult(id=claim.id, statement=claim.statement, kind=claim.kind,
                       metric=claim.metric, verdict=verdict, summary=summary,
                       evidence=_clean(evidence), seeds_needed=seeds, scale_note=note)


def _directional_verdict(low: float, high: float, claimed_positive: bool) -> str:
    """reproduced if the interval excludes 0 on the claimed side, not if on the other."""
    if claimed_positive:
        return REPRODUCED if low > 0 else NOT_REPRODUCED if high < 0 else INCONCLUSIVE
    return REPRODUCED if high < 0 else NOT_REPRODUCED if low > 0 else INCONCLUSIVE


def _beats_test(claim: BeatsClaim, b: Selector, a_runs: list[Row], b_runs: list[Row],
                alpha: float) -> tuple[stats.PairedResult, dict[str, Any]]:
    """Runs the paired (or, without pairs, Welch) one-sided test of a beating b."""
    sign = 1.0 if claim.higher_is_better else -1.0
    conf = 1.0 - 2.0 * alpha
    pairs, info = pair_runs(a_runs, b_runs, claim.a, b)
    if pairs:
        a = [sign * metric_value(x, claim.metric) - claim.margin for x, _ in pairs]
        bb = [sign * metric_value(y, claim.metric) for _, y in pairs]
        return stats.paired_difference(a, bb, confidence=conf, alternative="greater"), info
    why = "pairing ambiguous (a key occurs twice on one side)" if info["ambiguous"] else \
        "no run pairs share seed index and free-axis levels"
    info["fallback"] = f"Welch's unpaired test: {why}"
    a = [sign * metric_value(x, claim.metric) - claim.margin for x in a_runs]
    bb = [sign * metric_value(y, claim.metric) for y in b_runs]
    return stats.welch_difference(a, bb, confidence=conf, alternative="greater"), info


def _beats_seeds(res: stats.PairedResult, alpha: float, cells: int = 1) -> tuple[int | None, str]:
    """Seeds per variant for 80 % power at the observed difference, with an explanation.

    The paired test pools ``cells`` pairs per seed index (one per level of the free axes), so the
    pairs it needs are divided by ``cells`` to give seeds per variant.
    """
    if not math.isfinite(res.mean_diff) or res.mean_diff <= 0:
        return None, "no seed count would: the observed difference has the wrong sign"
    if not math.isfinite(res.sd_diff):
        return None, "fewer than 2 runs per side: the spread is unknown"
    n = stats.seeds_needed(res.mean_diff, res.sd_diff, alpha=alpha, power=POWER,
                           paired=res.test == "paired-t", alternative="greater")
    if n and res.test == "paired-t":
        pairs, n = n, max(2, math.ceil(n / max(1, cells)))
        return n, (f"about {n} seeds per variant ({pairs} pairs) for 80% power at the observed difference")
    return n, (f"about {n} seeds per side for 80% power at the observed difference" if n else
               "more than 10000 seeds would be needed at the observed difference")


def _beats_sentence(a: str, b: str, res: stats.PairedResult, claim: BeatsClaim,
                    conf: float) -> str:
    unit = _unit(claim.metric)
    raw = res.mean_diff + claim.margin
    lo, hi = res.ci_low + claim.margin, res.ci_high + claim.margin
    head = f"{a} beats {b} by {raw:+.2f}{unit}" if raw > 0 else \
        f"{a} does not beat {b} (difference {_f(raw)}{unit})"
    if res.test == "paired-t":
        test = f"paired t {_p(res.p_value)}, n={res.n} pairs"
    else:
        test = f"Welch t {_p(res.p_value)}, n={res.n_a} vs {res.n_b} runs, unpaired"
    margin = f", margin {claim.margin:g}{unit}" if claim.margin else ""
    return f"{head} ({pct(conf)} CI [{_f(lo)}, {_f(hi)}], {test}{margin})"


def _beats_one(claim: BeatsClaim, b: Selector, a_runs: list[Row], b_runs: list[Row],
               alpha: float) -> dict[str, Any]:
    """One a-versus-b comparison as an evidence dict with its own verdict."""
    a_lbl, b_lbl = _label(claim.a, b), _label(b, claim.a)
    base = {"a": claim.a.label(), "b": b.label(), "alpha": alpha, "margin": claim.margin}
    if not a_runs or not b_runs:
        return {**base, "verdict": NOT_EVALUATED, "seeds_needed": None,
                "sentence": f"{a_lbl} vs {b_lbl}: no runs ({len(a_runs)} vs {len(b_runs)})"}
    res, info = _beats_test(claim, b, a_runs, b_runs, alpha)
    conf = 1.0 - 2.0 * alpha
    shown = math.isfinite(res.p_value) and res.p_value < alpha and res.ci_low > 0
    verdict = REPRODUCED if shown else NOT_REPRODUCED if res.ci_high < 0 else INCONCLUSIVE
    seeds, seeds_note = _beats_seeds(res, alpha, info.get("cells", 1)) if verdict == INCONCLUSIVE else (None, "")
    raw = {k: getattr(res, k) + claim.margin for k in ("mean_diff", "ci_low", "ci_high")}
    return {**base, **info, **res.to_dict(), **raw, "confidence": conf, "verdict": verdict,
            "seeds_needed": seeds, "seeds_note": seeds_note,
            "sentence": _beats_sentence(a_lbl, b_lbl, res, claim, conf)}


def _max_seeds(items: Iterable[dict[str, Any]]) -> int | None:
    needed = [e["seeds_needed"] for e in items if e.get("seeds_needed")]
    return max(needed) if needed else None


def _claim_beats(claim: BeatsClaim, ctx: _Ctx) -> ClaimResult:
    alpha = claim.alpha / len(claim.b)
    a_runs = usable(select_runs(ctx.rows, claim.a))
    comps = [_beats_one(claim, b, a_runs, usable(select_runs(ctx.rows, b)), alpha)
             for b in claim.b]
    verdict = _combine([c["verdict"] for c in comps])
    notes = [(f"vs {c['b']}: " if len(comps) > 1 else "") + c["seeds_note"]
             for c in comps if c.get("seeds_note")]
    summary = "; ".join(c["sentence"] for c in comps)
    if verdict == INCONCLUSIVE and notes:
        summary += f". To decide: {'; '.join(dict.fromkeys(notes))}"
    evidence = {"comparisons": comps, "alpha_per_comparison": alpha,
                "correction": f"Bonferroni over {len(claim.b)}",
                "higher_is_better": claim.higher_is_better}
    return _result(claim, verdict, summary, evidence, ctx, _max_seeds(comps))


def trend_points(claim: TrendClaim, rows: Sequence[Row]
                 ) -> tuple[list[tuple[Any, float]], dict[str, Any]]:
    """Returns (level of ``over``, value) per run, or per pair when the claim has a baseline.

    Args:
        claim: the trend claim.
        rows: run rows (failed ones are dropped here).

    Returns:
        The points (levels as in the variants, strings) and pairing info for the evidence.
    """
    runs = usable(select_runs(rows, claim.select))
    if claim.baseline is None:
        pts = [(r["variant"].get(claim.over), metric_value(r, claim.metric)) for r in runs]
        return pts, {"values": "per run"}
    base = usable(select_runs(rows, claim.baseline))
    pairs, info = pair_runs(runs, base, claim.select, claim.baseline)
    pts = [(a["variant"].get(claim.over),
            metric_value(a, claim.metric) - metric_value(b, claim.metric)) for a, b in pairs]
    return pts, {"values": f"paired difference to {claim.baseline.label()}", **info}


def _level_means(xs: list[float], ys: list[float]) -> list[dict[str, Any]]:
    out = []
    for x in sorted(set(xs)):
        v = np.array([y for xx, y in zip(xs, ys) if xx == x], dtype=float)
        v = v[~np.isnan(v)]
        out.append({"x": x, "mean": float(np.mean(v)) if v.size else math.nan, "n": int(v.size)})
    return out


def _trend_sentence(claim: TrendClaim, res: stats.SlopeResult, conf: float,
                    n_levels: int) -> str:
    what = "difference" if claim.baseline else claim.metric
    if not math.isfinite(res.slope):
        return (f"slope of the {what} over {claim.over} is undefined: n={res.n} points on "
                f"{n_levels} level(s) of {claim.over}")
    return (f"slope of the {what} over {claim.over}: {res.slope:+.3f}{_unit(claim.metric)} per "
            f"unit ({pct(conf)} CI [{_f(res.ci_low, 3)}, {_f(res.ci_high, 3)}], "
            f"two-sided {_p(res.p_value)}, n={res.n}); claimed {claim.direction}")


def _claim_trend(claim: TrendClaim, ctx: _Ctx) -> ClaimResult:
    pts, info = trend_points(claim, ctx.rows)
    if not pts:
        return _result(claim, NOT_EVALUATED, "no runs (or no pairs) selected", info, ctx)
    try:
        xs = [float(x) for x, _ in pts]
    except (TypeError, ValueError):
        log.warning("claim %s: levels of axis %r are not numeric", claim.id, claim.over)
        return _result(claim, NOT_EVALUATED, f"levels of axis '{claim.over}' are not numeric",
                       info, ctx)
    ys = [y for _, y in pts]
    conf = 1.0 - 2.0 * claim.alpha
    res = stats.slope_test(xs, ys, confidence=conf)
    up = claim.direction == "increasing"
    verdict = INCONCLUSIVE if not math.isfinite(res.slope) else \
        _directional_verdict(res.ci_low, res.ci_high, up)
    summary = _trend_sentence(claim, res, conf, len(set(xs)))
    evidence = {**info, **res.to_dict(), "confidence": conf, "direction": claim.direction,
                "levels": _level_means(xs, ys),
                "seeds_note": "seeds needed are not estimated for trends"}
    return _result(claim, verdict, summary, evidence, ctx)


def _rate_threshold(claim: ThresholdClaim, runs: list[Row], conf: float) -> tuple[str, str, dict]:
    k = int(sum(metric_value(r, "diverged") >= 0.5 for r in runs))
    n = len(runs)
    value, note = claim.value, ""
    if value > 1.0:
        value, note = value / 100.0, "value > 1 was read as a percentage"
    low, high = stats.rate_ci(k, n, conf)
    verdict = _threshold_verdict(claim.op, low, high, value)
    summary = (f"{k}/{n} runs diverged (rate {k / n:.0%}, {pct(conf)} Clopper-Pearson CI "
               f"[{low:.0%}, {high:.0%}]); claimed {claim.op} {value:.0%}")
    return verdict, summary, {"k": k, "n": n, "rate": k / n, "ci_low": low, "ci_high": high,
                              "confidence": conf, "value": value, "op": claim.op, "note": note}


def _threshold_verdict(op: str, low: float, high: float, value: float) -> str:
    if op == ">=":
        return REPRODUCED if low >= value else NOT_REPRODUCED if high < value else INCONCLUSIVE
    return REPRODUCED if high <= value else NOT_REPRODUCED if low > value else INCONCLUSIVE


def _mean_threshold(claim: ThresholdClaim, runs: list[Row], conf: float
                    ) -> tuple[str, str, dict, int | None]:
    s, floor = summarize_runs(runs, claim.metric, conf)
    unit = _unit(claim.metric)
    evidence = {**s.to_dict(), "sd_floor": floor, "confidence": conf, "value": claim.value,
                "op": claim.op}
    summary = (f"mean {claim.metric} {_f(s.mean)}{unit} ({pct(conf)} CI [{_f(s.ci_low)}, "
               f"{_f(s.ci_high)}], n={s.n}); claimed {claim.op} {claim.value:g}{unit}")
    if s.n < 2:
        return INCONCLUSIVE, summary + "; one run has no seed-to-seed spread", evidence, None
    verdict = _threshold_verdict(claim.op, s.ci_low, s.ci_high, claim.value)
    seeds = None
    if verdict == INCONCLUSIVE:
        effect = s.mean - claim.value if claim.op == ">=" else claim.value - s.mean
        if effect > 0 and math.isfinite(s.sd_used):
            seeds = stats.seeds_needed(effect, s.sd_used, alpha=claim.alpha, power=POWER)
    return verdict, summary, evidence, seeds


def _claim_threshold(claim: ThresholdClaim, ctx: _Ctx) -> ClaimResult:
    all_runs = select_runs(ctx.rows, claim.select)
    runs = usable(all_runs)
    if not runs:
        why = f"all {len(all_runs)} selected runs failed" if all_runs else "no runs selected"
        return _result(claim, NOT_EVALUATED, why, {"n_failed": len(all_runs)}, ctx)
    conf = 1.0 - 2.0 * claim.alpha
    seeds = None
    if claim.metric == "diverged":
        verdict, summary, evidence = _rate_threshold(claim, runs, conf)
    else:
        verdict, summary, evidence, seeds = _mean_threshold(claim, runs, conf)
    evidence["n_failed"] = len(all_runs) - len(runs)
    return _result(claim, verdict, summary, evidence, ctx, seeds)


def _claim_numeric(claim: NumericClaim, ctx: _Ctx) -> ClaimResult:
    rule = _CellRule(1.0 - claim.alpha, claim.tolerance, claim.id)
    cells = []
    for ref in claim.cells:
        table = ctx.study.table(ref.table)
        reported = table.value(ref.row, ref.column)
        if reported is None:
            continue
        if isinstance(table.layout, VariabilityLayout):
            cells.append(_variability_cell_result(table, ref.row, ref.column, reported, ctx, rule))
            continue
        runs = cell_runs(table, ref.row, ref.column, ctx.rows)
        cells.append(evaluate_cell(table, ref.row, ref.column, reported, runs, ctx.scale,
                                   ctx.dataset, rule))
    verdict = _combine([c.verdict for c in cells])
    counts = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    rels = [abs(c.rel_error) for c in cells if math.isfinite(c.rel_error)]
    parts = [f"{k} {v.replace('_', ' ')}" for v, k in counts.items() if k]
    summary = f"{len(cells)} cells: " + ", ".join(parts)
    if rels:
        summary += f"; max |rel. error| {max(rels):.1%}"
    evidence = {"cells": [c.to_dict() for c in cells], "counts": counts,
                "confidence": rule.confidence, "tolerance": claim.tolerance}
    note = None
    if cells and all(c.verdict == NOT_EVALUATED and c.n > 0 for c in cells):
        note = cells[0].note
        summary = f"not evaluated: {note}. " + summary
    return _result(claim, verdict, summary, evidence, ctx,
                   _max_seeds([c.to_dict() for c in cells]), note)


# --------------------------------------------------------------------------------------------
# stored predictions and model sets
# --------------------------------------------------------------------------------------------


def _read_view(path: Path, view: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Reads one view's logits and the labels from a run's safetensors file (None if absent)."""
    from safetensors import safe_open

    name = artifacts.view_tensor(view)
    with safe_open(str(path), framework="numpy") as f:
        names = set(f.keys())
        if name not in names:
            name = name.replace("+", "_")  # a strategy spelled 'flip+crop81' in the view
        if name not in names or "labels" not in names:
            return None
        return f.get_tensor(name), f.get_tensor("labels")


def load_predictions(out_dir: str | Path) -> Predictions:
    """The default predictions loader: reads ``<out_dir>/runs/<key>/test_logits.safetensors``.

    Only the requested tensor and ``labels`` are read (lazily, as numpy arrays, so compare never
    needs torch). A missing or unreadable file, or a view the run did not store, gives None.

    Args:
        out_dir: the study's output directory (the run store's root).

    Returns:
        A callable (run key, view) → (logits [examples, classes], labels) or None.
    """
    root = artifacts.runs_dir(out_dir)

    def load(key: str, view: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = root / key / artifacts.LOGITS_FILE
        if not path.is_file():
            return None
        try:
            return _read_view(path, view)
        except Exception as e:  # a corrupt file counts as missing; the report says so
            log.warning("cannot read %s (%s): %s", path, view, e)
            return None

    return load


@dataclass
class _SetData:
    """A model set's stacked predictions, measured (``why`` says why not, when not)."""

    name: str
    n_runs: int
    keys: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    why: str = ""
    pairwise: metrics.Pairwise | None = None
    values: dict[str, float] = field(default_factory=dict)
    mean_accuracy: float = math.nan
    seed: int = 0
    _draws: dict[str, np.ndarray] | None = None

    @property
    def n_models(self) -> int:
        """Models whose predictions were stacked."""
        return len(self.keys) if self.pairwise is not None else 0

    def weights(self) -> np.ndarray:
        """The set's own seeded model resamples ([VAR_RESAMPLES, M] counts)."""
        rng = np.random.default_rng(self.seed)
        return metrics.resample_weights(self.n_models, VAR_RESAMPLES, rng)

    def draws(self) -> dict[str, np.ndarray]:
        """Every metric on the set's own resamples (computed once; empty below 2 models)."""
        if self._draws is None:
            self._draws = metrics.bootstrap_draws(self.pairwise, self.weights()) \
                if self.pairwise is not None and self.n_models >= 2 else {}
        return self._draws


def _set_key(ms: ModelSet) -> tuple[str, ...]:
    return ms.experiment, json.dumps(ms.where, sort_keys=True, default=str), ms.view, str(ms.first or "")


def _stable_seed(key: tuple[str, ...]) -> int:
    """A resampling seed that depends only on the model set (reports are reproducible)."""
    return int.from_bytes(hashlib.sha256("|".join(key).encode()).digest()[:8], "little")


def _stack(loaded: list[tuple[str, tuple[np.ndarray, np.ndarray]]]
           ) -> tuple[np.ndarray | None, np.ndarray | None, list[str], str]:
    """Stacks loaded predictions: (logits, labels, keys left out as non-finite, problem)."""
    first_logits, labels = loaded[0][1]
    keep, nonfinite = [], []
    for key, (logits, lab) in loaded:
        if logits.ndim != 2:
            return None, None, [], (f"run {key}: logits shaped {tuple(logits.shape)}, not "
                                    "(examples, classes)")
        if logits.shape != first_logits.shape or not np.array_equal(lab, labels):
            return None, None, [], (f"run {key} was evaluated on other test examples than run "
                                    f"{loaded[0][0]} (shape {tuple(logits.shape)})")
        (keep if np.all(np.isfinite(logits)) else nonfinite).append((key, logits))
    if not keep:
        return None, None, [k for k, _ in nonfinite], "every run's logits are non-finite"
    return (np.stack([lg for _, lg in keep]).astype(np.float32), np.asarray(labels),
            [k for k, _ in nonfinite], "")


def _measure(data: _SetData, loaded: list[tuple[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    """Fills ``data`` from the loaded predictions of its runs."""
    logits, labels, data.nonfinite, problem = _stack(loaded)
    if logits is None:
        data.why = problem
        return
    data.keys = [k for k, _ in loaded if k not in data.nonfinite]
    data.pairwise = metrics.pairwise_stats(logits, labels)
    data.values = metrics.summarize(data.pairwise)
    data.mean_accuracy = float(np.mean(data.pairwise.accuracy))


def model_set_runs(rows: Iterable[Row], ms: ModelSet) -> list[Row]:
    """The usable runs of a model set, in seed-index (then variant) order; only the first
    ``ms.first`` of them when the set asks for a subset (the number-of-models ablation)."""
    runs = sorted(usable(select_runs(rows, ms.selector())), key=lambda r: (r["seed_index"], r["variant_id"]))
    return runs[:ms.first] if ms.first else runs


def _model_set(ctx: _Ctx, ms: ModelSet) -> _SetData:
    """Loads and measures a model set once per compare (cached in ``ctx.sets``)."""
    key = _set_key(ms)
    if key in ctx.sets:
        return ctx.sets[key]
    runs = model_set_runs(ctx.rows, ms)
    data = _SetData(name=ms.name(), n_runs=len(runs), seed=_stable_seed(key))
    ctx.sets[key] = data
    if ctx.predictions is None:
        data.why = "no stored predictions were available to compare (no loader given)"
        return data
    loaded = [(r["key"], ctx.predictions(r["key"], ms.view)) for r in runs]
    data.missing = [k for k, p in loaded if p is None]
    present = [(k, p) for k, p in loaded if p is not None]
    if present:
        _measure(data, present)
        if ms.view == "test" and data.keys:
            _measure_cka(ctx, data)
    if not data.why and data.n_models < 2:
        data.why = (f"{data.n_models} of {len(runs)} usable runs have finite stored predictions "
                    f"for view '{ms.view}' ({len(data.missing)} missing, {len(data.nonfinite)} "
                    "non-finite): at least 2 models are needed")
    return data


def _measure_cka(ctx: _Ctx, data: _SetData) -> None:
    """Mean pairwise linear CKA of the models' stored penultimate features (``cka_examples``
    setting), when every model stored them. CKA's variant and layer are assumptions
    (originals.md §4.4 item 6): the value is labelled so wherever it is shown."""
    feats = [ctx.predictions(k, "features") for k in data.keys]
    if len(feats) < 2 or any(f is None for f in feats):
        return
    shapes = {f[0].shape for f in feats}
    if len(shapes) == 1:
        data.values["cka"] = metrics.mean_pairwise_cka(np.stack([f[0] for f in feats]))


def _paired(a: _SetData, b: _SetData) -> bool:
    """Whether two sets are views of the same runs (resampled jointly, model by model)."""
    return a.keys == b.keys and a.pairwise is not None and b.pairwise is not None


def _joint_draws(a: _SetData, b: _SetData) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Bootstrap draws of two sets: on shared resamples when paired, else each its own."""
    if _paired(a, b):
        w = b.weights()
        return metrics.bootstrap_draws(a.pairwise, w), b.draws()  # type: ignore[arg-type]
    return a.draws(), b.draws()


# --------------------------------------------------------------------------------------------
# variability claims
# --------------------------------------------------------------------------------------------


def _no_variability(metric: str, value: float) -> bool:
    return value == (1.0 if metric.startswith("correlation") else 0.0)


def _zero_group(claim: VariabilityClaim, data: _SetData) -> dict[str, Any]:
    """One group of a ``zero`` claim: exact values, no statistics."""
    base = {"group": data.name, "n_models": data.n_models, "missing": len(data.missing)}
    if data.why:
        return {**base, "verdict": NOT_EVALUATED, "sentence": f"{data.name}: {data.why}"}
    values = {m: data.values[m] for m in claim.metrics}
    off = [f"{m} = {_f(v, 4)}" for m, v in values.items() if not _no_variability(m, v)]
    verdict = NOT_REPRODUCED if off else REPRODUCED
    sentence = (f"{data.name}: {data.n_models} models; " +
                (f"variability found: {', '.join(off)}" if off else
                 "every metric shows exactly no variability (bit-identical predictions)"))
    return {**base, "values": values, "verdict": verdict, "sentence": sentence}


def _band_verdict(low: float, high: float, band: tuple[float, float]) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if band[0] <= low and high <= band[1]:
        return REPRODUCED
    if high < band[0] or low > band[1]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _models_needed(ratio: float, low: float, high: float, targets: Sequence[float],
                   n: int) -> int | None:
    """Models per set for the CI to clear the nearest decisive edge, assuming its width shrinks
    as 1/√M around the observed ratio (an estimate, not a power analysis)."""
    if not all(math.isfinite(x) for x in (ratio, low, high)):
        return None
    shrink = []
    for t in targets:
        if low < t <= ratio and ratio > low:
            shrink.append((ratio - t) / (ratio - low))
        elif ratio <= t < high and high > ratio:
            shrink.append((t - ratio) / (high - ratio))
    factor = min(shrink) if shrink else 0.0
    if factor <= 0.0:
        return None
    needed = math.ceil(n / factor ** 2)
    return needed if needed <= MAX_MODELS else None


def _ratio_one(claim: VariabilityClaim, metric: str, g: _SetData, ref: _SetData,
               draws: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
               confidence: float) -> dict[str, Any]:
    """r = V_group/V_reference for one metric with its bootstrap CI and verdict."""
    vg = metrics.variability_value(metric, g.values[metric])
    vr = metrics.variability_value(metric, ref.values[metric])
    base = {"group": g.name, "metric": metric, "value_group": g.values[metric],
            "value_reference": ref.values[metric], "v_group": vg, "v_reference": vr}
    if not vr > 0:
        return {**base, "ratio": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "verdict": NOT_EVALUATED, "models_needed": None,
                "sentence": f"{metric}: the reference shows no variability (V = {_f(vr, 4)}): "
                            "the ratio is undefined"}
    with np.errstate(invalid="ignore", divide="ignore"):
        r_draws = (metrics.variability_value(metric, draws[0][metric]) /
                   metrics.variability_value(metric, draws[1][metric]))
    ratio = vg / vr
    low, high = metrics.percentile_ci(r_draws, confidence)
    if claim.relation == "lower":
        verdict = _directional_verdict(low - 1.0, high - 1.0, claimed_positive=False)
        targets: Sequence[float] = (1.0,) if ratio < 1.0 else ()
    else:
        verdict = _band_verdict(low, high, claim.band)
        targets = claim.band
    needed = _models_needed(ratio, low, high, targets, max(g.n_models, ref.n_models)) \
        if verdict == INCONCLUSIVE else None
    sentence = (f"{metric}: r = {_f(ratio)} ({pct(confidence)} CI [{_f(low)}, {_f(high)}]; "
                f"V {_f(vg, 4)} vs {_f(vr, 4)})")
    return {**base, "ratio": ratio, "ci_low": low, "ci_high": high, "verdict": verdict,
            "models_needed": needed, "sentence": sentence}


def _reduction_evidence(g: _SetData, ref: _SetData) -> dict[str, Any]:
    """Variability reduction % of a group against the reference, both formulas, labelled."""
    red = metrics.reduction_percent(g.values, ref.values)
    return {"original": red["original"], "recalculated": red["recalculated"],
            "per_metric": red["per_metric"],
            "labels": {"original": "original paper's formula", "recalculated":
                       "reproduction's recalculation"},
            "definitions": red["labels"]}


def _group_sentence(claim: VariabilityClaim, g: _SetData, comps: list[dict[str, Any]],
                    reduction: dict[str, Any] | None) -> str:
    ok = sum(c["verdict"] == REPRODUCED for c in comps)
    ratios = [c["ratio"] for c in comps if math.isfinite(c["ratio"])]
    span = f" (r {_f(min(ratios))}–{_f(max(ratios))})" if ratios else ""
    if claim.relation == "lower":
        head = f"{g.name}: CI of r below 1 in {ok}/{len(comps)} metrics{span}"
    else:
        head = (f"{g.name}: CI of r inside [{claim.band[0]:g}, {claim.band[1]:g}] in "
                f"{ok}/{len(comps)} metrics{span}")
    bad = [c["sentence"] for c in comps if c["verdict"] == NOT_REPRODUCED]
    if bad:
        head += "; against: " + "; ".join(bad)
    open_ = [c["metric"] for c in comps if c["verdict"] in (INCONCLUSIVE, NOT_EVALUATED)]
    if open_:
        head += f"; undecided: {', '.join(open_)}"
    if reduction is not None:
        head += (f"; reduction {_f(reduction['original'], 1)}% (original paper's formula) / "
                 f"{_f(reduction['recalculated'], 1)}% (reproduction's recalculation)")
    return head


def _ratio_group(claim: VariabilityClaim, g: _SetData, ref: _SetData,
                 confidence: float) -> dict[str, Any]:
    """One group of a ``comparable`` or ``lower`` claim against the reference."""
    base = {"group": g.name, "n_models": g.n_models, "missing": len(g.missing),
            "paired_with_reference": _paired(g, ref)}
    if g.why or ref.why:
        why = f"{g.name}: {g.why}" if g.why else f"reference {ref.name}: {ref.why}"
        return {**base, "verdict": NOT_EVALUATED, "comparisons": [], "sentence": why}
    draws = _joint_draws(g, ref)
    comps = [_ratio_one(claim, m, g, ref, draws, confidence) for m in claim.metrics]
    reduction = _reduction_evidence(g, ref) if claim.relation == "lower" else None
    verdict = _combine([c["verdict"] for c in comps])
    needed = [c["models_needed"] for c in comps if c.get("models_needed")]
    return {**base, "verdict": verdict, "comparisons": comps, "reduction": reduction,
            "models_needed": max(needed) if needed and verdict == INCONCLUSIVE else None,
            "sentence": _group_sentence(claim, g, comps, reduction)}


def _set_evidence(data: _SetData) -> dict[str, Any]:
    return {"name": data.name, "n_runs": data.n_runs, "n_models": data.n_models,
            "missing": data.missing, "nonfinite": data.nonfinite, "why": data.why,
            "values": data.values, "mean_accuracy": data.mean_accuracy}


def _variability_summary(claim: VariabilityClaim, groups: list[dict[str, Any]],
                         verdict: str, needed: int | None) -> str:
    summary = "; ".join(g["sentence"] for g in groups)
    if verdict == INCONCLUSIVE and claim.relation != "zero":
        summary += (f". To decide: about {needed} models per set (estimate: CI width ∝ 1/√M at "
                    "the observed ratios)" if needed else
                    ". No model count is likely to decide at the observed ratios")
    return summary


def _claim_variability(claim: VariabilityClaim, ctx: _Ctx) -> ClaimResult:
    groups = [_model_set(ctx, g) for g in claim.groups]
    ref = _model_set(ctx, claim.reference) if claim.reference is not None else None
    confidence = 1.0 - 2.0 * claim.alpha / len(groups)
    if claim.relation == "zero":
        parts = [_zero_group(claim, g) for g in groups]
    else:
        parts = [_ratio_group(claim, g, ref, confidence) for g in groups]  # type: ignore[arg-type]
    verdict = _combine([p["verdict"] for p in parts])
    needed = _max_models(parts) if verdict == INCONCLUSIVE else None
    evidence = {"relation": claim.relation, "metrics": list(claim.metrics),
                "band": list(claim.band), "confidence": confidence,
                "correction": f"Bonferroni over {len(groups)} group(s)",
                "resamples": VAR_RESAMPLES, "groups": parts,
                "sets": [_set_evidence(g) for g in groups] + ([_set_evidence(ref)] if ref else []),
                "reference": ref.name if ref else None}
    result = _result(claim, verdict, _variability_summary(claim, parts, verdict, needed), evidence,
                     ctx, needed)
    return replace(result, metric=", ".join(claim.metrics))


def _max_models(parts: list[dict[str, Any]]) -> int | None:
    needed = [p["models_needed"] for p in parts if p.get("models_needed")]
    return max(needed) if needed else None


# --------------------------------------------------------------------------------------------
# variability tables
# --------------------------------------------------------------------------------------------

REDUCTION_COLUMNS: dict[str, str] = {"reduction_original": "original",
                                     "reduction_recalculated": "recalculated"}


def _metric_entries(data: _SetData, confidence: float = VAR_CONFIDENCE
                    ) -> dict[str, dict[str, float]]:
    """metric → {value, ci_low, ci_high, se} with the bootstrap CI over models."""
    out: dict[str, dict[str, float]] = {}
    draws = data.draws()
    for metric in metrics.SUMMARY_METRICS:
        value = data.values.get(metric, math.nan)
        d = draws.get(metric)
        low, high = metrics.percentile_ci(d, confidence) if d is not None else (math.nan, math.nan)
        out[metric] = {"value": value, "ci_low": low, "ci_high": high,
                       "se": metrics.bootstrap_sd(d) if d is not None else math.nan}
    out["mean_accuracy"] = {"value": data.mean_accuracy, "ci_low": math.nan, "ci_high": math.nan,
                            "se": math.nan}
    if "cka" in data.values:  # no bootstrap: one CKA per pair is already costly
        out["cka"] = {"value": data.values["cka"], "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    return out


def _reduction_entries(data: _SetData, ref: _SetData, confidence: float = VAR_CONFIDENCE
                       ) -> dict[str, dict[str, Any]] | None:
    """Reduction % against the reference, both formulas, with bootstrap CIs (None if unusable)."""
    if data.why or ref.why or data.n_models < 2 or ref.n_models < 2:
        return None
    point = metrics.reduction_percent(data.values, ref.values)
    draws_g, draws_r = _joint_draws(data, ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = metrics.reduction_percent(draws_g, draws_r)
    out = {}
    for kind in ("original", "recalculated"):
        low, high = metrics.percentile_ci(np.asarray(boot[kind]), confidence)
        out[kind] = {"value": point[kind], "ci_low": low, "ci_high": high,
                     "se": metrics.bootstrap_sd(np.asarray(boot[kind])),
                     "label": point["labels"][kind],
                     "per_metric": point["per_metric"][kind]}
    return out


def _variability_row(table: ReportedTable, name: str, ms: ModelSet, ctx: _Ctx) -> VariabilityRow:
    layout = table.layout
    assert isinstance(layout, VariabilityLayout)
    data = _model_set(ctx, ms)
    reductions = None
    if layout.reference and name != layout.reference and layout.reference in layout.rows:
        reductions = _reduction_entries(data, _model_set(ctx, layout.rows[layout.reference]))
    return VariabilityRow(table=table.id, row=name, label=ms.label or name, experiment=ms.experiment,
                          view=ms.view, n_runs=data.n_runs, n_models=data.n_models,
                          missing=list(data.missing), nonfinite=list(data.nonfinite),
                          why=data.why, metrics=_metric_entries(data), reductions=reductions)


def _rounding(value: float, column: str) -> float:
    """Half a unit of the reported value's last printed digit (0 for exact no-variability
    values: SD 0, correlation 1). Trailing zeros are lost in parsing: 8.0 reads as 8."""
    if column in REDUCTION_COLUMNS or not _no_variability(column, value):
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


def _var_verdict(entry: dict[str, Any], reported: ReportedValue, column: str, row: VariabilityRow,
                 rule: _CellRule) -> tuple[str, str, float, float]:
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
    span = f"{pct(rule.confidence)} bootstrap CI{widened} [{_f(lo, 4)}, {_f(hi, 4)}]"
    rel = stats.relative_error(value, reported.value)
    if lo <= reported.value <= hi:
        return REPRODUCED, f"reported value lies in the {span} (M={row.n_models})", lo, hi
    if rule.tolerance is not None and math.isfinite(rel) and abs(rel) <= rule.tolerance:
        note = f"|rel. error| {abs(rel):.1%} within the tolerance {rule.tolerance:.1%}"
        return REPRODUCED, note, lo, hi
    if row.n_models >= MIN_SEEDS_TO_REJECT:
        return NOT_REPRODUCED, f"reported value lies outside the {span} (M={row.n_models})", lo, hi
    return INCONCLUSIVE, f"outside the {span}, but M={row.n_models} models are too few", lo, hi


def variability_cell(table: ReportedTable, row: VariabilityRow, column: str,
                     reported: ReportedValue, scale: str, dataset: str,
                     rule: _CellRule | None = None,
                     entry: dict[str, Any] | None = None) -> VariabilityCell:
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
    rule = rule or _CellRule()
    known = entry if entry is not None else _column_entry(row, column)
    entry = known or {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "se": math.nan}
    rel = stats.relative_error(entry["value"], reported.value)
    light = stats.traffic_light(entry["value"], reported.value, _var_higher_is_better(column))
    if known is None:
        verdict, note, lo, hi = NOT_EVALUATED, _missing_note(table, row, column), math.nan, math.nan
    elif scale != table.scale:
        verdict, note, lo, hi = NOT_EVALUATED, _scale_note(table, scale, dataset), math.nan, math.nan
    else:
        verdict, note, lo, hi = _var_verdict(entry, reported, column, row, rule)
    return VariabilityCell(table=table.id, row=row.row, column=column, value=entry["value"],
                           ci_low=entry["ci_low"], ci_high=entry["ci_high"], se=entry["se"],
                           n_models=row.n_models, reported=reported.value,
                           reported_pm=reported.pm, interval_low=lo, interval_high=hi,
                           rel_error=rel, light=light, verdict=verdict, note=note,
                           confidence=rule.confidence)


def _missing_note(table: ReportedTable, row: VariabilityRow, column: str) -> str:
    if column in REDUCTION_COLUMNS:
        reference = getattr(table.layout, "reference", None)
        if row.row == reference:
            return "the reference row itself has no reduction"
        return row.why or ("no reduction: the reference row has no usable models" if reference
                           else "no reduction: the table's layout names no reference row")
    return f"unknown column '{column}'; known: {', '.join(metrics.SUMMARY_METRICS)}"


def _variability_table(table: ReportedTable, ctx: _Ctx) -> VariabilityTableResult:
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
    cells = [_judged_cell(table, r.row, c, rep, ctx, ctx.rules.get((table.id, r.row, c)))
             for r in rows for c in table.columns if (rep := table.value(r.row, c)) is not None]
    comparable = ctx.scale == table.scale
    note = ("reproduced and reported numbers are comparable" if comparable else
            "values are not comparable: " + _scale_note(table, ctx.scale, ctx.dataset))
    return VariabilityTableResult(
        table=table.id, title=table.title, columns=list(table.columns), reference=layout.reference,
        scale=ctx.scale, dataset=ctx.dataset, reported_scale=table.scale,
        reported_dataset=table.dataset, comparable=comparable, note=note, rows=rows, cells=cells)


def _entry_at(table: ReportedTable, row: str, column: str, ctx: _Ctx,
              confidence: float) -> dict[str, Any] | None:
    """A cell's {value, ci_low, ci_high, se} with the CI at ``confidence`` (same draws)."""
    layout = table.layout
    assert isinstance(layout, VariabilityLayout)
    data = _model_set(ctx, layout.rows[row])
    if column in REDUCTION_COLUMNS:
        ref = layout.reference
        if not ref or ref == row or ref not in layout.rows:
            return None
        red = _reduction_entries(data, _model_set(ctx, layout.rows[ref]), confidence)
        return None if red is None else red[REDUCTION_COLUMNS[column]]
    return _metric_entries(data, confidence).get(column)


def _judged_cell(table: ReportedTable, row: str, column: str, reported: ReportedValue, ctx: _Ctx,
                 rule: _CellRule | None) -> VariabilityCell:
    """A variability cell judged with ``rule`` (its CI recomputed when the level is not 95 %)."""
    rule = rule or _CellRule()
    vrow = ctx.var_rows[(table.id, row)]
    entry = None if rule.confidence == VAR_CONFIDENCE else \
        _entry_at(table, row, column, ctx, rule.confidence)
    return variability_cell(table, vrow, column, reported, ctx.scale, ctx.dataset, rule, entry)


def _variability_cell_result(table: ReportedTable, row: str, column: str,
                             reported: ReportedValue, ctx: _Ctx, rule: _CellRule) -> CellResult:
    """A numeric claim's cell in a variability table, as a :class:`CellResult` (mean = the
    reproduced value, sd = its bootstrap SD, n = models, CI = the verdict interval)."""
    vrow = ctx.var_rows.get((table.id, row))
    if vrow is None:
        nan = math.nan
        return CellResult(table=table.id, row=row, column=column, reported=reported.value,
                          reported_pm=reported.pm, reported_n=reported.n, mean=nan, sd=nan, n=0,
                          ci_low=nan, ci_high=nan, abs_error=nan, rel_error=nan, light="gray",
                          verdict=NOT_EVALUATED, note="no model set for this row",
                          scale=ctx.scale, dataset=ctx.dataset)
    vc = _judged_cell(table, row, column, reported, ctx, rule)
    return CellResult(table=table.id, row=row, column=column, reported=reported.value,
                      reported_pm=reported.pm, reported_n=reported.n, mean=vc.value, sd=vc.se,
                      n=vc.n_models, ci_low=vc.ci_low, ci_high=vc.ci_high,
                      abs_error=vc.value - reported.value, rel_error=vc.rel_error, light=vc.light,
                      verdict=vc.verdict, note=vc.note, scale=ctx.scale, dataset=ctx.dataset)


def evaluate_claim(claim: Any, ctx: _Ctx) -> ClaimResult:
    """Evaluates one claim at ``ctx.scale`` (``not_evaluated`` if the claim skips that scale)."""
    if ctx.scale not in claim.scales:
        note = (f"this claim gets a verdict at {', '.join(claim.scales)} scale; these runs are "
                f"{ctx.scale} scale on {ctx.dataset or 'unknown data'}")
        return _result(claim, NOT_EVALUATED, f"not evaluated: {note}", {}, ctx, None, note)
    if isinstance(claim, BeatsClaim):
        return _claim_beats(claim, ctx)
    if isinstance(claim, TrendClaim):
        return _claim_trend(claim, ctx)
    if isinstance(claim, ThresholdClaim):
        return _claim_threshold(claim, ctx)
    if isinstance(claim, VariabilityClaim):
        return _claim_variability(claim, ctx)
    return _claim_numeric(claim, ctx)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _dataset(study: Study, scale: str, rows: list[Row]) -> str:
    sc = study.scales.get(scale)
    if sc is not None and sc.dataset:
        return sc.dataset
    return _datasets(rows, "")


def compare(study: Study, scale: str, rows: list[Row],
            predictions: Predictions | None = None) -> Comparison:
    """Compares the runs of one scale with the study's reported tables and claims.

    Args:
        study: the study.
        scale: the scale the runs were made at; rows recording another scale are ignored.
        rows: run rows (:func:`restudy.record.row`) of any status.
        predictions: (run key, view) → (logits [examples, classes], labels) or None, for
            variability claims and tables (e.g. :func:`load_predictions`); without it they are
            not evaluated.

    Returns:
        The :class:`Comparison`: a summary per (experiment, variant), one result per reported
        cell of each result table, one per such table, one per variability table, one per claim.
    """
    kept = [r for r in rows if r.get("scale") in (scale, None)]
    if len(kept) < len(rows):
        log.info("ignoring %d runs made at another scale than %s", len(rows) - len(kept), scale)
    dataset = _dataset(study, scale, kept)
    ctx = _Ctx(study, scale, dataset, kept, _cell_rules(study), predictions)
    groups = [_group_summary(runs) for runs in group_rows(kept).values()]
    cells: list[CellResult] = []
    tables: list[TableResult] = []
    variability: list[VariabilityTableResult] = []
    for table in study.tables:
        if table.kind != "result" or table.layout is None:
            continue
        if isinstance(table.layout, VariabilityLayout):
            variability.append(_variability_table(table, ctx))
            continue
        tcells = _table_cells(table, kept, scale, dataset, ctx.rules)
        cells += tcells
        tables.append(_table_result(table, tcells, scale, dataset))
    claims = [evaluate_claim(c, ctx) for c in study.claims]
    return Comparison(study=study.id, scale=scale, dataset=dataset, groups=groups, cells=cells,
                      tables=tables, claims=claims, variability=variability)
