"""The enorm study's coverage of its seed (rep2019, the ENorm reproducibility report) and the parts
its own module adds: the output-softmax net of rep2019 §4.1 and the run metric that tests the
uniqueness of ENorm's fixed point (rep2019 §1)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from restudy.api import EvaluationContext, claim_kind, create
from restudy.methods.enorm import balanced_layers
from restudy.spec.coverage import coverage_counts
from restudy.spec.studyfile import load_study
from restudy.studies.enorm import balance_to_fixed_point, enorm_fixed_point, fc_softmax_output


@pytest.fixture(scope="module")
def study() -> Any:
    return load_study("enorm")


def _claim(study: Any, cid: str) -> Any:
    return next(c for c in study.claims if c.id == cid)


# ------------------------------------------------------------------------------- coverage


def test_coverage_lists_every_seed_claim_with_a_test_or_a_reason(study: Any) -> None:
    counts = coverage_counts(study, "small")
    assert counts["claims"] == 21  # the seed's distinct claims: 5 restated from the paper, 16 of its own
    assert counts["tested"] >= 19 and counts["tested"] / counts["claims"] >= 0.9
    assert counts["at_scale"] >= 12  # most get a verdict from the small scale's runs
    ids = {c.id for c in study.claims}
    for entry in study.coverage:
        assert entry.document == "rep2019"
        assert entry.where
        assert set(entry.tested_by) <= ids
        if not entry.tested_by:
            assert len(entry.untested) > 80  # a reason a reader can check, not a placeholder
    untested = {e.says[:40] for e in study.coverage if not e.tested_by}
    assert untested == {
        "our baseline accuracy was slightly highe",
        "We report our findings as well as some i",
    }


def test_the_sentences_quantifiers_reach_the_claims(study: Any) -> None:
    """'almost all', 'consistently', 'always', 'generally', 'for most values of p' are counts over
    depths, each depth tested on its own, never one pooled mean."""
    assert _claim(study, "enorm_beats_baseline_almost_every_depth").quantifier == "share"
    assert _claim(study, "enorm_beats_baseline_almost_every_depth").share.at_least == 0.8
    assert _claim(study, "enorm_bn_beats_bn_consistently").quantifier == "every"
    assert _claim(study, "bias_enorm_deep_diverges").quantifier == "every"
    for cid in ("enorm_bn_is_best", "enorm_beats_bn", "bias_nets_beat_bias_free"):
        assert _claim(study, cid).quantifier == "most"
    # "grows": each step of depth, not a slope that a fall at the deepest step leaves positive
    assert _claim(study, "enorm_advantage_grows_with_depth").shape == "monotone"


def test_claims_the_small_scale_cannot_judge_wait_for_paper_scale(study: Any) -> None:
    for cid in (
        "enorm_trains_faster_than_bn",
        "bn_slows_training",
        "enorm_c_1_2_not_beaten",
        "enorm_bn_lr_0_05_better_deep",
        "enorm_bn_beats_bn_at_19_averaged",
        "bias_enorm_nan_after_one_epoch",
        "bias_baseline_gain_slight",
    ):
        assert _claim(study, cid).scales == ["paper"], cid


# ------------------------------------------------------------------------------- fc_softmax_output


def test_softmax_output_net_is_fc_with_probabilities_out() -> None:
    x = torch.randn(6, 40, generator=torch.Generator().manual_seed(1))
    args = {"input_shape": (40,), "num_classes": 10, "hidden": 3, "width": 16}
    plain = create("model", "fc", generator=torch.Generator().manual_seed(0), **args)
    soft = fc_softmax_output(generator=torch.Generator().manual_seed(0), **args)
    with torch.no_grad():
        z, p = plain(x), soft(x)
    assert torch.allclose(p.sum(dim=1), torch.ones(6), atol=1e-6)
    assert torch.allclose(p, torch.softmax(z, dim=1), atol=1e-6)  # same weights, softmax on top
    assert len(balanced_layers(soft)) == len(balanced_layers(plain)) == 5  # ENorm sees the same layers


# ------------------------------------------------------------------------------- enorm_fixed_point


def _net(hidden: int = 4, seed: int = 0) -> nn.Sequential:
    return create(
        "model",
        "fc",
        input_shape=(12,),
        num_classes=5,
        hidden=hidden,
        width=10,
        generator=torch.Generator().manual_seed(seed),
    )


def test_fixed_point_is_reached_from_equivalent_starts() -> None:
    out = enorm_fixed_point(model=_net())
    assert out["enorm_uniqueness_gap"] < 1e-9
    assert out["enorm_energy_rise"] <= 1e-12  # block-coordinate descent: the energy never rises
    assert out["enorm_cycles"] > 1


def test_balancing_keeps_the_function_and_lowers_the_energy() -> None:
    net = _net(hidden=3, seed=2)
    ws = [m.weight.detach() for m in net.modules() if isinstance(m, nn.Linear)]
    balanced, _, _ = balance_to_fixed_point(ws)
    x = torch.randn(7, 12, dtype=torch.float64)

    def run(weights: list[torch.Tensor]) -> torch.Tensor:
        h = x
        for w in weights[:-1]:
            h = torch.relu(h @ w.T)
        return h @ weights[-1].T

    assert torch.allclose(run([w.double() for w in ws]), run(balanced), atol=1e-9)
    assert sum((w * w).sum() for w in balanced) < sum((w.double() ** 2).sum() for w in ws)


def test_a_dead_unit_breaks_uniqueness_and_the_metric_says_so() -> None:
    """A hidden unit with no incoming weights has no finite balancing scale: its outgoing weights
    keep whatever scale they start with, so the two starts end apart."""
    net = _net()
    with torch.no_grad():
        next(m for m in net.modules() if isinstance(m, nn.Linear)).weight[0].zero_()
    assert enorm_fixed_point(model=net)["enorm_uniqueness_gap"] > 1e-3


def test_nets_the_theorem_does_not_cover_get_no_value() -> None:
    biased = create("model", "fc", input_shape=(12,), num_classes=5, hidden=2, width=8, bias=True)
    bn = create("model", "fc", input_shape=(12,), num_classes=5, hidden=2, width=8, norm="bn")
    for net in (biased, bn):
        assert all(math.isnan(v) for v in enorm_fixed_point(model=net).values())


def _fixed_point_rows(gaps: dict[str, list[float]]) -> list[dict[str, Any]]:
    rows = []
    for depth, values in gaps.items():
        for method in ("baseline", "enorm"):
            for seed, gap in enumerate(values):
                variant = {"method": method, "depth": depth}
                rows.append(
                    {
                        "key": f"fp-{method}-{depth}-{seed}",
                        "experiment": "fc_fixed_point",
                        "variant": variant,
                        "variant_id": f"method={method},depth={depth}",
                        "seed_index": seed,
                        "scale": "small",
                        "dataset": "MNIST-1D",
                        "status": "finished",
                        "reason": "",
                        "metrics": {"test_acc": 50.0, "n_test": 1000, "enorm_uniqueness_gap": gap, "diverged": 0.0},
                        "wall_s": 1.0,
                        "env_fingerprint": "abc",
                    }
                )
    return rows


@pytest.mark.parametrize(
    ("gaps", "verdict"),
    [
        ({"5": [1e-13] * 5, "13": [2e-13, 1e-13, 3e-13, 1e-13, 2e-13]}, "reproduced"),
        ({"5": [1e-13] * 5, "13": [0.3, 0.4, 0.35, 0.3, 0.45]}, "not_reproduced"),
        ({"5": [1e-13] * 5, "13": [1e-13, 0.5, 1e-13, 0.4, 1e-13]}, "inconclusive"),
    ],
)
def test_fixed_point_claim_on_constructed_runs(study: Any, gaps: dict[str, list[float]], verdict: str) -> None:
    claim = _claim(study, "enorm_fixed_point_unique")
    ctx = EvaluationContext(study, "small", "MNIST-1D", _fixed_point_rows(gaps))
    assert claim_kind(claim.kind).evaluate(claim, ctx).verdict == verdict
