"""Variability metrics (restudy.stats.variability) against hand computations, a plain-loop re-implementation of
the original code's formulas (``evaluate.py``, ``compute_metrics``), scipy, and the
published numbers of the reproduction report (rep2022)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from scipy import stats as st

from restudy.errors import RestudyError
from restudy.stats import variability as metrics

# Three models, four examples, three classes; labels [0, 1, 2, 0]. Model C is a copy of A.
#   A predicts [0, 1, 2, 1] -> 3/4 correct; B predicts [0, 0, 1, 0] -> 2/4 correct.
#   A+B sums: [4,0,0] [1.5,1,0] [0,1.5,1] [3,2,0] -> predicts [0, 0, 1, 0] -> 2/4 correct.
A = [[2, 0, 0], [0, 1, 0], [0, 0, 1], [0, 2, 0]]
B = [[2, 0, 0], [1.5, 0, 0], [0, 1.5, 0], [3, 0, 0]]
LABELS = np.array([0, 1, 2, 0])
HAND = np.array([A, B, A], dtype=np.float32)


def _ce(logits: np.ndarray, label: int) -> float:
    """Softmax cross-entropy of one example, written out."""
    return math.log(sum(math.exp(float(v)) for v in logits)) - float(logits[label])


def _reference(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The metrics with plain loops over pairs, as the original ``evaluate.py`` computes them."""
    m = z.shape[0]
    acc = [100.0 * np.mean(z[i].argmax(1) == y) for i in range(m)]
    ce = [np.mean([_ce(z[i, n], y[n]) for n in range(len(y))]) for i in range(m)]
    n = z[0].size
    dis, spear, pear, gains, gains_ce = [], [], [], [], []
    for i in range(m):
        for j in range(i + 1, m):
            dis.append(100.0 * np.mean(z[i].argmax(1) != z[j].argmax(1)))
            ri = np.argsort(np.argsort(z[i].ravel(), kind="stable"), kind="stable")
            rj = np.argsort(np.argsort(z[j].ravel(), kind="stable"), kind="stable")
            d2 = float(np.sum((ri.astype(float) - rj) ** 2))
            spear.append(1.0 - 6.0 * d2 / (n * (n * n - 1.0)))
            pear.append(float(np.corrcoef(z[i].ravel().astype(float), z[j].ravel())[0, 1]))
            ens = (z[i] + z[j]) / 2.0
            acc_ens = 100.0 * np.mean(ens.argmax(1) == y)
            ce_ens = np.mean([_ce(ens[k], y[k]) for k in range(len(y))])
            gains += [acc_ens - acc[i], acc_ens - acc[j]]
            gains_ce += [ce_ens - ce[i], ce_ens - ce[j]]
    return {
        "sd_accuracy": float(np.std(acc)),
        "sd_cross_entropy": float(np.std(ce)),
        "disagreement": float(np.mean(dis)),
        "correlation_spearman": float(np.mean(spear)),
        "correlation_pearson": float(np.mean(pear)),
        "ensemble_gain": float(np.mean(gains)),
        "ensemble_gain_ce": float(np.mean(gains_ce)),
        "mean_accuracy": float(np.mean(acc)),
    }


def _noisy_models(m: int, n: int, c: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Models that share a signal plus independent noise (continuous: no ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    signal = 2.0 * np.eye(c)[y] + rng.normal(size=(n, c))
    return (signal[None] + noise * rng.normal(size=(m, n, c))).astype(np.float32), y


# ------------------------------------------------------------------------------ by hand


def test_hand_example_accuracy_disagreement_and_gain() -> None:
    r = metrics.variability(HAND, LABELS, bootstrap=0)
    assert r["n_models"] == 3 and r["n_examples"] == 4
    assert r["accuracies"] == [75.0, 50.0, 75.0]
    assert r["mean_accuracy"] == pytest.approx(200.0 / 3)
    # population SD of (75, 50, 75): deviations (25/3, -50/3, 25/3)
    assert r["sd_accuracy"] == pytest.approx(math.sqrt((2 * (25 / 3) ** 2 + (50 / 3) ** 2) / 3))
    # pairs: A-B differ on 3 of 4 examples, A-C on none, B-C on 3 of 4
    assert r["disagreement"] == pytest.approx((75 + 0 + 75) / 3)
    # A-B ensemble 50 %: entries 50-75, 50-50; A-C: 0, 0; B-C like A-B
    assert r["ensemble_gain"] == pytest.approx((-25 + 0 + 0 + 0 - 25 + 0) / 6)


def test_hand_example_cross_entropy() -> None:
    r = metrics.variability(HAND, LABELS, bootstrap=0)
    ce_a = np.mean([_ce(np.array(A[k], float), LABELS[k]) for k in range(4)])
    ce_b = np.mean([_ce(np.array(B[k], float), LABELS[k]) for k in range(4)])
    assert r["cross_entropies"] == pytest.approx([ce_a, ce_b, ce_a])
    assert r["sd_cross_entropy"] == pytest.approx(float(np.std([ce_a, ce_b, ce_a])))
    ens = (np.array(A, float) + np.array(B, float)) / 2
    ce_ens = np.mean([_ce(ens[k], LABELS[k]) for k in range(4)])
    assert r["ensemble_gain_ce"] == pytest.approx((2 * (ce_ens - ce_a) + 2 * (ce_ens - ce_b)) / 6)


def test_hand_example_matches_loop_reference() -> None:
    r = metrics.variability(HAND, LABELS, bootstrap=0)
    for key, value in _reference(HAND, LABELS).items():
        assert r[key] == pytest.approx(value, abs=1e-9), key
    assert r["correlation"] == r["correlation_spearman"]


def test_random_models_match_loop_reference() -> None:
    z, y = _noisy_models(4, 60, 5, noise=1.0)
    r = metrics.variability(z, y, bootstrap=0)
    for key, value in _reference(z, y).items():
        assert r[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_spearman_matches_scipy_on_tie_free_logits() -> None:
    z, y = _noisy_models(3, 200, 4, noise=0.7, seed=3)
    assert len(np.unique(z[0])) == z[0].size  # no ties, so no tie correction is needed
    r = metrics.variability(z, y, bootstrap=0)
    rho = [st.spearmanr(z[i].ravel(), z[j].ravel())[0] for i in range(3) for j in range(i + 1, 3)]
    r_p = [st.pearsonr(z[i].ravel(), z[j].ravel())[0] for i in range(3) for j in range(i + 1, 3)]
    assert r["correlation_spearman"] == pytest.approx(float(np.mean(rho)), rel=1e-9)
    assert r["correlation_pearson"] == pytest.approx(float(np.mean(r_p)), rel=1e-6)


def test_torch_input_gives_numpy_result() -> None:
    z, y = _noisy_models(3, 50, 4, noise=1.0)
    a = metrics.variability(z, y, bootstrap=50)
    b = metrics.variability(torch.from_numpy(z), torch.from_numpy(y), bootstrap=50)
    assert a == b


# ------------------------------------------------------------------------------ edge cases


def test_identical_models_show_exactly_no_variability() -> None:
    z, y = _noisy_models(1, 500, 10, noise=0.0)
    r = metrics.variability(np.repeat(z, 5, axis=0), y, bootstrap=200)
    assert r["sd_accuracy"] == 0.0 and r["sd_cross_entropy"] == 0.0
    assert r["disagreement"] == 0.0 and r["ensemble_gain"] == 0.0 and r["ensemble_gain_ce"] == 0.0
    assert r["correlation"] == 1.0 and r["correlation_pearson"] == 1.0
    assert r["sd_accuracy_ci"] == (0.0, 0.0) and r["disagreement_ci"] == (0.0, 0.0)


def test_one_model_has_no_variability_to_measure() -> None:
    r = metrics.variability(HAND[:1], LABELS)
    assert r["n_models"] == 1 and r["mean_accuracy"] == 75.0
    for key in metrics.SUMMARY_METRICS:
        assert math.isnan(r[key]), key
        assert all(math.isnan(v) for v in r[f"{key}_ci"])


def test_bad_inputs_are_user_errors() -> None:
    with pytest.raises(RestudyError, match="no models"):
        metrics.variability(np.zeros((0, 4, 3), np.float32), LABELS)
    with pytest.raises(RestudyError, match="models, examples, classes"):
        metrics.variability(np.zeros((4, 3), np.float32), LABELS)
    with pytest.raises(RestudyError, match="labels"):
        metrics.variability(HAND, LABELS[:3])
    with pytest.raises(RestudyError, match="labels must lie"):
        metrics.variability(HAND, np.array([0, 1, 2, 3]))


# ------------------------------------------------------------------------------ bootstrap


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    z, y = _noisy_models(12, 300, 5, noise=1.0)
    a = metrics.variability(z, y, bootstrap=400, seed=7)
    assert a == metrics.variability(z, y, bootstrap=400, seed=7)
    assert a["sd_accuracy_ci"] != metrics.variability(z, y, bootstrap=400, seed=8)["sd_accuracy_ci"]
    for key in ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"):
        low, high = a[f"{key}_ci"]
        assert low < high and a[f"{key}_se"] > 0, key
        assert low <= a[key] * 1.02 + 1e-12 and a[key] * 0.98 - 1e-12 <= high, key


def test_pairwise_bootstrap_equals_explicit_resample_without_self_pairs() -> None:
    """The weighted sub-matrix mean is the mean over pairs of distinct models of a resample."""
    z, y = _noisy_models(5, 100, 4, noise=1.0)
    pw = metrics.pairwise_stats(z, y)
    idx = np.array([0, 0, 2, 3, 3])  # models 0 and 3 drawn twice, 1 and 4 not at all
    weights = np.bincount(idx, minlength=5)[None, :]
    draws = metrics.bootstrap_draws(pw, weights)
    pairs = [(idx[a], idx[b]) for a in range(5) for b in range(a + 1, 5) if idx[a] != idx[b]]
    expect = np.mean([pw.disagreement[i, j] for i, j in pairs])
    assert draws["disagreement"][0] == pytest.approx(expect)
    assert draws["sd_accuracy"][0] == pytest.approx(np.std(pw.accuracy[idx]))


def test_more_noise_means_more_variability() -> None:
    quiet = metrics.variability(*_noisy_models(10, 400, 5, noise=0.3), bootstrap=0)
    loud = metrics.variability(*_noisy_models(10, 400, 5, noise=1.5), bootstrap=0)
    assert loud["disagreement"] > quiet["disagreement"]
    assert loud["correlation"] < quiet["correlation"]
    assert loud["ensemble_gain"] > quiet["ensemble_gain"]


def test_speed_thirty_models() -> None:
    z, y = _noisy_models(30, 2000, 10, noise=1.0)
    start = time.perf_counter()
    metrics.variability(z, y, bootstrap=1000)
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------------------------ reductions

SINGLE = (0.26, 0.0072, 10.7, 0.871, 1.82)
# rep2022 Table 6: metric values per row and (paper's struck-through %, reproduction's %)
TABLE6 = {
    "Acc.Ens.": ((0.19, 0.0044, 6.1, 0.957, 0.63), 48, 37),
    "Single/Flip-TTA": ((0.24, 0.0061, 8.2, 0.905, 1.20), 21, 17),
    "Single/Crop25-TTA": ((0.23, 0.0059, 9.2, 0.893, 1.49), 16, 13),
    "Single/Crop81-TTA": ((0.21, 0.0055, 8.8, 0.898, 1.39), 21, 17),
    "Single/Flip-Crop25-TTA": ((0.21, 0.0051, 7.2, 0.920, 0.99), 33, 26),
    "Single/Flip-Crop81-TTA": ((0.19, 0.0049, 6.9, 0.922, 0.92), 37, 30),
    "Acc.Ens/Flip-TTA": ((0.15, 0.0039, 5.0, 0.967, 0.45), 58, 46),
    "Acc.Ens/Flip-Crop81-TTA": ((0.16, 0.0033, 4.6, 0.972, 0.38), 61, 48),
}
KEYS = ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain")


@pytest.mark.parametrize("row", sorted(TABLE6))
def test_reduction_formulas_give_seed003_table6(row: str) -> None:
    values, paper, reproduction = TABLE6[row]
    r = metrics.reduction_percent(dict(zip(KEYS, values)), dict(zip(KEYS, SINGLE)))
    assert round(r["original"]) == paper
    assert round(r["recalculated"]) == reproduction
    assert "original paper" in r["labels"]["original"]
    assert "reproduction" in r["labels"]["recalculated"]


def test_reduction_of_acc_ens_to_one_decimal() -> None:
    r = metrics.reduction_percent(dict(zip(KEYS, TABLE6["Acc.Ens."][0])), dict(zip(KEYS, SINGLE)))
    assert r["original"] == pytest.approx(48.2, abs=0.05)
    assert r["recalculated"] == pytest.approx(36.8, abs=0.05)
    per = r["per_metric"]
    assert per["original"]["correlation"] == pytest.approx(100 * (1 - 0.043 / 0.129))
    assert per["recalculated"]["correlation"] == pytest.approx(100 * (0.957 - 0.871) / 0.871)
    assert per["original"]["sd_accuracy"] == per["recalculated"]["sd_accuracy"]


def test_reduction_works_on_bootstrap_draws() -> None:
    base = {k: np.array([v, v]) for k, v in zip(KEYS, SINGLE)}
    r = metrics.reduction_percent(base, base)
    assert np.allclose(r["original"], 0.0) and np.allclose(r["recalculated"], 0.0)


# ------------------------------------------------------------------------------ CKA


def test_cka_invariances() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 8))
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert metrics.linear_cka(x, x) == pytest.approx(1.0)
    assert metrics.linear_cka(x, 3.5 * x) == pytest.approx(1.0)
    assert metrics.linear_cka(x, x @ q) == pytest.approx(1.0)
    y = rng.normal(size=(100, 5))
    assert 0.0 < metrics.linear_cka(x, y) < 0.5
    assert metrics.linear_cka(x, y) == pytest.approx(metrics.linear_cka(x @ q, 2 * y + 1))


def test_cka_matches_the_hsic_form() -> None:
    """Kornblith et al. 2019: CKA = HSIC(K, L)/sqrt(HSIC(K, K) HSIC(L, L)), K = XXᵀ, L = YYᵀ."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    y[:, 0] += x[:, 0]
    h = np.eye(40) - 1.0 / 40

    def hsic(k: np.ndarray, l: np.ndarray) -> float:
        return float(np.trace(k @ h @ l @ h))

    k, l = x @ x.T, y @ y.T
    assert metrics.linear_cka(x, y) == pytest.approx(hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l)))


def test_mean_pairwise_cka() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(3, 50, 4))
    expect = np.mean([metrics.linear_cka(feats[i], feats[j]) for i, j in ((0, 1), (0, 2), (1, 2))])
    assert metrics.mean_pairwise_cka(feats) == pytest.approx(expect)
    assert math.isnan(metrics.mean_pairwise_cka(feats[:1]))
