"""Two-sample comparisons: paired and Welch differences with their tests and intervals.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as st

from ._core import (
    Alternative,
    ToDict,
    as_1d,
    check_alternative,
    check_confidence,
    degenerate_p,
    degenerate_t,
    finite,
)

_RANK_TESTS = contextvars.ContextVar("rank_tests", default=True)


@contextlib.contextmanager
def without_rank_tests() -> Iterator[None]:
    """Inside this block the rank tests' p-values (``wilcoxon_p``) are NaN, not computed: they are
    shown beside a verdict and never decide it, and they cost most of a comparison's time (an
    exact or permutation null distribution), so a verdict judged again many times (its
    stability) skips them."""
    token = _RANK_TESTS.set(False)
    try:
        yield
    finally:
        _RANK_TESTS.reset(token)


@dataclass(frozen=True)
class PairedResult(ToDict):
    """Comparison of two sets of runs, ``a`` versus ``b`` (difference taken as a − b).

    Attributes:
        mean_diff: estimated mean difference (metric unit); paired: mean of dᵢ = aᵢ − bᵢ;
            unpaired: mean(a) − mean(b).
        sd_diff: spread (metric unit). Paired: SD of the differences dᵢ (ddof = 1). Unpaired:
            root-mean-square of the two group SDs, √((s_a² + s_b²)/2), i.e. the common per-group
            SD that :func:`seeds_needed` with ``paired=False`` expects. NaN when unknown.
        n: paired: number of complete pairs; unpaired: size of the smaller group.
        ci_low: lower bound of the two-sided CI of the mean difference (metric unit).
        ci_high: upper bound of the two-sided CI of the mean difference (metric unit).
        t_stat: t statistic (dimensionless); 0 when the difference and its spread are both
            exactly 0, ±inf for a non-zero difference with zero spread.
        p_value: p-value of the t-test for ``alternative``.
        wilcoxon_p: rank-test p-value for the same alternative: Wilcoxon signed-rank (paired) or
            Wilcoxon rank-sum = Mann–Whitney U (unpaired); NaN when not computable.
        test: ``"paired-t"`` or ``"welch-t"``.
        n_a: number of finite values of ``a`` used.
        n_b: number of finite values of ``b`` used.
    """

    mean_diff: float
    sd_diff: float
    n: int
    ci_low: float
    ci_high: float
    t_stat: float
    p_value: float
    wilcoxon_p: float
    test: str
    n_a: int = 0
    n_b: int = 0


def paired_difference(
    a: ArrayLike,
    b: ArrayLike,
    confidence: float = 0.95,
    alternative: Alternative = "greater",
    extra_variance: float = 0.0,
) -> PairedResult:
    """Paired t-test (and Wilcoxon signed-rank test) of a − b over shared seeds.

    ``a[i]`` and ``b[i]`` must come from the same seed (or otherwise matched unit). Pairs where
    either value is NaN are dropped. With dᵢ = aᵢ − bᵢ, d̄ its mean and s_d its SD (ddof = 1):

        t = d̄ / (s_d/√n),   df = n − 1,
        CI = d̄ ± t_{(1+c)/2, n−1} · s_d/√n   (two-sided at c = ``confidence``).

    The t-test is :func:`scipy.stats.ttest_rel` with ``alternative``; ``"greater"`` asks whether a
    exceeds b. Special cases:

    * n < 2: t, p and the Wilcoxon p are NaN and the CI is (−inf, inf).
    * all differences exactly 0: sd 0, t 0, p = 1 (nothing is shown, for every alternative),
      CI (0, 0), Wilcoxon p NaN.
    * all differences equal to the same non-zero value (s_d = 0): t = ±inf, CI (d̄, d̄), p = 0
      if the sign agrees with ``alternative`` (or it is two-sided) and 1 otherwise.

    ``extra_variance`` v is a variance of d̄ that the pairs do not sample and more pairs do not
    shrink, e.g. the sampling noise of one finite test set every run is evaluated on
    (:func:`restudy.stats.summary.test_set_variance`). With v > 0 the standard error is
    √(s_d²/n + v), with Welch–Satterthwaite degrees of freedom (s_d²/n + v)²/((s_d²/n)²/(n − 1))
    (v is known and adds none), and the interval is the wider of that one and the interval
    without v; the p-value is the larger of the two tests' (it rejects only when both do), so
    adding the test set's noise never narrows an interval or strengthens a test.

    Args:
        a: values of the first condition (metric unit), e.g. one per seed.
        b: values of the second condition, same length and order as ``a``.
        confidence: two-sided confidence level of the CI, in (0, 1).
        alternative: ``"greater"`` (a > b), ``"less"`` (a < b) or ``"two-sided"``.
        extra_variance: the variance v above (squared metric unit, ≥ 0).

    Returns:
        A :class:`PairedResult` with ``test="paired-t"``.

    Raises:
        ValueError: if a and b differ in length, are not 1-D, or an argument is out of range.
    """
    check_confidence(confidence)
    check_alternative(alternative)
    if not extra_variance >= 0.0:
        raise ValueError(f"extra_variance must be >= 0; got {extra_variance!r}")
    xa, xb = as_1d(a, "a"), as_1d(b, "b")
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must have equal length to be paired; got {xa.size} and {xb.size}")
    keep = ~(np.isnan(xa) | np.isnan(xb))
    xa, xb = xa[keep], xb[keep]
    d = xa - xb
    n = int(d.size)
    nan = math.nan
    if n == 0:
        return PairedResult(nan, nan, 0, -math.inf, math.inf, nan, nan, nan, "paired-t", 0, 0)
    mean = float(np.mean(d))
    if n == 1:
        return PairedResult(mean, nan, 1, -math.inf, math.inf, nan, nan, nan, "paired-t", 1, 1)
    sd = float(np.std(d, ddof=1))
    if extra_variance > 0.0:
        return _with_extra_variance(d, mean, sd, n, extra_variance, confidence, alternative)
    if sd == 0.0:
        return PairedResult(
            mean,
            0.0,
            n,
            mean,
            mean,
            degenerate_t(mean),
            degenerate_p(mean, alternative),
            _wilcoxon_p(d, alternative),
            "paired-t",
            n,
            n,
        )
    with warnings.catch_warnings():  # near-constant differences only cost precision
        warnings.simplefilter("ignore")
        res = st.ttest_rel(xa, xb, alternative=alternative)
    se = sd / math.sqrt(n)
    half = float(st.t.ppf(0.5 + confidence / 2.0, n - 1)) * se
    return PairedResult(
        mean,
        sd,
        n,
        mean - half,
        mean + half,
        float(res.statistic),
        float(res.pvalue),
        _wilcoxon_p(d, alternative),
        "paired-t",
        n,
        n,
    )


def _with_extra_variance(
    d: np.ndarray, mean: float, sd: float, n: int, v: float, confidence: float, alternative: str
) -> PairedResult:
    """The paired t-test of :func:`paired_difference` with a known extra variance ``v`` of the mean."""
    w = sd * sd / n
    se = math.sqrt(w + v)
    df = math.inf if w == 0.0 else (w + v) ** 2 / (w * w / (n - 1))
    dist = _Dist(df)
    t = mean / se
    p = _p(dist, t, alternative)
    half = float(dist.ppf(0.5 + confidence / 2.0)) * se
    if w > 0.0:  # never narrower, never stronger than the test of the seeds alone
        plain = _Dist(n - 1)
        p = max(p, _p(plain, mean / math.sqrt(w), alternative))
        half = max(half, float(plain.ppf(0.5 + confidence / 2.0)) * math.sqrt(w))
    return PairedResult(mean, sd, n, mean - half, mean + half, t, p, _wilcoxon_p(d, alternative), "paired-t", n, n)


class _Dist:
    """Student's t with ``df`` degrees of freedom (the normal for df = inf), its functions called
    directly: a frozen scipy distribution costs a millisecond to build, and verdicts are
    re-judged hundreds of times for their stability."""

    def __init__(self, df: float) -> None:
        self.df = df

    def sf(self, x: float) -> float:
        return float(st.norm.sf(x) if math.isinf(self.df) else st.t.sf(x, self.df))

    def cdf(self, x: float) -> float:
        return float(st.norm.cdf(x) if math.isinf(self.df) else st.t.cdf(x, self.df))

    def ppf(self, q: float) -> float:
        return float(st.norm.ppf(q) if math.isinf(self.df) else st.t.ppf(q, self.df))


def _p(dist: Any, t: float, alternative: str) -> float:
    if alternative == "greater":
        return float(dist.sf(t))
    if alternative == "less":
        return float(dist.cdf(t))
    return float(2.0 * dist.sf(abs(t)))


def _wilcoxon_p(d: np.ndarray, alternative: str) -> float:
    """Wilcoxon signed-rank p-value of differences ``d``; NaN if n < 2 or all d are 0."""
    if d.size < 2 or not np.any(d != 0.0) or not _RANK_TESTS.get():
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(st.wilcoxon(d, alternative=alternative).pvalue)
    except ValueError:
        return math.nan


def welch_difference(
    a: ArrayLike, b: ArrayLike, confidence: float = 0.95, alternative: Alternative = "greater"
) -> PairedResult:
    """Welch's unequal-variance t-test (and Wilcoxon rank-sum test) of mean(a) − mean(b).

    For unpaired samples (e.g. runs with different, unmatched seeds). NaNs are dropped from each
    sample separately. With group means x̄_a, x̄_b, SDs s_a, s_b (ddof = 1) and sizes n_a, n_b:

        se = √(s_a²/n_a + s_b²/n_b),   t = (x̄_a − x̄_b)/se,
        ν = se⁴ / [ (s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) ]   (Welch–Satterthwaite),
        CI = (x̄_a − x̄_b) ± t_{(1+c)/2, ν} · se.

    The test is :func:`scipy.stats.ttest_ind` with ``equal_var=False``. The rank test reported in
    ``wilcoxon_p`` is the Wilcoxon rank-sum (Mann–Whitney U) test, :func:`scipy.stats.mannwhitneyu`.

    Special cases: if either sample has fewer than 2 finite values, t, p and the rank-test p are
    NaN and the CI is (−inf, inf). If both samples have zero spread (se = 0), the handling is the
    same as for all-equal differences in :func:`paired_difference` (p = 1 for equal means).

    Args:
        a: values of the first condition (metric unit).
        b: values of the second condition (metric unit); lengths may differ.
        confidence: two-sided confidence level of the CI, in (0, 1).
        alternative: ``"greater"`` (mean a > mean b), ``"less"`` or ``"two-sided"``.

    Returns:
        A :class:`PairedResult` with ``test="welch-t"``, ``n = min(n_a, n_b)`` and ``sd_diff`` the
        root-mean-square group SD √((s_a² + s_b²)/2).

    Raises:
        ValueError: if a or b is not 1-D or an argument is out of range.
    """
    check_confidence(confidence)
    check_alternative(alternative)
    xa, xb = finite(a, "a"), finite(b, "b")
    na, nb = int(xa.size), int(xb.size)
    n = min(na, nb)
    nan = math.nan
    if n == 0:
        return PairedResult(nan, nan, 0, -math.inf, math.inf, nan, nan, nan, "welch-t", na, nb)
    mean = float(np.mean(xa) - np.mean(xb))
    if n == 1:
        return PairedResult(mean, nan, 1, -math.inf, math.inf, nan, nan, nan, "welch-t", na, nb)
    va, vb = float(np.var(xa, ddof=1)), float(np.var(xb, ddof=1))
    sd_rms = math.sqrt((va + vb) / 2.0)
    wa, wb = va / na, vb / nb
    se = math.sqrt(wa + wb)
    rank_p = _mannwhitney_p(xa, xb, alternative)
    if se == 0.0:
        return PairedResult(
            mean, 0.0, n, mean, mean, degenerate_t(mean), degenerate_p(mean, alternative), rank_p, "welch-t", na, nb
        )
    df = se**4 / (wa**2 / (na - 1) + wb**2 / (nb - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = st.ttest_ind(xa, xb, equal_var=False, alternative=alternative)
    half = float(st.t.ppf(0.5 + confidence / 2.0, df)) * se
    return PairedResult(
        mean, sd_rms, n, mean - half, mean + half, float(res.statistic), float(res.pvalue), rank_p, "welch-t", na, nb
    )


def _mannwhitney_p(xa: np.ndarray, xb: np.ndarray, alternative: str) -> float:
    """Mann–Whitney U (Wilcoxon rank-sum) p-value; NaN if a group has fewer than 2 values."""
    if xa.size < 2 or xb.size < 2 or not _RANK_TESTS.get():
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(st.mannwhitneyu(xa, xb, alternative=alternative).pvalue)
    except ValueError:
        return math.nan
