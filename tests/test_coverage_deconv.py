"""The deconv study's coverage of the [Re] Network Deconvolution report, and the study's own claim
kinds for its findings, judged on constructed run rows with known numbers: each can reproduce,
fail and stay inconclusive."""

from __future__ import annotations

import math
from typing import Any

from restudy import plugins
from restudy.api import INCONCLUSIVE, NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED, EvaluationContext, claim_kind
from restudy.spec.coverage import coverage_counts
from restudy.spec.study import Study
from restudy.spec.studyfile import load_study

plugins.import_study_module("restudy.studies.deconv")

from restudy.studies.deconv.coverage_claims import patch_correlation, peak_gpu_mem  # noqa: E402
from restudy.studies.deconv.small import deconv_small_cnn  # noqa: E402


def test_the_coverage_lists_every_claim_of_the_reproduction_report_and_tests_at_least_95_percent():
    study = load_study("deconv")
    counts = coverage_counts(study, "paper")
    assert counts["claims"] >= 21 and counts["tested"] / counts["claims"] >= 0.95
    assert counts["at_scale"] == counts["tested"]  # every tested claim gets a verdict when paper scale runs
    untested = [e for e in study.coverage if e.untested]
    assert [e.says[:26] for e in untested] == ["Of the 59 citation context"]
    says = " ".join(e.says for e in study.coverage)
    for sentence in ("36 out of 60", "9 out of 14", "outweigh the increased training time", "Single-epoch"):
        assert sentence in says
    claims = {c.id: c for c in study.claims}
    assert all(cid in claims for e in study.coverage for cid in e.tested_by)
    # the small scale judges the directions its stand-in runs can show
    small = {cid for e in study.coverage for cid in e.tested_by if "small" in claims[cid].scales}
    assert {"nd_beats_bn_on_average", "nd_slower_every_cell", "nd_gains_outweigh_time"} <= small
    assert coverage_counts(study, "small")["at_scale"] >= 5


def test_the_study_file_errors_found_by_the_coverage_analysis_are_fixed():
    study = load_study("deconv")
    lay = study.table("re_time_imagenet").layout
    assert (lay.experiment, lay.row_axis, lay.column_axis) == ("imagenet", "model", "norm")
    assert {e.id: e.seeds for e in study.experiments}["imagenet"] >= 2
    claims = {c.id: c for c in study.claims}
    assert "enhances the training" in claims["nd_advantage_largest_at_1_epoch"].source
    assert claims["table1_cifar10_20_epochs_re_criterion"].relation == "at_least"


# --------------------------------------------------------------------------- constructed runs


def _study(claims: list[dict[str, Any]], tables: list[dict[str, Any]] | None = None) -> Study:
    axes = {
        "model": {"x": {}, "y": {}, "z": {}},
        "norm": {"bn": {}, "nd": {}},
        "epochs": {"path": "epochs", "values": [1, 20]},
    }
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy",
            "paper": {"title": "A toy paper"},
            "documents": [{"id": "orig", "kind": "original", "title": "The paper"}],
            "experiments": [{"id": "t", "axes": axes}],
            "scales": {"paper": {"dataset": "CIFAR-10"}, "small": {"dataset": "digits"}},
            "tables": tables or [],
            "claims": claims,
        }
    )


def _row(variant: dict[str, str], seed: int, acc: float, wall: float = 1.0, train: float = 1.0) -> dict[str, Any]:
    vid = ",".join(f"{k}={v}" for k, v in variant.items())
    return {
        "key": f"t-{vid}-{seed}",
        "experiment": "t",
        "variant": variant,
        "variant_id": vid,
        "seed_index": seed,
        "scale": "paper",
        "dataset": "CIFAR-10",
        "status": "finished",
        "reason": "",
        "metrics": {"test_acc": acc, "test_acc_best": acc, "train_acc": acc, "n_test": 10**7, "diverged": 0.0},
        "wall_s": wall,
        "train_s": train,
        "env_fingerprint": "abc",
    }


def _judge(claim: dict[str, Any], rows: list[dict[str, Any]], tables=None, scale: str = "paper") -> Any:
    study = _study([{"statement": "s", **claim}], tables)
    declared = study.claims[0]
    return claim_kind(declared.kind).evaluate(declared, EvaluationContext(study, scale, "CIFAR-10", rows))


def _grid(f, seeds: int = 5, models=("x", "y", "z"), epochs=("1", "20")) -> list[dict[str, Any]]:
    """Rows of every (model, norm, epochs, seed); ``f(model, norm, epochs, seed)`` → (acc, wall)."""
    out = []
    for m in models:
        for n in ("bn", "nd"):
            for e in epochs:
                for s in range(seeds):
                    acc, wall = f(m, n, e, s)
                    out.append(_row({"model": m, "norm": n, "epochs": e}, s, acc, wall=wall, train=wall))
    return out


JITTER = [0.3, -0.2, 0.1, -0.4, 0.2]


def test_gap_contrast_says_which_network_has_the_largest_nd_minus_bn_time_gap():
    claim = {
        "id": "x_biggest_gap",
        "kind": "gap_contrast",
        "metric": "wall_s",
        "over": "norm",
        "high": "nd",
        "low": "bn",
        "a": {"experiment": "t", "where": {"model": "x"}},
        "b": [{"experiment": "t", "where": {"model": "y"}}, {"experiment": "t", "where": {"model": "z"}}],
    }

    def times(gap_x: float, noise: float):
        def f(m, n, e, s):
            jitter = noise * JITTER[s] * (1 if m == "x" else -1) if n == "nd" else 0.0
            return 90.0, 10.0 + jitter + (gap_x if (m == "x" and n == "nd") else 5.0 if n == "nd" else 0.0)

        return f

    assert _judge(claim, _grid(times(20.0, 0.5))).verdict == REPRODUCED
    assert _judge(claim, _grid(times(1.0, 0.5))).verdict == NOT_REPRODUCED
    assert _judge(claim, _grid(times(5.5, 8.0))).verdict == INCONCLUSIVE
    smaller = {**claim, "larger": False}
    assert _judge(smaller, _grid(times(1.0, 0.5))).verdict == REPRODUCED


ORIG = {
    "id": "orig_e20",
    "title": "t",
    "document": "orig",
    "where": "Table 1",
    "metric": "test_acc_best",
    "scale": "paper",
    "test_size": 10000,
    "rows": ["x", "y", "z"],
    "columns": ["bn", "nd"],
    "values": {"x": {"bn": "90.0", "nd": "93.0"}, "y": {"bn": "80.0", "nd": "82.0"}, "z": {"bn": "70.0", "nd": "71.0"}},
    "layout": {"experiment": "t", "row_axis": "model", "column_axis": "norm", "where": {"epochs": 20}},
    "squared_deviation": {"below": 0.5, "unit": 0.01, "reason": "the report's rule"},
}
GAPS = {"x": 3.0, "y": 2.0, "z": 1.0}


def test_gap_vs_reported_holds_when_both_methods_gain_alike_over_the_original():
    claim = {
        "id": "similar_gains",
        "kind": "gap_vs_reported",
        "metric": "test_acc_best",
        "a": {"experiment": "t", "where": {"norm": "nd"}},
        "b": {"experiment": "t", "where": {"norm": "bn"}},
        "tables": ["orig_e20"],
        "band": 1.0,
        "band_reason": "a third of the smallest gap",
    }

    def runs(extra_nd: float, noise: float):
        # both methods gain 5 pp over the original; ND gains extra_nd more
        def f(m, n, e, s):
            base = {"x": 95.0, "y": 85.0, "z": 75.0}[m]
            return base + (GAPS[m] + extra_nd + noise * JITTER[s] if n == "nd" else 0.0), 1.0

        return f

    assert _judge(claim, _grid(runs(0.1, 0.2), epochs=("20",)), [ORIG]).verdict == REPRODUCED
    assert _judge(claim, _grid(runs(4.0, 0.2), epochs=("20",)), [ORIG]).verdict == NOT_REPRODUCED
    assert _judge(claim, _grid(runs(0.9, 3.0), epochs=("20",)), [ORIG]).verdict == INCONCLUSIVE
    # the table reports paper-scale numbers: runs of another scale are not compared with them
    assert _judge(claim, _grid(runs(0.1, 0.2), epochs=("20",)), [ORIG], scale="small").verdict == NOT_EVALUATED


def test_the_chi_square_quantiles_behind_the_sd_interval():
    from restudy.studies.deconv.coverage_claims import chi2_ppf

    # tabulated: χ²_2 at 0.05 and 0.95; χ²_4 at 0.025 and 0.975
    for q, k, want in ((0.05, 2, 0.1026), (0.95, 2, 5.9915), (0.025, 4, 0.4844), (0.975, 4, 11.1433)):
        assert abs(chi2_ppf(q, k) - want) < 1e-3


def test_seed_spread_tests_that_runs_vary_only_slightly():
    claim = {
        "id": "slight",
        "kind": "seed_spread",
        "select": {"experiment": "t", "where": {"epochs": "20"}},
        "value": 1.0,
        "value_reason": "1 pp",
    }

    def spread(sd: float, seeds: int = 5):
        return _grid(lambda m, n, e, s: (90.0 + sd * JITTER[s] / 0.29, 1.0), seeds=seeds, epochs=("20",))

    assert _judge(claim, spread(0.02)).verdict == REPRODUCED
    assert _judge(claim, spread(5.0)).verdict == NOT_REPRODUCED
    assert _judge(claim, spread(0.6, seeds=3)).verdict == INCONCLUSIVE


def test_squared_deviation_range_reads_the_reports_unit_and_bound():
    claim = {"id": "sq", "kind": "squared_deviation_range", "tables": ["orig_e20"], "below": 0.01, "below_reason": "r"}

    def off(dev: float, noise: float):
        def f(m, n, e, s):
            rep = float(ORIG["values"][m][n])
            return rep + dev + noise * JITTER[s], 1.0

        return f

    # 2 pp off: (0.02)² = 0.0004, far below 0.01; 30 pp off: 0.09, far above
    assert _judge(claim, _grid(off(2.0, 0.5), epochs=("20",)), [ORIG]).verdict == REPRODUCED
    assert _judge(claim, _grid(off(30.0, 0.5), epochs=("20",)), [ORIG]).verdict == NOT_REPRODUCED
    assert _judge(claim, _grid(off(9.0, 4.0), seeds=3, epochs=("20",)), [ORIG]).verdict == INCONCLUSIVE


def test_cost_ratio_every_cell_and_an_upper_bound():
    claim = {
        "id": "slower",
        "kind": "cost_ratio",
        "a": {"experiment": "t", "where": {"norm": "nd"}},
        "b": {"experiment": "t", "where": {"norm": "bn"}},
        "above": 1.0,
        "quantifier": "every",
    }

    def times(ratio_z: float, noise: float = 0.02):
        def f(m, n, e, s):
            r = ratio_z if m == "z" else 3.0
            return 90.0, 10.0 * (r if n == "nd" else 1.0) * math.exp(noise * JITTER[s] * (1 if n == "nd" else -1))

        return f

    assert _judge(claim, _grid(times(2.0))).verdict == REPRODUCED
    # pooled, z's cells (ND faster) hide under the others; every cell on its own refutes
    assert _judge(claim, _grid(times(0.8))).verdict == NOT_REPRODUCED
    assert _judge({**claim, "quantifier": "mean"}, _grid(times(0.8))).verdict == REPRODUCED
    assert _judge(claim, _grid(times(1.02, noise=0.5), seeds=3)).verdict == INCONCLUSIVE
    bounded = {**claim, "below": 4.58}
    assert _judge(bounded, _grid(times(2.0))).verdict == REPRODUCED
    assert _judge(bounded, _grid(times(9.3))).verdict == NOT_REPRODUCED


def test_peak_gpu_mem_is_not_a_number_without_a_gpu():
    import torch

    got = peak_gpu_mem()["peak_gpu_mem_gb"]
    assert math.isnan(got) if not torch.cuda.is_available() else got >= 0


def test_patch_correlation_is_lower_where_deconvolution_whitens_the_patches():
    import torch

    torch.manual_seed(0)
    x = torch.randn(128, 1, 8, 8)
    x = x + x.roll(1, 2) + x.roll(1, 3)  # neighbouring pixels correlated
    corr = {}
    for norm in ("bn", "nd"):
        model = deconv_small_cnn((1, 8, 8), 10, norm=norm, width=4)
        model.train()
        with torch.no_grad():
            for _ in range(20):  # the running statistics settle
                model(x)
        corr[norm] = patch_correlation(model=model, x_test=x)["patch_corr"]
        assert model.training  # the metric leaves the model as it found it
    assert 0 <= corr["nd"] < corr["bn"] / 2 and corr["bn"] > 0.1
    # an ND model whose whitening never saw data (running D = identity) decorrelates nothing
    fresh = deconv_small_cnn((1, 8, 8), 10, norm="nd", width=4)
    assert patch_correlation(model=fresh, x_test=x)["patch_corr"] > corr["nd"] * 2
