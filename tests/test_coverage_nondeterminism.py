"""The nondeterminism study's coverage of its reproduction report (rep2022) and the study's own
claim kinds (``restudy.studies.nondeterminism.claims``), each judged on constructed runs or on the
report's printed numbers: reproduced, not reproduced and inconclusive."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from restudy.api import EvaluationContext, claim_kind
from restudy.spec.coverage import coverage_counts
from restudy.spec.study import Study
from restudy.spec.studyfile import load_study
from restudy.studies.nondeterminism import printed as nd


@pytest.fixture(scope="module")
def study() -> Study:
    return load_study("nondeterminism")


def _judge(study: Study, claim: Any, rows: list[dict[str, Any]] | None = None, predictions: Any = None) -> Any:
    ctx = EvaluationContext(study, "small", "digits", rows or [], predictions=predictions)
    return claim_kind(claim.kind).evaluate(claim, ctx)


def _claim(study: Study, cid: str) -> Any:
    return next(c for c in study.claims if c.id == cid)


# ------------------------------------------------------------------------------- coverage


def test_the_coverage_lists_every_claim_of_the_report_and_tests_at_least_95_percent(study: Study) -> None:
    counts = coverage_counts(study, "paper")
    assert counts["claims"] == 21, "one entry per distinct claim of the reproduction report"
    assert counts["tested"] / counts["claims"] >= 0.95
    assert counts["at_scale"] == counts["tested"], "every tested claim gets a verdict when paper scale runs"
    assert coverage_counts(study, "small")["at_scale"] >= 15, "most are judged on the small scale's runs too"
    assert {e.document for e in study.coverage} == {"rep2022"} and all(e.where for e in study.coverage)


def test_the_one_untested_claim_is_the_causal_attribution_and_says_why(study: Study) -> None:
    untested = [e for e in study.coverage if e.untested]
    assert len(untested) == 1
    assert "due to the lower accuracy" in untested[0].says
    assert "no run set isolates accuracy" in untested[0].untested


def test_the_findings_that_were_only_table_cells_now_have_claims(study: Study) -> None:
    tested = {cid for e in study.coverage for cid in e.tested_by}
    for cid in (
        "combined_sources_like_all",  # Table 4's combined rows
        "c100_sources_and_one_bit_comparable_paper",  # Table 10
        "c100_mean_accuracy_63_paper",  # '63 % average accuracy on CIFAR-100'
        "longer_training_more_diverse_onebit",  # Table 9's bit-change rows
        "model_count_leaves_metrics_onebit",  # Table 8's bit-change rows
        "table7_differs_from_original_by_more_than_10_percent",  # Table 7 vs Table 6
    ):
        assert cid in tested, cid
    by_says = {e.says: e for e in study.coverage}
    three = next(e for s, e in by_says.items() if "about three times" in s)
    assert three.tested_by == ["c100_variability_about_three_times_paper"]


def test_every_band_the_verdict_reads_has_its_reason(study: Study) -> None:
    banded = [c for c in study.claims if getattr(c, "relation", "") in ("comparable", "inside", "outside")]
    banded += [c for c in study.claims if c.kind in ("train_time_within", "variability_scaled")]
    assert len(banded) >= 20
    for c in banded:
        assert c.band_reason, c.id


# ------------------------------------------------------------------------------- printed numbers


def test_the_originals_printed_reductions_follow_its_own_formula_and_the_corrected_ones_the_recalculation(
    study: Study,
) -> None:
    assert _judge(study, _claim(study, "original_reductions_follow_the_original_formula")).verdict == "reproduced"
    assert _judge(study, _claim(study, "original_reductions_recalculated")).verdict == "reproduced"
    # the other formula does not give the printed values: the check can fail
    swapped = _claim(study, "original_reductions_follow_the_original_formula").model_copy(
        update={"formula": "recalculated"}
    )
    result = _judge(study, swapped)
    assert result.verdict == "not_reproduced" and "acc_ens 36.8" in result.summary


def test_printed_arithmetic_reproduced_not_reproduced_or_undecided_by_the_printed_digits(study: Study) -> None:
    slight = _judge(study, _claim(study, "reproduction_reductions_slightly_above_recalculated"))
    assert slight.verdict == "reproduced" and "mean over 8 pairs 2.25" in slight.summary
    # 48 / 37 is 1.27-1.33 whatever the unprinted digits: not 'about 20 % higher' of the calculated value
    twenty = _judge(study, _claim(study, "original_reductions_about_20_percent_higher"))
    assert twenty.verdict == "not_reproduced" and "Acc.Ens.: 48 / 37 = 1.30" in twenty.summary
    # 0.17 / 0.19 = 0.89 printed, but 0.175 / 0.185 = 0.95 rounds to the same digits
    ten = _judge(study, _claim(study, "table7_differs_from_original_by_more_than_10_percent"))
    assert ten.verdict == "inconclusive" and "3 undecided by the printed digits" in ten.summary


def test_printed_intervals_and_their_arithmetic() -> None:
    assert nd.printed_interval("37") == (37.0, 36.5, 37.5)
    v, lo, hi = nd.printed_interval("0.0072")
    assert v == 0.0072 and math.isclose(lo, 0.00715) and math.isclose(hi, 0.00725)
    assert nd.arithmetic_interval("difference", (1.5, 2.5), (0.5, 1.5)) == (0.0, 2.0)
    assert nd.arithmetic_interval("ratio", (2.0, 4.0), (1.0, 2.0)) == (1.0, 4.0)
    assert nd.arithmetic_interval("ratio", (1.0, 2.0), (-1.0, 1.0)) == (-math.inf, math.inf)
    assert nd.band_verdict(1.0, 2.0, (0.0, 3.0)) == "reproduced"
    assert nd.band_verdict(1.0, 2.0, (0.0, 3.0), "outside") == "not_reproduced"
    assert nd.band_verdict(4.0, 5.0, (0.0, 3.0), "outside") == "reproduced"
    assert nd.band_verdict(2.0, 4.0, (0.0, 3.0)) == "inconclusive"
    assert nd.combine_pairs("any", ["inconclusive", "reproduced"]) == "reproduced"
    assert nd.combine_pairs("any", ["not_reproduced", "inconclusive"]) == "inconclusive"
    assert nd.combine_pairs("every", ["reproduced", "not_reproduced"]) == "not_reproduced"


def test_a_printed_number_is_a_cell_or_a_value_with_where_it_is_printed(study: Study) -> None:
    def problems(left: dict[str, Any]) -> list[str]:
        claim = _claim(study, "reproduction_reductions_slightly_above_recalculated")
        pair = {"label": "x", "left": left, "right": {"value": "1", "where": "y"}}
        return [p[1] for p in claim.model_copy(update={"pairs": [pair]}).problems(study)]

    assert problems({"table": "reduction", "row": "single", "column": "sd_accuracy"}) == []
    assert "not both" in problems({"table": "reduction", "row": "single", "column": "x", "value": "1"})[0]
    assert "needs 'where'" in problems({"value": "37"})[0]
    assert "has no row 'nope'" in problems({"table": "reduction", "row": "nope", "column": "x"})[0]


# ------------------------------------------------------------------------------- constructed runs


def _toy(claims: list[dict[str, Any]]) -> Study:
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy",
            "paper": {"title": "A toy paper"},
            "documents": [{"id": "rep", "kind": "reproduction", "title": "The report"}],
            "experiments": [{"id": e} for e in ("a", "b", "loud")],
            "scales": {"small": {"dataset": "digits"}},
            "claims": claims,
        }
    )


def _row(exp: str, seed: int, **metrics: float) -> dict[str, Any]:
    return {
        "key": f"{exp}-{seed}",
        "experiment": exp,
        "variant": {},
        "variant_id": "-",
        "seed_index": seed,
        "scale": "small",
        "dataset": "digits",
        "status": "finished",
        "reason": "",
        "metrics": {"test_acc": 50.0, "n_test": 1000, **{k: v for k, v in metrics.items() if k != "train_s"}},
        "train_s": metrics.get("train_s", 1.0),
        "wall_s": 1.0,
        "env_fingerprint": "abc",
    }


TIME = {
    "id": "cost",
    "statement": "a trains in b's time",
    "kind": "train_time_within",
    "a": {"experiment": "a"},
    "b": {"experiment": "b"},
    "band": [0.9, 1.11],
    "band_reason": "'1x'",
}


@pytest.mark.parametrize(
    ("ratio", "spread", "seeds", "verdict"),
    [(1.0, 0.01, 10, "reproduced"), (1.5, 0.01, 10, "not_reproduced"), (1.0, 0.3, 3, "inconclusive")],
)
def test_training_time_ratio_inside_the_band(ratio: float, spread: float, seeds: int, verdict: str) -> None:
    noise = np.random.default_rng(1).normal(0.0, spread, seeds)
    rows = [_row("b", s, train_s=2.0) for s in range(seeds)]
    rows += [_row("a", s, train_s=2.0 * ratio * math.exp(noise[s])) for s in range(seeds)]
    study = _toy([TIME])
    result = _judge(study, study.claims[0], rows)
    assert result.verdict == verdict, result.summary


MEAN = {
    "id": "acc63",
    "statement": "63 % on average",
    "kind": "mean_metric",
    "select": [{"experiment": "a"}, {"experiment": "b"}],
    "printed": {"value": "63", "where": "the report"},
}


@pytest.mark.parametrize(
    ("centre", "spread", "seeds", "verdict"),
    [(63.0, 0.2, 20, "reproduced"), (60.0, 0.2, 20, "not_reproduced"), (63.0, 3.0, 3, "inconclusive")],
)
def test_a_pooled_mean_within_the_printed_values_rounding(
    centre: float, spread: float, seeds: int, verdict: str
) -> None:
    noise = np.random.default_rng(2).normal(0.0, spread, (2, seeds))
    rows = [_row(e, s, test_acc=centre + noise[i, s]) for i, e in enumerate("ab") for s in range(seeds)]
    study = _toy([MEAN])
    result = _judge(study, study.claims[0], rows)
    assert result.verdict == verdict, result.summary
    assert f"over {2 * seeds} runs" in result.summary


# Model sets: every model's logits are a shared signal plus its own noise; the noise scale sets how
# much the models vary ('loud' varies far more than 'a' and 'b').
N, C = 1500, 10
_RNG = np.random.default_rng(0)
LABELS = _RNG.integers(0, C, N)
SIGNAL = 2.0 * np.eye(C)[LABELS] + _RNG.normal(size=(N, C))
NOISE = {"a": 1.0, "b": 1.0, "loud": 3.0}


def _predictions(key: str, view: str) -> tuple[np.ndarray, np.ndarray] | None:
    exp, seed = key.rsplit("-", 1)
    draw = np.random.default_rng(1000 * list(NOISE).index(exp) + int(seed))
    return (SIGNAL + NOISE[exp] * draw.normal(size=(N, C))).astype(np.float32), LABELS


def _scaled(band: list[float], group: str = "b") -> dict[str, Any]:
    return {
        "id": "scaled",
        "statement": "about as variable",
        "kind": "variability_scaled",
        "groups": [{"experiment": group}],
        "references": [{"experiment": "a"}],
        "band": band,
        "band_reason": "test",
    }


@pytest.mark.parametrize(
    ("group", "band", "models", "verdict"),
    [
        ("b", [0.8, 1.25], 30, "reproduced"),  # same noise
        ("loud", [0.8, 1.25], 30, "not_reproduced"),  # far more variable
        ("loud", [1.5, 100.0], 30, "reproduced"),  # a band that excludes 1
        ("b", [0.95, 1.05], 4, "inconclusive"),  # too few models for a narrow band
    ],
)
def test_a_sets_overall_variability_against_its_own_reference(
    group: str, band: list[float], models: int, verdict: str
) -> None:
    rows = [_row(e, s) for e in NOISE for s in range(models)]
    study = _toy([_scaled(band, group)])
    result = _judge(study, study.claims[0], rows, _predictions)
    assert result.verdict == verdict, result.summary


def test_each_group_needs_its_own_reference() -> None:
    with pytest.raises(Exception, match="one each"):
        _toy([{**_scaled([0.8, 1.25]), "references": [{"experiment": "a"}, {"experiment": "b"}]}])
