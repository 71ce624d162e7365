"""Runs: reading a metric off a run, selecting, grouping and pairing runs, and summarising a metric
over them (mean, SD, CI with the binomial test-set floor for accuracies).

A run is a flat row of :func:`restudy.storage.record.row`. Failed runs have no metrics: :func:`usable`
drops them. Diverged runs keep their measured accuracy (usually chance) and enter accuracy
statistics; their losses are NaN and are dropped.

Imports spec and stats (numpy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..spec.claim_base import Selector
from ..spec.metrics import difference_unit, metric_info, value_unit
from ..stats.summary import Summary, binomial_floor_sd_percent, summarize
from ..storage.artifacts import variant_id

ACCURACY_METRICS: tuple[str, ...] = ("test_acc", "train_acc", "test_acc_best")  # test_acc_best: max over epochs
MACHINE_DEPENDENT: frozenset[str] = frozenset({"wall_s"})
"""Metrics whose values depend on the machine that ran: reported values of them are not compared
with runs made elsewhere, only the ratios between a table's columns (:mod:`restudy.compare.ratios`)."""

Row = dict[str, Any]


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
    """Returns ``"axis=level,..."`` (``"-"`` for no axes), as :func:`restudy.storage.record.row` does."""
    return variant_id(variant)


def usable(rows: Iterable[Row]) -> list[Row]:
    """Returns the runs that have metrics: finished and diverged ones (failed runs dropped)."""
    return [r for r in rows if r.get("status") != "failed"]


def select_runs(rows: Iterable[Row], selector: Selector) -> list[Row]:
    """Returns the rows (any status) of ``selector``'s experiment and axis levels."""
    return [r for r in rows if selector.matches(r["experiment"], r.get("variant") or {})]


def absent_reason(rows: Iterable[Row], selector: Selector) -> str:
    """Why ``selector`` has no usable runs, in words a reader can act on: every selected run failed,
    or the levels it needs did not run at this scale (and which ones did)."""
    chosen = select_runs(rows, selector)
    if chosen:
        return f"{selector.label()}: all {len(chosen)} selected runs failed"
    ran = [r for r in rows if r["experiment"] == selector.experiment]
    if not ran:
        return f"{selector.label()}: experiment '{selector.experiment}' has no runs at this scale"
    parts = []
    for axis, want in selector.where.items():
        levels = {str((r.get("variant") or {}).get(axis)) for r in ran}
        wanted = ", ".join(str(w) for w in (want if isinstance(want, list) else [want]))
        have = ", ".join(sorted(levels, key=lambda v: (_as_float(v) is None, _as_float(v) or 0.0, v)))
        parts.append(f"it needs {axis} {wanted}; {axis} ran {have}")
    return f"{selector.label()}: no runs at this scale ({'; '.join(parts)})"


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (accuracies) or worse (losses, time), as the
    metric declares it (:func:`restudy.spec.metrics.metric_info`)."""
    return metric_info(metric).higher_is_better


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
    return binomial_floor_sd_percent(min(100.0, max(0.0, mean)), int(n_test))


def summarize_runs(
    runs: Sequence[Row], metric: str, confidence: float = 0.95, n_test: int | None = None
) -> tuple[Summary, float]:
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
    return summarize(values, confidence=confidence, floor_sd=floor), floor


def per_seed_means(values: Iterable[tuple[int, float]]) -> tuple[list[int], list[float]]:
    """The mean of the finite values of each seed index, seed indices ascending. Runs sharing a
    seed index share its data order and initialisation streams, so a claim's n counts these
    means (seeds), not the runs or cells behind them."""
    by: dict[int, list[float]] = {}
    for seed, v in values:
        if math.isfinite(v):
            by.setdefault(int(seed), []).append(v)
    seeds = sorted(by)
    return seeds, [sum(by[k]) / len(by[k]) for k in seeds]


def datasets(runs: Sequence[Row], default: str) -> str:
    """The runs' data set labels, joined (``default`` when none says)."""
    labels = sorted({str(r["dataset"]) for r in runs if r.get("dataset")})
    return ", ".join(labels) if labels else default


def unit(metric: str) -> str:
    """The unit a metric's differences are written in (`` pp`` for accuracies, `` s`` for time; a
    registered run metric's declared unit)."""
    return difference_unit(metric)


NOT_LEARNED_SDS = 3.0
"""A run has not learned when its final train accuracy is at most chance (100 / n_classes %) plus
this many binomial SDs of a guessing model's accuracy on its n_train examples: a model that
guesses exceeds that bound with probability about 0.1 %."""


def not_learned(runs: Iterable[Row]) -> list[Row]:
    """The runs whose final train accuracy is no better than guessing (:data:`NOT_LEARNED_SDS`):
    their optimisation failed, and a comparison with them measures that failure. Runs without
    ``train_acc``, ``n_train`` and ``n_classes`` in their metrics (records made before these were
    stored) are never counted."""
    out = []
    for r in runs:
        m = r.get("metrics") or {}
        acc, k, n = m.get("train_acc"), m.get("n_classes"), m.get("n_train")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (acc, k, n)) or k < 2 or n < 1:
            continue
        chance = 100.0 / k
        if acc <= chance + NOT_LEARNED_SDS * binomial_floor_sd_percent(chance, int(n)):
            out.append(r)
    return out


def level_unit(metric: str) -> str:
    """The unit a metric's values themselves are written in (``%`` for accuracies, whose
    differences :func:`unit` writes in pp; `` s`` for time)."""
    return value_unit(metric)


def group_rows(rows: Iterable[Row]) -> dict[tuple[str, str], list[Row]]:
    """Returns rows grouped by (experiment, variant_id), in first-seen order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["experiment"], r["variant_id"]), []).append(r)
    return groups


def pinned_axes(selector: Selector) -> set[str]:
    """Returns the axes a selector pins to a single level (a list of several levels is free)."""
    return {ax for ax, v in selector.where.items() if not isinstance(v, list) or len(v) == 1}


def axes_of(runs: Sequence[Row]) -> set[str]:
    """Every axis some run's variant names."""
    out: set[str] = set()
    for r in runs:
        out |= set(r.get("variant") or {})
    return out


def pair_runs(
    a_runs: Sequence[Row], b_runs: Sequence[Row], a_sel: Selector, b_sel: Selector
) -> tuple[list[tuple[Row, Row]], dict[str, Any]]:
    """Pairs runs of two selectors by seed index and the axes both leave free.

    The free axes are those present in both sides' variants and pinned by neither selector. A
    key (seed index, free-axis levels) must be unique on each side; otherwise the pairing is
    ambiguous and no pairs are returned.

    Returns:
        The (a, b) pairs and info: ``by`` (the free axes), ``ambiguous``, ``unpaired_a``,
        ``unpaired_b``.
    """
    free = sorted((axes_of(a_runs) & axes_of(b_runs)) - pinned_axes(a_sel) - pinned_axes(b_sel))

    def key(r: Row) -> tuple[Any, ...]:
        return (r["seed_index"], *[(r.get("variant") or {}).get(ax) for ax in free])

    index_a = {key(r): r for r in a_runs}
    index_b = {key(r): r for r in b_runs}
    info: dict[str, Any] = {"by": ["seed_index", *free], "ambiguous": False}
    if len(index_a) < len(a_runs) or len(index_b) < len(b_runs):
        info.update(ambiguous=True, unpaired_a=len(a_runs), unpaired_b=len(b_runs))
        return [], info
    pairs = [(index_a[k], index_b[k]) for k in index_a if k in index_b]
    info.update(
        unpaired_a=len(a_runs) - len(pairs),
        unpaired_b=len(b_runs) - len(pairs),
        cells=len({k[1:] for k in index_a if k in index_b}),
    )
    return pairs, info


def short_label(sel: Selector, other: Selector | None = None) -> str:
    """Short selector label: its levels when both sides share an experiment."""
    if sel.where and (other is None or other.experiment == sel.experiment):
        pinned = {
            k: (v[0] if isinstance(v, list) else v)
            for k, v in sel.where.items()
            if not isinstance(v, list) or len(v) == 1
        }
        if len(pinned) == 1:
            return str(next(iter(pinned.values())))
        return ", ".join(f"{k}={v}" for k, v in pinned.items()) or sel.label()
    return sel.label()


def series(label: str, runs: Sequence[Row], metric: str, axis: str | None = None) -> dict[str, Any]:
    """What a figure draws for one set of runs: a point (x, value) per run, x being the run's
    level of ``axis`` (``label`` without an axis), and mean ± 95 % CI (floored for accuracies) per
    x in first-seen order.

    Returns:
        ``{"label", "points": [[x, value]], "levels": [{"x", "mean", "ci_low", "ci_high"}]}``.
    """

    def x_of(r: Row) -> Any:
        return (r.get("variant") or {}).get(axis) if axis else label

    levels = []
    for lv in dict.fromkeys(x_of(r) for r in runs):
        s, _ = summarize_runs([r for r in runs if x_of(r) == lv], metric)
        levels.append({"x": lv, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high})
    return {"label": label, "points": [[x_of(r), metric_value(r, metric)] for r in runs], "levels": levels}


def mean_host_load(runs: Sequence[Row]) -> tuple[float, int] | None:
    """The host's mean 1-minute load average while ``runs`` ran (each run's start and end averaged)
    and its core count, from the ``host_load`` the runs record; None when none recorded one."""
    loads, cpus = [], 0
    for r in runs:
        h = r.get("host_load") or {}
        got = [v for v in (h.get("start"), h.get("end")) if isinstance(v, (int, float))]
        if got:
            loads.append(sum(got) / len(got))
            cpus = max(cpus, int(h.get("cpus") or 0))
    return (float(np.mean(loads)), cpus) if loads else None
