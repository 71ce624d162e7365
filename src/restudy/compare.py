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

A claim is ``not_evaluated`` when the scale is not among its ``scales`` or no run is selected.

Imports study and stats (numpy for NaN-aware means); no torch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from . import stats
from .study import (BeatsClaim, NumericClaim, ReportedTable, ReportedValue, Selector, Study,
                    ThresholdClaim, TrendClaim)

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
            observed effect for 80 % power; None when no count would do or it is not estimated.
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
class Comparison(_ToDict):
    """Everything compare computed for one study at one scale."""

    study: str
    scale: str
    dataset: str
    groups: list[GroupSummary] = field(default_factory=list)
    cells: list[CellResult] = field(default_factory=list)
    tables: list[TableResult] = field(default_factory=list)
    claims: list[ClaimResult] = field(default_factory=list)

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
    """Returns the rows (any status) behind one cell of a result table."""
    layout = table.layout
    if layout is None:
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
    """What every claim evaluation needs."""

    study: Study
    scale: str
    dataset: str
    rows: list[Row]
    rules: dict[tuple[str, str, str], _CellRule]


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
    return _claim_numeric(claim, ctx)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def _dataset(study: Study, scale: str, rows: list[Row]) -> str:
    sc = study.scales.get(scale)
    if sc is not None and sc.dataset:
        return sc.dataset
    return _datasets(rows, "")


def compare(study: Study, scale: str, rows: list[Row]) -> Comparison:
    """Compares the runs of one scale with the study's reported tables and claims.

    Args:
        study: the study.
        scale: the scale the runs were made at; rows recording another scale are ignored.
        rows: run rows (:func:`restudy.record.row`) of any status.

    Returns:
        The :class:`Comparison`: a summary per (experiment, variant), one result per reported
        cell of each result table, one per such table, one per claim.
    """
    kept = [r for r in rows if r.get("scale") in (scale, None)]
    if len(kept) < len(rows):
        log.info("ignoring %d runs made at another scale than %s", len(rows) - len(kept), scale)
    dataset = _dataset(study, scale, kept)
    ctx = _Ctx(study, scale, dataset, kept, _cell_rules(study))
    groups = [_group_summary(runs) for runs in group_rows(kept).values()]
    cells: list[CellResult] = []
    tables: list[TableResult] = []
    for table in study.tables:
        if table.kind != "result" or table.layout is None:
            continue
        tcells = _table_cells(table, kept, scale, dataset, ctx.rules)
        cells += tcells
        tables.append(_table_result(table, tcells, scale, dataset))
    claims = [evaluate_claim(c, ctx) for c in study.claims]
    return Comparison(study=study.id, scale=scale, dataset=dataset, groups=groups, cells=cells,
                      tables=tables, claims=claims)
