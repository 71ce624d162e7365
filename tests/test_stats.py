"""Known-answer tests of restudy.stats against closed forms, scipy and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as st

from restudy.stats.agreement import mean_squared_deviation, relative_error, traffic_light
from restudy.stats.comparisons import paired_difference, welch_difference
from restudy.stats.intervals import bootstrap_ci, rate_ci
from restudy.stats.power import seeds_needed, t_test_power
from restudy.stats.summary import binomial_floor_sd, binomial_floor_sd_percent, summarize
from restudy.stats.trend import slope_test

# ------------------------------------------------------------------------------- summarize


def test_summarize_matches_hand_t_interval() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    sd = math.sqrt(2.5)
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t_{0.975, 4}
    assert s.n == 5
    assert s.mean == pytest.approx(3.0)
    assert s.sd == pytest.approx(sd)
    assert s.sd_used == pytest.approx(sd)
    assert s.se == pytest.approx(sd / math.sqrt(5))
    assert (s.ci_low, s.ci_high) == pytest.approx((3.0 - half, 3.0 + half))


def test_summarize_confidence_level_changes_width() -> None:
    x = [0.1, 0.4, 0.2, 0.3]
    highs = [summarize(x, c).ci_high for c in (0.99, 0.95, 0.5)]
    assert highs[0] > highs[1] > highs[2]


def test_summarize_floor_applied_when_sd_below_floor() -> None:
    x = [94.00, 94.01, 93.99]
    s = summarize(x, floor_sd=0.237)
    assert s.sd == pytest.approx(0.01)
    assert s.sd_used == pytest.approx(0.237)
    half = st.t.ppf(0.975, 2) * 0.237 / math.sqrt(3)
    assert (s.ci_low, s.ci_high) == pytest.approx((94.0 - half, 94.0 + half))


def test_summarize_floor_ignored_when_sd_above_floor() -> None:
    x = [90.0, 92.0, 94.0]
    assert summarize(x, floor_sd=0.5) == summarize(x)


def test_summarize_single_value() -> None:
    s = summarize([93.5])
    assert s.n == 1 and s.mean == 93.5 and math.isnan(s.sd)
    assert (s.ci_low, s.ci_high) == (-math.inf, math.inf)
    f = summarize([93.5], floor_sd=0.2)
    z = st.norm.ppf(0.975)
    assert (f.ci_low, f.ci_high) == pytest.approx((93.5 - z * 0.2, 93.5 + z * 0.2))
    assert f.sd_used == 0.2 and math.isnan(f.sd)


def test_summarize_drops_nan_and_handles_empty() -> None:
    assert summarize([1.0, math.nan, 3.0]) == summarize([1.0, 3.0])
    e = summarize([math.nan])
    assert e.n == 0 and math.isnan(e.mean) and math.isnan(e.ci_low)


def test_summarize_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        summarize([1, 2], confidence=1.0)
    with pytest.raises(ValueError):
        summarize([1, 2], floor_sd=-0.1)
    with pytest.raises(ValueError):
        summarize([[1, 2], [3, 4]])


def test_to_dict_is_json_safe() -> None:
    d = summarize([93.5]).to_dict()
    assert d["sd"] is None and d["ci_low"] is None and d["ci_high"] is None
    assert d["mean"] == 93.5 and isinstance(d["n"], int)
    json.dumps(d, allow_nan=False)
    json.dumps(paired_difference([1, 2, 3], [1, 2, 3]).to_dict(), allow_nan=False)
    json.dumps(slope_test([1, 2], [3, 4]).to_dict(), allow_nan=False)


# ------------------------------------------------------------------------------- binomial floor


def test_binomial_floor_known_value() -> None:
    assert binomial_floor_sd(0.94, 10_000) == pytest.approx(0.0023748684, rel=1e-8)
    assert binomial_floor_sd_percent(94.0, 10_000) == pytest.approx(0.23748684, rel=1e-8)
    assert binomial_floor_sd(0.0, 100) == 0.0 and binomial_floor_sd(1.0, 100) == 0.0


def test_binomial_floor_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        binomial_floor_sd(94.0, 10_000)
    with pytest.raises(ValueError):
        binomial_floor_sd(0.5, 0)
    with pytest.raises(ValueError):
        binomial_floor_sd_percent(101.0, 10)


# ------------------------------------------------------------------------------- paired


A = np.array([94.1, 93.8, 94.5, 94.0, 94.3, 93.9])
B = np.array([93.7, 93.9, 94.0, 93.6, 94.1, 93.5])


def test_paired_matches_manual_t_test() -> None:
    r = paired_difference(A, B)
    d = A - B
    n, mean, sd = d.size, d.mean(), d.std(ddof=1)
    t = mean / (sd / math.sqrt(n))
    half = st.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert r.test == "paired-t" and r.n == n
    assert r.mean_diff == pytest.approx(mean)
    assert r.sd_diff == pytest.approx(sd)
    assert r.t_stat == pytest.approx(t)
    assert r.p_value == pytest.approx(st.t.sf(t, n - 1))
    assert (r.ci_low, r.ci_high) == pytest.approx((mean - half, mean + half))
    assert r.wilcoxon_p == pytest.approx(st.wilcoxon(d, alternative="greater").pvalue)
    two = paired_difference(A, B, alternative="two-sided")
    assert two.p_value == pytest.approx(st.ttest_rel(A, B).pvalue)
    assert two.p_value == pytest.approx(2 * r.p_value)
    assert paired_difference(A, B, alternative="less").p_value == pytest.approx(1 - r.p_value)


def test_paired_all_zero_differences() -> None:
    for alt in ("greater", "less", "two-sided"):
        r = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], alternative=alt)
        assert r.sd_diff == 0.0 and r.mean_diff == 0.0
        assert r.p_value == 1.0
        assert (r.ci_low, r.ci_high) == (0.0, 0.0)
        assert math.isnan(r.wilcoxon_p)


def test_paired_constant_nonzero_difference() -> None:
    r = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert r.sd_diff == 0.0 and r.t_stat == math.inf and r.p_value == 0.0
    assert (r.ci_low, r.ci_high) == (1.0, 1.0)
    assert paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], alternative="less").p_value == 1.0


def test_paired_drops_nan_pairs() -> None:
    a = np.append(A, [math.nan, 95.0])
    b = np.append(B, [93.0, math.nan])
    assert paired_difference(a, b) == paired_difference(A, B)


def test_paired_small_n_and_bad_input() -> None:
    r = paired_difference([2.0], [1.0])
    assert r.n == 1 and r.mean_diff == 1.0 and math.isnan(r.p_value)
    assert (r.ci_low, r.ci_high) == (-math.inf, math.inf)
    with pytest.raises(ValueError):
        paired_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        paired_difference([1, 2], [1, 2], alternative="bigger")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- welch


def test_welch_matches_scipy() -> None:
    a = np.array([94.1, 93.8, 94.5, 94.0, 94.3])
    b = np.array([93.7, 93.9, 94.0, 93.6, 94.1, 93.5, 92.9])
    r = welch_difference(a, b)
    ref = st.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert r.test == "welch-t" and (r.n, r.n_a, r.n_b) == (5, 5, 7)
    assert r.mean_diff == pytest.approx(a.mean() - b.mean())
    assert r.t_stat == pytest.approx(ref.statistic)
    assert r.p_value == pytest.approx(ref.pvalue)
    ci = st.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
    assert r.sd_diff == pytest.approx(math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    assert r.wilcoxon_p == pytest.approx(st.mannwhitneyu(a, b, alternative="greater").pvalue)


def test_welch_degenerate_cases() -> None:
    r = welch_difference([1.0, 1.0], [1.0, 1.0, math.nan])
    assert r.p_value == 1.0 and (r.ci_low, r.ci_high) == (0.0, 0.0) and r.n_b == 2
    r1 = welch_difference([1.0], [1.0, 2.0])
    assert math.isnan(r1.p_value) and (r1.ci_low, r1.ci_high) == (-math.inf, math.inf)


# ------------------------------------------------------------------------------- power


def test_seeds_needed_known_value_paired_one_sided() -> None:
    # Exact noncentral-t: n = 7 gives power 0.754, n = 8 gives 0.815 (G*Power: 8).
    assert seeds_needed(1.0, 1.0) == 8
    assert t_test_power(7, 1.0, 1.0) == pytest.approx(0.7544, abs=1e-4)
    assert t_test_power(8, 1.0, 1.0) == pytest.approx(0.8150, abs=1e-4)


def test_seeds_needed_known_value_two_sample() -> None:
    # Cohen's classic table: d = 0.5, two-sided alpha = 0.05, power 0.8 -> 64 per group.
    assert seeds_needed(0.5, 1.0, paired=False, alternative="two-sided") == 64


def test_seeds_needed_matches_simulation() -> None:
    rng = np.random.default_rng(123)
    n, reps = 8, 40_000
    d = rng.normal(1.0, 1.0, size=(reps, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    empirical = float(np.mean(t > st.t.ppf(0.95, n - 1)))
    assert empirical == pytest.approx(t_test_power(n, 1.0, 1.0), abs=0.01)


def test_seeds_needed_monotone() -> None:
    by_effect = [seeds_needed(e, 1.0) for e in (0.2, 0.5, 1.0, 2.0)]
    assert by_effect == sorted(by_effect, reverse=True) and len(set(by_effect)) == 4
    by_sd = [seeds_needed(0.5, s) for s in (0.25, 0.5, 1.0, 2.0)]
    assert by_sd == sorted(by_sd) and len(set(by_sd)) == 4
    assert seeds_needed(0.5, 1.0, alternative="two-sided") > seeds_needed(0.5, 1.0)
    assert seeds_needed(0.5, 1.0, paired=False) > seeds_needed(0.5, 1.0)
    assert seeds_needed(0.5, 1.0, power=0.9) > seeds_needed(0.5, 1.0)


def test_seeds_needed_edge_cases() -> None:
    assert seeds_needed(0.0, 1.0) is None
    assert seeds_needed(1.0, 0.0) == 2
    assert seeds_needed(-1.0, 1.0) is None  # cannot show a > b
    assert seeds_needed(-1.0, 1.0, alternative="less") == 8
    assert seeds_needed(-1.0, 1.0, alternative="two-sided") == seeds_needed(1.0, 1.0, alternative="two-sided")
    assert seeds_needed(0.01, 1.0, max_n=100) is None
    assert seeds_needed(0.01, 1.0) is None  # needs ~61 800 > max_n = 10 000
    # normal approximation ((z_.95 + z_.8) / d)^2 = 61 828; exact t is within a few seeds
    assert seeds_needed(0.01, 1.0, max_n=100_000) == pytest.approx(61_828, abs=5)
    with pytest.raises(ValueError):
        seeds_needed(1.0, -1.0)
    with pytest.raises(ValueError):
        seeds_needed(1.0, 1.0, power=1.0)


# ------------------------------------------------------------------------------- rates, bootstrap


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (47, 50), (1, 1), (500, 1000)])
def test_rate_ci_matches_binomtest(k: int, n: int) -> None:
    ref = st.binomtest(k, n).proportion_ci(0.95, method="exact")
    assert rate_ci(k, n) == pytest.approx((ref.low, ref.high), abs=1e-12)
    ref90 = st.binomtest(k, n).proportion_ci(0.9, method="exact")
    assert rate_ci(k, n, 0.9) == pytest.approx((ref90.low, ref90.high), abs=1e-12)


def test_rate_ci_edges() -> None:
    assert rate_ci(0, 0) == (0.0, 1.0)
    assert rate_ci(0, 5)[0] == 0.0 and rate_ci(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        rate_ci(6, 5)


def test_bootstrap_ci_reproducible_and_sensible() -> None:
    x = np.random.default_rng(0).normal(10.0, 2.0, size=40)
    sd = lambda v: float(np.std(v, ddof=1))  # noqa: E731
    lo, hi = bootstrap_ci(x, sd, n_resamples=1000, seed=7)
    assert (lo, hi) == bootstrap_ci(x, sd, n_resamples=1000, seed=7)
    assert lo < sd(x) < hi and 0.0 < lo and hi < 4.0
    mlo, mhi = bootstrap_ci(x, np.mean, n_resamples=1000)
    s = summarize(x)
    assert mlo == pytest.approx(s.ci_low, abs=0.3) and mhi == pytest.approx(s.ci_high, abs=0.3)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0, math.nan], np.mean))


# ------------------------------------------------------------------------ reproduced vs reported


def test_mean_squared_deviation() -> None:
    assert mean_squared_deviation([1.0, 2.0, 4.0], [1.0, 3.0, 2.0]) == pytest.approx(5.0 / 3.0)
    assert mean_squared_deviation([1.0, math.nan, 4.0], [2.0, 3.0, 2.0]) == pytest.approx(2.5)
    assert math.isnan(mean_squared_deviation([math.nan], [1.0]))
    with pytest.raises(ValueError):
        mean_squared_deviation([1.0], [1.0, 2.0])


def test_relative_error_sign() -> None:
    assert relative_error(110.0, 100.0) == pytest.approx(0.10)
    assert relative_error(90.0, 100.0) == pytest.approx(-0.10)
    assert relative_error(-0.9, -1.0) == pytest.approx(0.10)  # larger than reported
    assert math.isnan(relative_error(1.0, 0.0))
    assert math.isnan(relative_error(math.nan, 1.0))


def test_traffic_light_categories() -> None:
    assert traffic_light(93.0, 94.0) == "black"
    assert traffic_light(0.9, 1.0) == "black"  # exactly 10 %: inclusive
    assert traffic_light(1.1, 1.0) == "black"
    assert traffic_light(80.0, 94.0) == "red"
    assert traffic_light(0.5, 0.4) == "green"
    # lower is better (e.g. error, loss)
    assert traffic_light(0.30, 0.40, higher_is_better=False) == "green"
    assert traffic_light(0.50, 0.40, higher_is_better=False) == "red"
    assert traffic_light(0.41, 0.40, higher_is_better=False) == "black"
    # threshold, reported 0 and missing values
    assert traffic_light(1.15, 1.0, threshold=0.2) == "black"
    assert traffic_light(0.0, 0.0) == "black"
    assert traffic_light(0.01, 0.0, higher_is_better=False) == "red"
    assert traffic_light(math.nan, 1.0) == "gray"


# ------------------------------------------------------------------------------- slope


def test_slope_exact_line() -> None:
    r = slope_test([1, 2, 3, 4, 5], [3, 5, 7, 9, 11])
    assert r.slope == pytest.approx(2.0) and r.r == pytest.approx(1.0) and r.n == 5
    assert (r.ci_low, r.ci_high) == pytest.approx((2.0, 2.0))
    assert r.p_value == 0.0
    flat = slope_test([1, 2, 3], [4, 4, 4])
    assert flat.slope == 0.0 and flat.p_value == 1.0


def test_slope_matches_manual() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, math.nan])
    y = np.array([1.2, 1.9, 3.3, 3.8, 5.4, 5.9, 7.0])
    r = slope_test(x, y)
    ref = st.linregress(x[:6], y[:6])
    half = st.t.ppf(0.975, 4) * ref.stderr
    assert r.n == 6
    assert r.slope == pytest.approx(ref.slope) and r.p_value == pytest.approx(ref.pvalue)
    assert (r.ci_low, r.ci_high) == pytest.approx((ref.slope - half, ref.slope + half))
    assert r.ci_low > 0


def test_slope_degenerate() -> None:
    two = slope_test([1, 2], [1, 3])
    assert two.slope == pytest.approx(2.0) and math.isnan(two.p_value)
    assert (two.ci_low, two.ci_high) == (-math.inf, math.inf)
    assert math.isnan(slope_test([1, 1, 1], [1, 2, 3]).slope)


# ------------------------------------------------------------------ the test set's own noise


def test_extra_variance_widens_the_interval_and_leaves_the_plain_test_unchanged():
    from restudy.stats.comparisons import paired_difference as pd
    from restudy.stats.summary import summarize as summ

    a, b = [1.0, 1.2, 0.9, 1.1], [0.0, 0.0, 0.0, 0.0]
    plain, zero = pd(a, b, 0.9), pd(a, b, 0.9, extra_variance=0.0)
    assert (plain.ci_low, plain.ci_high, plain.p_value) == (zero.ci_low, zero.ci_high, zero.p_value)
    noisy = pd(a, b, 0.9, extra_variance=0.25)
    assert noisy.ci_low < plain.ci_low and noisy.ci_high > plain.ci_high and noisy.p_value > plain.p_value
    se = math.sqrt(np.var(a, ddof=1) / 4 + 0.25)
    assert noisy.t_stat == pytest.approx(np.mean(a) / se)
    # no spread between seeds: the test set's noise alone sets a normal interval
    flat = pd([0.5, 0.5], [0.0, 0.0], 0.9, extra_variance=1.0)
    assert (flat.ci_low, flat.ci_high) == pytest.approx((0.5 - st.norm.ppf(0.95), 0.5 + st.norm.ppf(0.95)))
    # adding noise never narrows an interval, however few the seeds
    for v in (0.01, 0.1, 1.0, 10.0):
        wider = pd(a, b, 0.9, extra_variance=v)
        assert wider.ci_low <= plain.ci_low and wider.ci_high >= plain.ci_high and wider.p_value >= plain.p_value
    s0, s1 = summ([90.0, 91.0, 92.0], 0.9), summ([90.0, 91.0, 92.0], 0.9, extra_variance=0.5)
    assert s1.ci_high - s1.ci_low >= s0.ci_high - s0.ci_low and s1.mean == s0.mean  # never narrower
    s2 = summ([90.0, 91.0, 92.0], 0.9, extra_variance=4.0)  # a test set noisier than the seeds: wider
    assert s2.ci_high - s2.ci_low > s0.ci_high - s0.ci_low


def test_test_set_variances_follow_the_binomial_and_mcnemar_bounds():
    from restudy.stats.summary import difference_test_set_variance, test_set_variance

    assert test_set_variance([90.0, 92.0], 10000) == pytest.approx(1e4 * 0.91 * 0.09 / 10000)
    independent = difference_test_set_variance([93.0], [92.0], 10000)
    assert independent == pytest.approx(1e4 * (0.93 * 0.07 + 0.92 * 0.08) / 10000)
    # models that make mostly the same mistakes: 3 % of examples differ in correctness
    measured = difference_test_set_variance([93.0], [92.0], 10000, disagreement=0.03)
    assert measured == pytest.approx(1e4 * (0.03 - 0.01**2) / 10000) and measured < independent


def test_seeds_needed_knows_when_the_test_set_hides_the_difference():
    # 0.13 pp on 10,000 examples: the test set's own SD (0.36 pp) hides it whatever the seeds
    v = 1e4 * 2 * 0.93 * 0.07 / 10000
    assert seeds_needed(0.13, 0.1, alpha=0.05, power=0.8, extra_variance=v) is None
    # a clear difference still gets a count, larger than without the floor
    assert seeds_needed(2.0, 1.0, extra_variance=v) >= seeds_needed(2.0, 1.0)


def test_share_ci_counts_units_not_runs():
    from restudy.stats.intervals import share_ci

    assert share_ci(1, 5, 0.9) == rate_ci(1, 5, 0.9)
    low, high = share_ci(1.5, 5, 0.9)  # e.g. 5 seeds, their diverged shares summing to 1.5
    lo1, hi1 = rate_ci(1, 5, 0.9)
    lo2, hi2 = rate_ci(2, 5, 0.9)
    assert lo1 < low < lo2 and hi1 < high < hi2
    with pytest.raises(ValueError):
        share_ci(6.0, 5)


def test_bca_interval_stays_finite_when_the_expanded_level_underflows():
    """Two models at 99.5 %: the expansion's t quantile (1 df) drives α to 0 in floating point, and a
    skewed jackknife then gave NaN percentiles (a crash on small model sets at smoke scale)."""
    from restudy.stats.intervals import bca_interval

    draws = np.random.default_rng(0).normal(1.0, 0.3, 200)
    low, high = bca_interval(1.0, draws, [np.array([0.0, 0.1, 5.0])], 0.995, 2)
    assert draws.min() <= low < 1.0 < high <= draws.max()
