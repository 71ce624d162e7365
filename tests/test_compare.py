"""Verdict rules of restudy.compare on synthetic run rows with known numbers."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from restudy import compare as cmp
from restudy.spec.study import Study

N_TEST = 10000
BIG_TEST = 10**7  # a test set so large that its own sampling noise is negligible


def _study(claims: list[dict[str, Any]], tables: list[dict[str, Any]] | None = None) -> Study:
    """A tiny study: experiment ``fc`` with axes method × depth, experiment ``bias``."""
    axes = {
        "method": {"baseline": {}, "enorm": {"method": "enorm"}, "bn": {"model.norm": "bn"}},
        "depth": {"path": "model.hidden", "values": [1, 3, 5]},
    }
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy study",
            "paper": {"title": "A toy paper"},
            "documents": [{"id": "orig", "kind": "original", "title": "The paper"}],
            "experiments": [{"id": "fc", "axes": axes}, {"id": "bias", "axes": {"method": axes["method"]}}],
            "scales": {"paper": {"dataset": "CIFAR-10"}, "small": {"dataset": "MNIST-1D"}},
            "tables": tables or [],
            "claims": claims,
        }
    )


def _row(
    exp: str,
    variant: dict[str, str],
    seed: int,
    acc: float | None,
    *,
    status: str = "finished",
    scale: str = "paper",
    n_test: int = N_TEST,
) -> dict[str, Any]:
    vid = ",".join(f"{k}={v}" for k, v in variant.items())
    metrics: dict[str, Any] = {}
    if status != "failed":
        metrics = {
            "test_acc": acc,
            "train_acc": (acc or 0) + 5.0,
            "n_test": n_test,
            "test_loss": math.nan if status == "diverged" else 1.0,
            "train_loss": math.nan if status == "diverged" else 0.5,
            "diverged": 1.0 if status == "diverged" else 0.0,
            "epochs_done": 3,
        }
    return {
        "key": f"{exp}-{vid}-{seed}",
        "experiment": exp,
        "variant": variant,
        "variant_id": vid,
        "seed_index": seed,
        "scale": scale,
        "dataset": "CIFAR-10" if scale == "paper" else "MNIST-1D",
        "status": status,
        "reason": "",
        "metrics": metrics,
        "wall_s": 1.5,
        "env_fingerprint": "abc",
    }


def _grid(acc: dict[str, Any], seeds: int = 3, depths=("1", "3", "5"), **kw: Any) -> list[dict]:
    """Rows for fc: ``acc[method]`` is a function (depth, seed) -> accuracy."""
    return [
        _row("fc", {"method": m, "depth": d}, s, f(int(d), s), **kw)
        for m, f in acc.items()
        for d in depths
        for s in range(seeds)
    ]


BEATS = {
    "id": "enorm_wins",
    "statement": "ENorm beats the baseline",
    "kind": "a_beats_b",
    "a": {"experiment": "fc", "where": {"method": "enorm"}},
    "b": {"experiment": "fc", "where": {"method": "baseline"}},
}

_NOISE = np.random.default_rng(0).normal(0.0, 1.0, size=(10, 10))


def _noise(d: int, s: int) -> float:
    return float(_NOISE[d % 10, s])


def _claim(result: cmp.Comparison, cid: str) -> cmp.ClaimResult:
    return next(c for c in result.claims if c.id == cid)


def _judged(claim: dict[str, Any], rows: list[dict[str, Any]]) -> cmp.ClaimResult:
    """The claim judged by its kind alone, at its own α (no look: see test_looks.py for how a report
    spends α over looks)."""
    from restudy.api import EvaluationContext, claim_kind

    study = _study([claim])
    declared = study.claims[0]
    return claim_kind(declared.kind).evaluate(declared, EvaluationContext(study, "paper", "CIFAR-10", rows))


# ------------------------------------------------------------------------------- a_beats_b


def test_beats_reproduced_when_a_is_clearly_better() -> None:
    rows = _grid({"enorm": lambda d, s: 60 + _noise(d, s) + 3.0 + 0.1 * s, "baseline": lambda d, s: 60 + _noise(d, s)})
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "reproduced"
    comp = c.evidence["comparisons"][0]
    # 3 depths x 3 seeds: the test runs on the 3 per-seed means (paired streams), not 9 pairs
    assert comp["test"] == "paired-t" and comp["n"] == 3 and comp["pairs"] == 9
    assert comp["mean_diff"] == pytest.approx(3.1)
    assert "beats" in c.summary and "n=3 seeds" in c.summary


def test_a_side_that_did_not_learn_gives_no_verdict_unless_the_claim_is_about_it() -> None:
    """[Re] Zhang et al. saw Small Inception without BN stay at chance on train and test: "BN beats no
    BN" would then hold by a failed optimisation. Such a comparison is inconclusive, naming the
    side; a claim about not learning (``requires_learning: false``) keeps its verdict, flagged."""
    from restudy.compare.select import not_learned

    def stuck(r: dict[str, Any], train_acc: float) -> dict[str, Any]:
        return {**r, "metrics": {**r["metrics"], "train_acc": train_acc, "n_classes": 10, "n_train": 500}}

    # chance 10 %; a guessing model's SD on 500 examples is 1.34 pp, so the bound is 14.02 %
    base = _row("fc", {"method": "baseline"}, 0, 10.0)
    assert not_learned([stuck(base, 14.0)]) and not not_learned([stuck(base, 14.1)])
    assert not not_learned([base])  # no class count recorded: never counted
    rows = _grid({"enorm": lambda d, s: 90 + _noise(d, s), "baseline": lambda d, s: 10 + _noise(d, s)})
    rows = [stuck(r, 10.5) if r["variant"]["method"] == "baseline" else stuck(r, 99.0) for r in rows]
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "inconclusive" and c.evidence["comparisons"][0]["not_learned"] == {"baseline": 9}
    assert "⚠ did not learn (train accuracy within 3 binomial SDs of chance): 9 of 9 runs of baseline" in c.summary
    assert "give no verdict" in c.summary
    about_it = {**BEATS, "requires_learning": False}
    c = _claim(cmp.compare(_study([about_it]), "paper", rows), "enorm_wins")
    assert c.verdict == "reproduced" and "failed optimisation" in c.summary
    # both sides learned: no warning
    fine = [stuck(r, 99.0) for r in rows]
    c = _claim(cmp.compare(_study([BEATS]), "paper", fine), "enorm_wins")
    assert c.verdict == "reproduced" and "did not learn" not in c.summary


def test_beats_not_reproduced_when_a_is_clearly_worse() -> None:
    rows = _grid({"enorm": lambda d, s: 55 + _noise(d, s) - 0.2 * s, "baseline": lambda d, s: 60 + _noise(d, s)})
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "not_reproduced"
    assert c.seeds_needed is None


def test_beats_inconclusive_with_seeds_needed_for_small_effect() -> None:
    jitter = [0.9, -0.5, 0.1]
    rows = _grid(
        {"enorm": lambda d, s: 60 + _noise(d, s) + 0.3 + jitter[s], "baseline": lambda d, s: 60 + _noise(d, s)},
        seeds=3,
        depths=("1",),
        n_test=BIG_TEST,  # a test set whose own noise is negligible: only the seeds' spread decides
    )
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "inconclusive"
    assert isinstance(c.seeds_needed, int) and c.seeds_needed > 3
    assert str(c.seeds_needed) in c.summary


def test_beats_inconclusive_wrong_sign_estimates_seeds_to_refute() -> None:
    jitter = [0.9, -0.5, -0.6]
    rows = _grid(
        {"enorm": lambda d, s: 60 + _noise(d, s) - 0.05 + jitter[s], "baseline": lambda d, s: 60 + _noise(d, s)},
        depths=("1",),
        n_test=BIG_TEST,
    )
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "inconclusive" and isinstance(c.seeds_needed, int) and c.seeds_needed > 3
    assert "wrong sign" in c.summary and "does not hold" in c.summary


def test_beats_pairs_by_seed_and_free_axes() -> None:
    """Depth and seed move accuracy by tens of points; only the right pairing sees +0.5."""

    def base(d: int, s: int) -> float:
        return 40 + 5 * d + 7 * s

    rows = _grid({"enorm": lambda d, s: base(d, s) + 0.5 + 0.01 * s * d, "baseline": base}, seeds=3, n_test=BIG_TEST)
    rows = rows[::-1]  # order must not matter
    comp = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    ev = comp.evidence["comparisons"][0]
    assert comp.verdict == "reproduced"
    assert ev["by"] == ["seed_index", "depth"] and ev["n"] == 3 and ev["pairs"] == 9 and ev["unpaired_a"] == 0
    # Unpaired, the same numbers are hopeless: depth and seed swamp the effect.
    from restudy.stats.comparisons import welch_difference

    a = [r["metrics"]["test_acc"] for r in rows if r["variant"]["method"] == "enorm"]
    b = [r["metrics"]["test_acc"] for r in rows if r["variant"]["method"] == "baseline"]
    assert welch_difference(a, b, confidence=0.9).ci_low < 0


def test_beats_list_where_axis_is_paired_not_pinned() -> None:
    claim = {
        **BEATS,
        "a": {"experiment": "fc", "where": {"method": "enorm", "depth": ["3", "5"]}},
        "b": {"experiment": "fc", "where": {"method": "baseline", "depth": ["3", "5"]}},
    }
    rows = _grid(
        {"enorm": lambda d, s: 10 * d + s + 1.0 + 0.05 * s, "baseline": lambda d, s: 10 * d + s}, n_test=BIG_TEST
    )
    c = _claim(cmp.compare(_study([claim]), "paper", rows), "enorm_wins")
    assert c.verdict == "reproduced"
    assert c.evidence["comparisons"][0]["n"] == 3 and c.evidence["comparisons"][0]["pairs"] == 6


def test_beats_bonferroni_and_multiple_b() -> None:
    claim = {**BEATS, "b": [BEATS["b"], {"experiment": "fc", "where": {"method": "bn"}}]}
    rows = _grid(
        {
            "enorm": lambda d, s: 60 + _noise(d, s) + 3 + 0.1 * s,
            "baseline": lambda d, s: 60 + _noise(d, s),
            "bn": lambda d, s: 70 + _noise(d, s),
        }
    )
    c = _judged(claim, rows)
    # a must beat each b: each cell passes at α (intersection-union), one cell of one b refuting at
    # α/(3 depths x 2 b's) refutes the claim
    assert c.evidence["alpha_per_comparison"] == pytest.approx(0.05)
    assert [x["alpha_refute"] for x in c.evidence["comparisons"]] == pytest.approx([0.05 / 6, 0.05 / 6])
    assert [x["verdict"] for x in c.evidence["comparisons"]] == ["reproduced", "not_reproduced"]
    assert c.verdict == "not_reproduced"


def test_beats_falls_back_to_welch_without_pairs() -> None:
    claim = {**BEATS, "a": {"experiment": "bias", "where": {"method": "enorm"}}}
    rows = [_row("bias", {"method": "enorm"}, s + 10, 70.0 + 0.1 * s) for s in range(4)]
    rows += _grid({"baseline": lambda d, s: 60 + 0.2 * s}, depths=("1",), seeds=4)
    c = _claim(cmp.compare(_study([claim]), "paper", rows), "enorm_wins")
    ev = c.evidence["comparisons"][0]
    assert ev["test"] == "welch-t" and "Welch" in ev["fallback"]
    assert c.verdict == "reproduced"


def test_diverged_runs_count_failed_runs_do_not() -> None:
    rows = _grid({"enorm": lambda d, s: 70.0 + 0.1 * s, "baseline": lambda d, s: 60.0 + 0.3 * s}, depths=("1",))
    rows.append(_row("fc", {"method": "enorm", "depth": "1"}, 3, 10.0, status="diverged"))
    rows.append(_row("fc", {"method": "baseline", "depth": "1"}, 3, 60.0))
    rows.append(_row("fc", {"method": "enorm", "depth": "1"}, 4, None, status="failed"))
    result = cmp.compare(_study([BEATS]), "paper", rows)
    g = next(g for g in result.groups if g.variant_id == "method=enorm,depth=1")
    assert (g.n_runs, g.n_finished, g.n_diverged, g.n_failed) == (5, 3, 1, 1)
    assert g.metrics["test_acc"]["n"] == 4
    assert g.metrics["test_loss"]["n"] == 3  # NaN loss of the diverged run dropped
    assert _claim(result, "enorm_wins").evidence["comparisons"][0]["n"] == 4


# ------------------------------------------------------------------------------- trend


def _trend(direction: str) -> dict[str, Any]:
    return {
        "id": "grows",
        "statement": "advantage grows with depth",
        "kind": "trend",
        "select": {"experiment": "fc", "where": {"method": "enorm"}},
        "baseline": {"experiment": "fc", "where": {"method": "baseline"}},
        "over": "depth",
        "direction": direction,
    }


@pytest.mark.parametrize("direction,verdict", [("increasing", "reproduced"), ("decreasing", "not_reproduced")])
def test_trend_of_paired_difference(direction: str, verdict: str) -> None:
    rows = _grid(
        {"enorm": lambda d, s: 50 + _noise(d, s) + 1.0 * d + 0.1 * s, "baseline": lambda d, s: 50 + _noise(d, s)}
    )
    c = _claim(cmp.compare(_study([_trend(direction)]), "paper", rows), "grows")
    assert c.verdict == verdict
    assert c.evidence["slope"] == pytest.approx(1.0, abs=0.05)
    assert [lv["x"] for lv in c.evidence["levels"]] == [1.0, 3.0, 5.0]


def test_a_steady_rise_must_rise_at_every_step() -> None:
    """ENorm's advantage 5, 13.5 and 8.7 pp at depths 1, 3 and 5 (the enorm small study's 9/13/17
    shape): the linear slope over the depths is positive, but "grows with depth" read as a steady
    rise (shape: monotone) is refuted by the fall from depth 3 to 5."""
    gain = {1: 5.0, 3: 13.5, 5: 8.7}
    rows = _grid(
        {"enorm": lambda d, s: 70 + gain[d] + 0.2 * s, "baseline": lambda d, s: 70.0 + 0.1 * s},
        seeds=5,
        n_test=BIG_TEST,
    )
    linear = _claim(cmp.compare(_study([_trend("increasing")]), "paper", rows), "grows")
    assert linear.verdict == "reproduced"
    steady = _claim(cmp.compare(_study([{**_trend("increasing"), "shape": "monotone"}]), "paper", rows), "grows")
    assert steady.verdict == "not_reproduced"
    assert [(s["from"], s["to"], s["passed"], s["refuted"]) for s in steady.evidence["steps"]] == [
        (1.0, 3.0, True, False),
        (3.0, 5.0, False, True),
    ]


def test_trend_flat_is_inconclusive() -> None:
    wobble = [0.3, -0.4, 0.2]
    rows = _grid({"enorm": lambda d, s: 50 + wobble[s] + (0.1 if d == 3 else 0.0), "baseline": lambda d, s: 50.0})
    c = _claim(cmp.compare(_study([_trend("increasing")]), "paper", rows), "grows")
    assert c.verdict == "inconclusive"


# ------------------------------------------------------------------------------- threshold


def _threshold(op: str, value: float) -> dict[str, Any]:
    return {
        "id": "diverges",
        "statement": "ENorm with bias diverges",
        "kind": "threshold",
        "metric": "diverged",
        "select": {"experiment": "bias", "where": {"method": "enorm"}},
        "op": op,
        "value": value,
    }


@pytest.mark.parametrize(
    "k,n,op,value,verdict",
    [
        (10, 10, ">=", 0.5, "reproduced"),
        (0, 10, ">=", 0.5, "not_reproduced"),
        (3, 5, ">=", 0.5, "inconclusive"),
        (0, 10, "<=", 0.5, "reproduced"),
        (10, 10, "<=", 0.5, "not_reproduced"),
    ],
)
def test_threshold_divergence_rate(k: int, n: int, op: str, value: float, verdict: str) -> None:
    rows = [
        _row("bias", {"method": "enorm"}, s, 10.0 if s < k else 60.0, status="diverged" if s < k else "finished")
        for s in range(n)
    ]
    rows.append(_row("bias", {"method": "enorm"}, n, None, status="failed"))
    c = _claim(cmp.compare(_study([_threshold(op, value)]), "paper", rows), "diverges")
    assert c.verdict == verdict
    assert (c.evidence["k"], c.evidence["n"], c.evidence["n_failed"]) == (k, n, 1)
    assert c.evidence["ci_low"] <= k / n <= c.evidence["ci_high"]


def test_threshold_on_mean_accuracy() -> None:
    claim = {**_threshold(">=", 60.0), "metric": "test_acc"}
    rows = [_row("bias", {"method": "enorm"}, s, 70.0 + 0.2 * s) for s in range(4)]
    c = _judged(claim, rows)
    assert c.verdict == "reproduced"
    # an accuracy level reads in %, not in percentage points (which are for differences); the test
    # set's own noise is part of its interval
    assert c.summary.startswith("mean test_acc 70.30% (90% CI [") and c.summary.endswith("claimed ≥ 60%")
    assert "test-set SD 0.46 pp included" in c.summary


def test_threshold_over_several_cells_counts_seeds_not_cells() -> None:
    """Three depths of one seed are not three replicates: the runs are averaged within each seed
    index first, and one seed has no seed-to-seed spread to judge a mean by."""
    claim = {**_threshold(">=", 60.0), "select": {"experiment": "fc", "where": {"method": "enorm"}}}
    claim.update(metric="test_acc", quantifier="mean")
    one_seed = _grid({"enorm": lambda d, s: 70.0 + d}, seeds=1)
    c = _claim(cmp.compare(_study([claim]), "paper", one_seed), "diverges")
    assert c.verdict == "inconclusive" and "n=1 seeds" in c.summary and "one seed" in c.summary
    three = _grid({"enorm": lambda d, s: 70.0 + d + 0.3 * s}, seeds=3)
    c = _claim(cmp.compare(_study([claim]), "paper", three), "diverges")
    assert c.verdict == "reproduced" and c.evidence["n"] == 3 and c.evidence["runs"] == 9
    assert c.evidence["seed_means"] == pytest.approx([73.0, 73.3, 73.6])  # depths 1, 3, 5 averaged
    every = _claim(cmp.compare(_study([{**claim, "quantifier": "every"}]), "paper", three), "diverges")
    assert every.verdict == "reproduced" and [c["n"] for c in every.evidence["cells"]] == [3, 3, 3]


def test_every_randomization_must_clear_the_level_on_its_own() -> None:
    """ "Every randomization is fit (≥ 99 %)": Gaussian inputs at 98 % in every seed, the others at
    100 %. The pooled mean (99.2 %) passes; each variant tested on its own, the Gaussian one
    refutes the claim."""
    claim = {**_threshold(">=", 99.0), "select": {"experiment": "fc"}, "metric": "train_acc"}
    rows = []
    for r in _grid({"enorm": lambda d, s: 50.0}, seeds=8):
        fit = (98.0 if r["variant"]["depth"] == "5" else 100.0) - 0.05 * r["seed_index"]
        rows.append({**r, "metrics": {**r["metrics"], "train_acc": fit}})
    every = _claim(cmp.compare(_study([claim]), "paper", rows), "diverges")
    assert every.verdict == "not_reproduced"
    assert [(c["passed"], c["refuted"]) for c in every.evidence["cells"]] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    pooled = _claim(cmp.compare(_study([{**claim, "quantifier": "mean"}]), "paper", rows), "diverges")
    assert pooled.verdict == "reproduced"


def test_a_divergence_rate_counts_seeds_not_runs() -> None:
    """5 of 25 runs diverged over 5 depths x 5 seeds, one per seed: pooled, the rate's interval
    counts the 5 seeds (1.0 of 5), not the 25 runs, so "at most 50 % diverge" is not shown."""
    claim = {**_threshold("<=", 0.5), "quantifier": "mean", "select": {"experiment": "fc"}}
    rows = [
        _row("fc", {"method": "enorm", "depth": d}, s, 50.0, status="diverged" if int(d) == s else "finished")
        for d in ("0", "1", "2", "3", "4")
        for s in range(5)
    ]
    c = _claim(cmp.compare(_study([claim]), "paper", rows), "diverges")
    assert (c.evidence["k"], c.evidence["n"], c.evidence["runs"]) == (1, 5, 25)
    assert c.verdict == "inconclusive"


# ------------------------------------------------------------------------------- numeric cells


def _table(**kw: Any) -> dict[str, Any]:
    return {
        "id": "t1",
        "title": "Test accuracy",
        "document": "orig",
        "where": "Table 1",
        "metric": "test_acc",
        "scale": "paper",
        "dataset": "CIFAR-10",
        "rows": [1, 3],
        "columns": ["baseline", "enorm"],
        "values": {
            1: {"baseline": 60.0, "enorm": {"value": 62.0, "pm": 0.3, "n": 5}},
            3: {"baseline": 58.0, "enorm": None},
        },
        "layout": {"experiment": "fc", "row_axis": "depth", "column_axis": "method"},
        **kw,
    }


NUMERIC = {
    "id": "table1",
    "statement": "Table 1 is reproduced",
    "kind": "numeric",
    "cells": [{"table": "t1", "row": "1", "column": "baseline"}, {"table": "t1", "row": "1", "column": "enorm"}],
}


def _cell(result: cmp.Comparison, row: str, col: str) -> cmp.CellResult:
    return next(c for c in result.cells if (c.row, c.column) == (row, col))


def test_numeric_cells_equivalent_reproduced_far_not() -> None:
    jitter = [0.2, -0.1, 0.0, 0.1, -0.2, 0.05, -0.05, 0.15, -0.15, 0.0]
    rows = _grid(
        {"baseline": lambda d, s: 60.0 + jitter[s], "enorm": lambda d, s: 55.0 + jitter[s]},
        depths=("1", "3"),
        seeds=10,
    )
    result = cmp.compare(_study([NUMERIC], [_table()]), "paper", rows)
    near, far = _cell(result, "1", "baseline"), _cell(result, "1", "enorm")
    # 60.0 printed without ±: its SE is the binomial SD at 10,000 test images; δ = 3 of them + 0.05
    floor = 100 * math.sqrt(0.6 * 0.4 / N_TEST)
    assert near.reported_se == pytest.approx(floor) and near.tolerance == pytest.approx(3 * floor + 0.05)
    assert near.verdict == "reproduced" and near.n == 10 and -near.tolerance <= near.diff_low
    assert near.diff_high <= near.tolerance and near.alpha == pytest.approx(0.025)  # Bonferroni over 2 cells
    assert far.verdict == "not_reproduced" and far.diff_high < -far.tolerance
    assert far.rel_error == pytest.approx((55.0 - 62.0) / 62.0, rel=1e-5)
    assert far.light == "red" and (far.reported_pm, far.reported_n) == (0.3, 5)
    assert len(result.cells) == 3  # the None cell is not reported
    t = result.tables[0]
    assert t.n_cells == 3 and t.n_evaluated == 3 and t.comparable and "chance alone" in t.note
    assert t.msd == pytest.approx(
        np.mean([near.abs_error**2, far.abs_error**2, _cell(result, "3", "baseline").abs_error ** 2])
    )
    assert _claim(result, "table1").verdict == "not_reproduced"


def test_numeric_tolerance_rescues_a_cell() -> None:
    rows = _grid(
        {"baseline": lambda d, s: 60.0 + [0.2, -0.1, 0.0][s], "enorm": lambda d, s: 61.0 + [0.2, -0.1, 0.0][s]},
        depths=("1",),
    )
    claim = {**NUMERIC, "tolerance": 0.05}
    result = cmp.compare(_study([claim], [_table()]), "paper", rows)
    assert _cell(result, "1", "enorm").verdict == "reproduced"
    assert _claim(result, "table1").verdict == "reproduced"


def test_binomial_floor_keeps_identical_seeds_from_proving_agreement() -> None:
    rows = _grid({"baseline": lambda d, s: 60.3, "enorm": lambda d, s: 61.5}, depths=("1",), n_test=1000)
    result = cmp.compare(_study([NUMERIC], [_table()]), "paper", rows)
    cell = _cell(result, "1", "baseline")
    floor = 100 * math.sqrt(0.603 * 0.397 / 1000)
    assert cell.sd == pytest.approx(0.0, abs=1e-9)
    assert cell.sd_floor == pytest.approx(floor)
    # 3 identical seeds on 1,000 test images cannot show agreement within δ; about 20 would
    assert cell.verdict == "inconclusive" and cell.decides_towards == "equivalent"
    assert cell.seeds_needed is not None and 3 < cell.seeds_needed <= 30
    more = _grid({"baseline": lambda d, s: 60.3, "enorm": lambda d, s: 61.5}, depths=("1",), n_test=1000, seeds=30)
    assert _cell(cmp.compare(_study([NUMERIC], [_table()]), "paper", more), "1", "baseline").verdict == "reproduced"


def test_numeric_tiny_n_is_inconclusive_with_seeds() -> None:
    rows = _grid({"baseline": lambda d, s: 60.2, "enorm": lambda d, s: 62.0}, seeds=1, depths=("1",))
    result = cmp.compare(_study([NUMERIC], [_table()]), "paper", rows)
    cell = _cell(result, "1", "baseline")
    assert cell.verdict == "inconclusive" and cell.seeds_needed and cell.seeds_needed >= 3
    assert _claim(result, "table1").verdict == "inconclusive"


def test_numeric_not_evaluated_at_small_scale_with_note() -> None:
    rows = _grid({"baseline": lambda d, s: 90.0 + s, "enorm": lambda d, s: 91.0 + s}, depths=("1",), scale="small")
    claim = {**NUMERIC, "scales": ["paper", "small"]}
    result = cmp.compare(_study([claim], [_table()]), "small", rows)
    cell = _cell(result, "1", "baseline")
    assert cell.verdict == "not_evaluated" and cell.n == 3 and cell.mean == pytest.approx(91.0)
    assert "reported at paper scale on CIFAR-10" in cell.note
    assert "small scale on MNIST-1D" in cell.note
    assert not result.tables[0].comparable and "not comparable" in result.tables[0].note
    # numbers from other data are set side by side, not measured against each other: no relative
    # error, no traffic light, no squared deviation (a red light here would compare MNIST-1D with CIFAR-10)
    assert math.isnan(cell.rel_error) and cell.light == "gray" and math.isnan(cell.sq_dev)
    assert math.isnan(result.tables[0].msd)
    from restudy.display.tables import cells_table

    shown = cells_table([cell.to_dict()], comparable=False)
    assert shown["headers"] == ["cell", "reproduced mean ± SD (n)", "CI", "reported"]
    c = _claim(result, "table1")
    assert c.verdict == "not_evaluated" and "small scale on MNIST-1D" in c.scale_note
    # default numeric claim scales are [paper]
    result2 = cmp.compare(_study([NUMERIC], [_table()]), "small", rows)
    assert _claim(result2, "table1").verdict == "not_evaluated"


def test_rows_of_other_scales_are_ignored_and_a_scale_without_runs_is_not_evaluated() -> None:
    rows = _grid({"enorm": lambda d, s: 70.0, "baseline": lambda d, s: 60.0}, scale="small")
    result = cmp.compare(_study([BEATS]), "paper", rows)
    assert result.groups == [] and _claim(result, "enorm_wins").verdict == "not_evaluated"


def test_to_dict_is_strict_json_and_counts() -> None:
    rows = _grid({"enorm": lambda d, s: 70.0 + s, "baseline": lambda d, s: 60.0}, status="diverged")
    result = cmp.compare(_study([BEATS, NUMERIC], [_table()]), "paper", rows)
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert "NaN" not in text
    d = result.to_dict()
    assert set(d) >= {"study", "scale", "dataset", "groups", "cells", "tables", "claims"}
    assert sum(result.verdict_counts().values()) == 2


# ------------------------------------------------------------------------------- what may be pooled


def test_smoke_gives_no_verdict() -> None:
    rows = _grid({"enorm": lambda d, s: 90 + _noise(d, s), "baseline": lambda d, s: 80 + _noise(d, s)}, scale="smoke")
    claim = _claim(cmp.compare(_study([BEATS]), "smoke", rows), "enorm_wins")
    assert claim.verdict == "not_evaluated" and claim.summary == "not evaluated: smoke checks the pipeline only"


def test_runs_from_another_environment_enter_verdicts_only_when_allowed() -> None:
    rows = _grid({"enorm": lambda d, s: 90 + _noise(d, s), "baseline": lambda d, s: 80 + _noise(d, s)})
    other = {rows[0]["key"]}
    refused = _claim(cmp.compare(_study([BEATS]), "paper", rows, env_mismatch=other), "enorm_wins")
    assert refused.verdict == "inconclusive" and "--allow-mixed-env" in refused.summary
    allowed = _claim(
        cmp.compare(_study([BEATS]), "paper", rows, env_mismatch=other, allow_mixed_env=True), "enorm_wins"
    )
    assert allowed.verdict == "reproduced" and any("allow-mixed-env" in n for n in allowed.notes)


def test_verdicts_that_depend_on_a_calibrated_setting_say_so() -> None:
    study = _study([BEATS])
    data = study.model_dump()
    data["scales"]["paper"]["settings"] = {
        "optimizer.lr": {"value": 0.2, "provenance": "calibrated", "source": "tuned"}
    }
    calibrated = Study.model_validate(data)
    rows = _grid({"enorm": lambda d, s: 90 + _noise(d, s), "baseline": lambda d, s: 80 + _noise(d, s)})
    claim = _claim(cmp.compare(calibrated, "paper", rows), "enorm_wins")
    assert any("optimizer.lr=0.2" in n for n in claim.notes) and "calibrated" in claim.summary


def test_a_run_key_includes_its_scale() -> None:
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    study = load_study("enorm")
    small = {(s.experiment, s.variant_id, s.seed_index): s.key for s in plan(study, "small")}
    smoke = {(s.experiment, s.variant_id, s.seed_index): s.key for s in plan(study, "smoke")}
    assert not set(small.values()) & set(smoke.values())


def test_no_verdict_is_marked_borderline_and_the_old_flag_is_ignored_with_a_warning() -> None:
    """The 10 %-of-the-interval borderline mark did not predict which verdicts flip on a rerun: it is
    gone from results; a study's own kind that still passes it gets a DeprecationWarning."""
    from restudy.api import EvaluationContext

    diffs = [0.85, 1.85, 2.85]  # the 90 % CI's lower edge 0.16 lay within 10 % of its width of 0
    rows = [
        _row("fc", {"method": m, "depth": "1"}, s, 80.0 + (diffs[s] if m == "enorm" else 0.0), n_test=BIG_TEST)
        for m in ("enorm", "baseline")
        for s in range(3)
    ]
    claim = _judged(BEATS, rows)
    assert claim.verdict == "reproduced" and "borderline" not in claim.summary
    assert "borderline" not in claim.to_dict()
    study = _study([BEATS])
    ctx = EvaluationContext(study, "paper", "CIFAR-10", rows)
    with pytest.warns(DeprecationWarning, match="stability"):
        res = ctx.result(study.claims[0], "reproduced", "x", {}, borderline=True)
    assert res.summary == "x"


def test_a_claim_whose_levels_did_not_run_is_inconclusive_and_names_what_ran_and_what_it_needs() -> None:
    claims = [
        {
            "id": "deep",
            "statement": "ENorm beats the baseline on deep nets",
            "kind": "a_beats_b",
            "a": {"experiment": "fc", "where": {"method": "enorm", "depth": [5]}},
            "b": {"experiment": "fc", "where": {"method": "baseline", "depth": [5]}},
        },
        {
            "id": "rate",
            "statement": "deep BN nets rarely diverge",
            "kind": "threshold",
            "metric": "diverged",
            "op": "<=",
            "value": 0.5,
            "select": {"experiment": "fc", "where": {"method": "bn", "depth": 5}},
        },
        {
            "id": "grows",
            "statement": "accuracy grows with depth",
            "kind": "trend",
            "select": {"experiment": "bias"},
            "over": "method",
            "direction": "increasing",
        },
    ]
    rows = [
        _row("fc", {"method": m, "depth": d}, s, 80.0 + s, scale="small")
        for m in ("baseline", "enorm", "bn")
        for d in ("1", "3")
        for s in range(3)
    ]
    res = {c.id: c for c in cmp.compare(_study(claims), "small", rows).claims}
    assert res["deep"].verdict == "inconclusive"
    assert "it needs depth 5; depth ran 1, 3" in res["deep"].summary
    assert res["rate"].verdict == "inconclusive" and "depth ran 1, 3" in res["rate"].summary
    assert res["grows"].verdict == "inconclusive" and "experiment 'bias' has no runs" in res["grows"].summary


def test_a_tables_squared_deviation_criterion_averages_each_runs_square_in_its_unit():
    from restudy.compare.cells import averaged_squared_deviation, evaluate_cell
    from restudy.display.tables import cells_table
    from restudy.spec.reported import ReportedTable, SquaredDeviation, TableLayout

    crit = SquaredDeviation(below=0.5, unit=0.01, reason="the reproduction's rule, on fractions")
    layout = TableLayout(experiment="fc", row_axis="depth", column_axis="method")
    table = ReportedTable(
        id="t", title="t", document="d", scale="small", rows=["1"], columns=["a"],
        values={"1": {"a": 92.0}}, layout=layout, squared_deviation=crit,
    )  # fmt: skip
    runs = [
        {"key": f"k{i}", "experiment": "fc", "variant": {"depth": "1", "method": "a"}, "variant_id": "v",
         "seed_index": i, "status": "finished", "metrics": {"test_acc": v, "n_test": 1000}}
        for i, v in enumerate((89.0, 91.0))
    ]  # fmt: skip
    # runs at 89 and 91 against 92: ((0.03)² + (0.01)²) / 2 = 0.0005, from the mean and sample SD
    assert averaged_squared_deviation(90.0, math.sqrt(2.0), 2, 92.0, table) == pytest.approx(0.0005)
    cell = evaluate_cell(table, "1", "a", table.value("1", "a"), runs, "small", "digits")
    assert cell.sq_dev == pytest.approx(0.0005)
    shown = cells_table([cell.to_dict()], squared_deviation=crit)
    assert "avg. sq. dev. (consistent if < 0.5)" in shown["headers"]
    assert shown["rows"][0][6]["text"] == "0.0005 (consistent)"
    plain = table.model_copy(update={"squared_deviation": None})
    assert math.isnan(evaluate_cell(plain, "1", "a", table.value("1", "a"), runs, "small", "digits").sq_dev)
    assert "avg. sq. dev. (consistent if < 0.5)" not in cells_table([cell.to_dict()])["headers"]


# ------------------------------------------------------------------ claims tested as worded (issue cases)


def test_two_seeds_one_test_example_ahead_are_no_evidence() -> None:
    """Both seeds ahead by exactly one test example: zero spread, so the seeds alone would give
    p < 0.001. The test set's own noise (it does not shrink with seeds) and the one-example rule
    keep it from being 'reproduced', and no seed count is suggested: more seeds cannot settle it."""
    one = 100.0 / N_TEST
    rows = [
        _row("fc", {"method": m, "depth": "1"}, s, 90.0 + (one if m == "enorm" else 0.0))
        for m in ("enorm", "baseline")
        for s in range(2)
    ]
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "inconclusive" and c.seeds_needed is None
    comp = c.evidence["comparisons"][0]
    assert comp["test_set_sd"] > 0.4  # √(2·0.09)/√10000·100 = 0.42 pp with independent errors
    assert "test set's own sampling noise" in c.summary


def test_a_difference_below_the_test_sets_resolution_asks_for_no_seeds() -> None:
    """+0.13 pp on 10,000 test examples (1.3 examples): the [Re] ND study's 20-epoch gap. Before,
    this asked for 33 seeds; no seed count can separate it from the test set's own noise."""
    rows = _grid(
        {"enorm": lambda d, s: 93 + 0.13 + 0.05 * (s - 1), "baseline": lambda d, s: 93.0}, seeds=3, depths=("1",)
    )
    c = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert c.verdict == "inconclusive" and c.seeds_needed is None


def test_every_cell_must_pass_unless_the_claim_pools_them() -> None:
    """ENorm +20 pp at depth 1 but −3 pp at depths 3 and 5: "ENorm beats the baseline" (every depth,
    the default) is refuted by the deeper cells; pooled (quantifier: mean) it would pass on +4.7 pp."""
    gain = {1: 20.0, 3: -3.0, 5: -3.0}
    rows = _grid({"enorm": lambda d, s: 60 + gain[d] + 0.3 * s, "baseline": lambda d, s: 60.0 + 0.1 * s}, seeds=5)
    every = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    assert every.verdict == "not_reproduced"
    cells = every.evidence["comparisons"][0]["cells"]
    assert [(c["cell"], c["passed"], c["refuted"]) for c in cells] == [
        ("depth 1", True, False),
        ("depth 3", False, True),
        ("depth 5", False, True),
    ]
    mean = _claim(cmp.compare(_study([{**BEATS, "quantifier": "mean"}]), "paper", rows), "enorm_wins")
    assert mean.verdict == "reproduced"
    some = _claim(cmp.compare(_study([{**BEATS, "quantifier": "any"}]), "paper", rows), "enorm_wins")
    assert some.verdict == "reproduced"  # depth 1 passes at α/3


def test_most_cells_means_a_majority_each_tested_at_its_share_of_alpha() -> None:
    """ "For most depths ENorm is ahead": ahead at depths 3 and 5, behind at depth 1. With 3 cells a
    majority is 2: each of them must pass at α/2 (at most 2 of the 3 could be null when it
    matters); 'every' is refuted by depth 1; 'most' is reproduced."""
    from restudy.compare.quantifiers import cell_alphas, combine_cells, required

    assert [required(q, 5) for q in ("every", "most", "any")] == [5, 3, 1]
    assert cell_alphas("most", 5, 0.05) == pytest.approx((0.05 / 3, 0.05 / 3))
    assert cell_alphas("every", 5, 0.05, groups=2) == pytest.approx((0.05, 0.005))
    assert combine_cells("most", [True, True, False], [False, False, True]) == "reproduced"
    assert combine_cells("most", [True, False, False], [False, True, True]) == "not_reproduced"
    gain = {1: -3.0, 3: 6.0, 5: 8.0}
    rows = _grid({"enorm": lambda d, s: 60 + gain[d] + 0.3 * s, "baseline": lambda d, s: 60.0 + 0.1 * s}, seeds=5)
    every = _claim(cmp.compare(_study([BEATS]), "paper", rows), "enorm_wins")
    most = _claim(cmp.compare(_study([{**BEATS, "quantifier": "most"}]), "paper", rows), "enorm_wins")
    assert (every.verdict, most.verdict) == ("not_reproduced", "reproduced")


# ------------------------------------------------------------------------ shares and relations

SHARE = {"at_least": 0.5, "printed": "2 of 4", "reason": "'most' allows any majority"}


def test_a_share_of_cells_is_bounded_by_the_decided_cells_and_checked_against_its_band() -> None:
    """ "N of M better": each cell decided at α/M, the undecided ones counted on both sides; the
    claim holds only when every share the decisions allow lies in the band."""
    from restudy.compare.quantifiers import cell_alphas, combine_cells, counts_text
    from restudy.spec.claim_base import ShareBand

    band = ShareBand(**SHARE)
    assert cell_alphas("share", 4, 0.05) == pytest.approx((0.0125, 0.0125))
    assert combine_cells("share", [True, True, False, False], [False, False, True, True], band) == "reproduced"
    # 1 pass, 1 undecided: the share lies in [25 %, 50 %], it may or may not reach the band
    assert combine_cells("share", [True, False, False, False], [False, False, True, True], band) == "inconclusive"
    assert combine_cells("share", [True, False, False, False], [False, True, True, True], band) == "not_reproduced"
    few = ShareBand(at_most=0.25, reason="'few'")
    assert combine_cells("share", [True, False, False, False], [False, True, True, True], few) == "reproduced"
    assert combine_cells("share", [True, True, False, False], [False, False, True, True], few) == "not_reproduced"
    text = counts_text("share", [True, False, False, False], [False, False, True, True], band)
    assert "between 25% and 50%" in text and "≥ 50% (2 of 4 printed)" in text


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"quantifier": "share"}, ["quantifier share needs share"]),
        ({"share": SHARE}, ["share is read only with quantifier: share"]),
        ({"quantifier": "share", "share": {"reason": "x"}}, ["at_least, at_most or both"]),
        ({"quantifier": "share", "share": {"at_least": 0.8, "at_most": 0.5, "reason": "x"}}, ["above at_most"]),
        ({"quantifier": "share", "share": {"at_least": 1.5, "reason": "x"}}, ["at_least", "less than or equal to 1"]),
        ({"relation": "bigger"}, ["relation", "'equivalent', 'at_least', 'above' or 'below'"]),
    ],
)
def test_a_bad_share_or_relation_names_the_field_and_what_is_allowed(fields: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(Exception) as err:
        _study([{**NUMERIC, **fields}], [_table()])
    assert all(w in str(err.value) for w in words), str(err.value)


def _above_rows(leads: dict[tuple[str, str], float], seeds: int = 6) -> list[dict[str, Any]]:
    """Runs for t1's cells at reported + lead (+ a little seed noise)."""
    reported = {("1", "baseline"): 60.0, ("1", "enorm"): 62.0, ("3", "baseline"): 58.0}
    return [
        _row("fc", {"method": m, "depth": d}, s, reported[(d, m)] + lead + 0.05 * (s % 3), n_test=BIG_TEST)
        for (d, m), lead in leads.items()
        for s in range(seeds)
    ]


def test_reproduced_with_better_results_counts_cells_above_the_reported_values() -> None:
    """'2 of 3 values were reproduced with better results': every cell of the table (``tables``),
    each tested above its printed value; the share must reach the band."""
    claim = {
        **NUMERIC,
        "cells": [],
        "tables": ["t1"],
        "relation": "above",
        "quantifier": "share",
        "share": {"at_least": 0.6, "printed": "2 of 3", "reason": "the printed share less one cell's worth"},
    }
    good = _above_rows({("1", "baseline"): 1.0, ("1", "enorm"): 2.0, ("3", "baseline"): -1.0})
    res = _claim(cmp.compare(_study([claim], [_table()]), "paper", good), "table1")
    assert res.verdict == "reproduced", res.summary
    assert len(res.evidence["cells"]) == 3 and res.evidence["relation"] == "above"
    bad = _above_rows({("1", "baseline"): 1.0, ("1", "enorm"): -2.0, ("3", "baseline"): -1.0})
    assert _claim(cmp.compare(_study([claim], [_table()]), "paper", bad), "table1").verdict == "not_reproduced"


def test_at_least_is_the_one_sided_colour_rule() -> None:
    """'Reproducible within 10 %' read as the reproduction's colour rule: a value may be higher by
    any amount, and lower by at most 10 %; equivalence would refute the higher one."""
    claim = {**NUMERIC, "relation": "at_least", "tolerance": 0.10, "tolerance_reason": "the report's rule"}
    high = _above_rows({("1", "baseline"): 15.0, ("1", "enorm"): -3.0})
    assert _claim(cmp.compare(_study([claim], [_table()]), "paper", high), "table1").verdict == "reproduced"
    eq = {**claim, "relation": "equivalent"}
    assert _claim(cmp.compare(_study([eq], [_table()]), "paper", high), "table1").verdict == "not_reproduced"
    low = _above_rows({("1", "baseline"): 0.0, ("1", "enorm"): -10.0})  # 62 − 10 = 52 < 0.9 × 62 = 55.8
    assert _claim(cmp.compare(_study([claim], [_table()]), "paper", low), "table1").verdict == "not_reproduced"
