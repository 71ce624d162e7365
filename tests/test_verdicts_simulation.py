"""Simulations of the verdict rules: each rule, run many times on data with a known truth, must
claim no more than the data support (seeded, vectorized, a few seconds each)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from restudy.claims.a_beats_b import BeatsClaim
from restudy.claims.a_beats_b import evaluate as beats_evaluate
from restudy.claims.trend import TrendClaim
from restudy.claims.trend import evaluate as trend_evaluate
from restudy.compare import EvaluationContext
from restudy.compare.cells import CellRule, evaluate_cell
from restudy.spec.reported import ReportedTable, ReportedValue, TableLayout
from restudy.stats import variability as metrics
from restudy.stats.comparisons import paired_difference
from restudy.stats.decisions import EQUIVALENT, equivalence
from restudy.stats.intervals import bootstrap_interval

ALPHA = 0.05


def _ctx(rows: list[dict[str, Any]]) -> EvaluationContext:
    return EvaluationContext(None, "small", "synthetic", rows)  # type: ignore[arg-type]


def _rows(values: np.ndarray, methods: tuple[str, str], depths: list[int]) -> list[dict[str, Any]]:
    """values[m, seed, depth] → run rows of experiment fc with axes method and depth."""
    rows = []
    for mi, m in enumerate(methods):
        for s in range(values.shape[1]):
            for di, d in enumerate(depths):
                variant = {"method": m, "depth": str(d)}
                rows.append(
                    {
                        "key": f"{m}-{s}-{d}",
                        "experiment": "fc",
                        "variant": variant,
                        "variant_id": f"depth={d},method={m}",
                        "seed_index": s,
                        "status": "finished",
                        "metrics": {"test_acc": float(values[mi, s, di])},
                    }
                )
    return rows


BEATS = BeatsClaim(
    id="a_beats_b",
    kind="a_beats_b",
    statement="a beats b",
    a={"experiment": "fc", "where": {"method": "a"}},
    b={"experiment": "fc", "where": {"method": "b"}},
)


def _paired_design(rng: np.random.Generator, effect: float, seeds: int = 5, cells: int = 6) -> np.ndarray:
    """A pseudo-replicated design: the a − b difference of one seed is shared by all its cells
    (paired streams: same data order and initialisation), plus a little cell noise."""
    base = rng.normal(80.0, 1.0, size=(seeds, cells))
    seed_effect = rng.normal(0.0, 1.0, size=(seeds, 1))  # the seed's own shift of a − b
    cell_noise = rng.normal(0.0, 0.1, size=(seeds, cells))
    return np.stack([base + effect + seed_effect + cell_noise, base])


def test_a_beats_b_counts_seeds_not_cells():
    rng = np.random.default_rng(1)
    res = beats_evaluate(BEATS, _ctx(_rows(_paired_design(rng, 0.5), ("a", "b"), [1, 3, 5, 7, 9, 11])))
    comp = res.evidence["comparisons"][0]
    assert comp["n"] == 5  # 5 seeds, not 30 cells
    assert comp["pairs"] == 30 and comp["seeds"] == 5
    assert "n=5 seeds" in res.summary


def test_a_beats_b_null_effect_is_reproduced_at_most_at_rate_alpha():
    """No true effect, a strong per-seed shift shared by every cell of a seed: pooling the 30
    cells as independent pairs would call far more than 5 % of these 'reproduced'."""
    rng = np.random.default_rng(2)
    reps = 400
    hits = 0
    for _ in range(reps):
        res = beats_evaluate(BEATS, _ctx(_rows(_paired_design(rng, 0.0), ("a", "b"), [1, 3, 5, 7, 9, 11])))
        hits += res.verdict == "reproduced"
    # binomial upper slack: 3 SDs of a 5 % rate over 400 replicates
    assert hits / reps <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)
    # what pooling cells would have claimed on the same kind of data
    pooled = 0
    for _ in range(reps):
        v = _paired_design(rng, 0.0)
        r = paired_difference(v[0].ravel(), v[1].ravel(), confidence=1 - 2 * ALPHA, alternative="greater")
        pooled += r.p_value < ALPHA
    assert pooled / reps > 2 * ALPHA


def test_a_beats_b_wrong_sign_estimates_seeds_to_refute():
    rng = np.random.default_rng(3)
    v = _paired_design(rng, 0.0, seeds=3)
    v[0] -= 0.6
    res = beats_evaluate(BEATS, _ctx(_rows(v, ("a", "b"), [1, 3])))
    if res.verdict == "inconclusive":
        comp = res.evidence["comparisons"][0]
        assert comp["seeds_needed"] and "does not hold" in comp["seeds_note"]
    else:
        assert res.verdict == "not_reproduced"


def test_trend_counts_seeds_and_null_trend_is_reproduced_at_most_at_rate_alpha():
    claim = TrendClaim(
        id="t",
        kind="trend",
        statement="rises",
        select={"experiment": "fc", "where": {"method": "a"}},
        baseline={"experiment": "fc", "where": {"method": "b"}},
        over="depth",
        direction="increasing",
    )
    rng = np.random.default_rng(4)
    depths = [1, 5, 9, 13, 17]
    reps, hits = 300, 0
    for i in range(reps):
        seeds = 5
        base = rng.normal(80.0, 1.0, size=(seeds, len(depths)))
        # each seed has its own slope of the difference (shared streams), mean slope 0
        slope = rng.normal(0.0, 0.3, size=(seeds, 1)) * np.array(depths)[None, :]
        v = np.stack([base + slope + rng.normal(0, 0.05, size=base.shape), base])
        res = trend_evaluate(claim, _ctx(_rows(v, ("a", "b"), depths)))
        if i == 0:
            assert res.evidence["n"] == seeds and len(res.evidence["seed_slopes"]) == seeds
        hits += res.verdict == "reproduced"
    assert hits / reps <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


# ------------------------------------------------------------------------------ equivalence

TABLE = ReportedTable(
    id="t",
    title="t",
    document="d",
    scale="small",
    test_size=1000,
    rows=["1"],
    columns=["a"],
    values={"1": {"a": 90.0}},
    layout=TableLayout(experiment="fc", row_axis="depth", column_axis="method"),
)


def _cell_rows(values: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "key": f"k{i}",
            "experiment": "fc",
            "variant": {"depth": "1", "method": "a"},
            "variant_id": "depth=1,method=a",
            "seed_index": i,
            "status": "finished",
            "metrics": {"test_acc": float(v), "n_test": 1000},
        }
        for i, v in enumerate(values)
    ]


def test_equivalence_is_never_reproduced_with_a_ci_wider_than_the_tolerance():
    rng = np.random.default_rng(5)
    diffs = rng.normal(0, 1, 3000)
    ses = rng.uniform(0.01, 2, 3000)
    dfs = rng.integers(1, 30, 3000)
    tols = rng.uniform(0, 2, 3000)
    for d, se, df, tol in zip(diffs, ses, dfs, tols):
        eq = equivalence(d, se, float(df), tol, ALPHA)
        if eq.ci_high - eq.ci_low > 2 * tol:
            assert eq.decision != EQUIVALENT


def test_fewer_seeds_never_make_reproduced_easier():
    """Two seeds far apart: the old 'reported value inside the CI' rule called this reproduced
    (t multiplier 12.7); the equivalence rule cannot."""
    reported = ReportedValue(value=90.0)
    cell = evaluate_cell(TABLE, "1", "a", reported, _cell_rows(np.array([86.0, 94.5])), "small", "x", CellRule())
    assert cell.verdict == "inconclusive"
    assert cell.seeds_needed is not None and cell.decides_towards in ("equivalent", "different")


def test_cell_at_the_tolerance_edge_is_reproduced_at_most_at_rate_alpha():
    """True mean exactly at reported + δ: 'reproduced' is a false claim of agreement."""
    rng = np.random.default_rng(6)
    reported = ReportedValue(value=90.0)
    rule = CellRule()
    probe = evaluate_cell(TABLE, "1", "a", reported, _cell_rows(np.full(5, 90.0)), "small", "x", rule)
    tol = probe.tolerance
    reps, hits = 400, 0
    for _ in range(reps):
        vals = rng.normal(90.0 + tol, 1.0, size=5)
        cell = evaluate_cell(TABLE, "1", "a", reported, _cell_rows(vals), "small", "x", rule)
        hits += cell.verdict == "reproduced"
    assert hits / reps <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


@pytest.mark.parametrize(("text", "slack"), [("0.870", 0.0005), ("8.0", 0.05), ("40", 0.5), ("0.0080", 0.00005)])
def test_rounding_slack_comes_from_the_printed_digits(text: str, slack: float):
    assert ReportedValue.model_validate(text).rounding() == pytest.approx(slack)
    assert ReportedValue.model_validate({"value": text, "pm": 0.1}).text == text


# ------------------------------------------------------------------------------ bootstrap coverage


def _pairwise_of(values: np.ndarray) -> metrics.Pairwise:
    m = values.size
    z = np.zeros((m, m))
    return metrics.Pairwise(values, values, z, z, z, z, z, 100)


def _sd_interval(values: np.ndarray, rng: np.random.Generator, b: int = 1000) -> tuple[float, float]:
    pw = _pairwise_of(values)
    draws = metrics.bootstrap_draws(pw, metrics.resample_weights(values.size, b, rng))["sd_accuracy"]
    jack = metrics.bootstrap_draws(pw, metrics.jackknife_weights(values.size))["sd_accuracy"]
    point = metrics.summarize(pw)["sd_accuracy"]
    return bootstrap_interval(point, draws, [jack], 0.95, n=values.size)


def test_bootstrap_interval_of_a_population_sd_covers_at_least_93_percent_at_20_models():
    rng = np.random.default_rng(7)
    reps, covered = 500, 0
    for _ in range(reps):
        x = rng.normal(0.0, 1.0, 20)
        low, high = _sd_interval(x, rng)
        covered += low <= 1.0 <= high
    assert covered / reps >= 0.93


def test_bootstrap_interval_of_a_ratio_of_sds_covers_at_least_93_percent_at_20_models():
    rng = np.random.default_rng(8)
    reps, covered = 500, 0
    for _ in range(reps):
        x, y = rng.normal(0.0, 1.0, 20), rng.normal(0.0, 2.0, 20)
        px, py = _pairwise_of(x), _pairwise_of(y)
        dx = metrics.bootstrap_draws(px, metrics.resample_weights(20, 1000, rng))["sd_accuracy"]
        dy = metrics.bootstrap_draws(py, metrics.resample_weights(20, 1000, rng))["sd_accuracy"]
        jx = metrics.bootstrap_draws(px, metrics.jackknife_weights(20))["sd_accuracy"]
        jy = metrics.bootstrap_draws(py, metrics.jackknife_weights(20))["sd_accuracy"]
        sx, sy = float(np.std(x)), float(np.std(y))
        low, high = bootstrap_interval(sx / sy, dx / dy, [jx / sy, sx / jy], 0.95, n=20)
        covered += low <= 0.5 <= high
    assert covered / reps >= 0.93


def test_percentile_intervals_would_undercover_which_is_why_they_are_not_used():
    rng = np.random.default_rng(9)
    reps, covered = 500, 0
    for _ in range(reps):
        x = rng.normal(0.0, 1.0, 20)
        pw = _pairwise_of(x)
        draws = metrics.bootstrap_draws(pw, metrics.resample_weights(20, 1000, rng))["sd_accuracy"]
        low, high = metrics.percentile_ci(draws, 0.95)
        covered += low <= 1.0 <= high
    assert covered / reps < 0.93


def test_a_set_without_variability_gets_the_interval_zero_zero():
    assert bootstrap_interval(0.0, np.zeros(100), [np.zeros(5)], 0.95, n=5) == (0.0, 0.0)
