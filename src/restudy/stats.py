"""Noise-aware statistics for comparing reproduced and reported numbers.

Every function here is pure: it takes numbers (scalars or 1-D array-likes), returns numbers or a
frozen dataclass, and has no side effects (no printing, no global random state). Only numpy and
scipy.stats are used.

Conventions:

* Values carry the unit of the metric they summarise (e.g. accuracy in %, loss in nats); every
  mean, SD, standard error, interval bound and difference returned is in that same unit. p-values,
  proportions and relative errors are dimensionless.
* NaN inputs are treated as missing: they are dropped (pairwise for paired inputs) and ``n``
  counts finite values only. Infinite inputs are kept (they are real, if extreme, observations).
* Confidence intervals are two-sided at level ``confidence`` (e.g. 0.95). Hypothesis tests are
  one- or two-sided according to ``alternative`` (``"greater"``, ``"less"`` or ``"two-sided"``),
  where ``"greater"`` tests whether the mean of ``a`` (or of ``a - b``) exceeds the other.
* Result dataclasses are frozen and have ``to_dict()``, which returns JSON-safe Python scalars:
  every non-finite float (NaN, +inf, -inf) becomes ``None``, because JSON has none of them. An
  unbounded interval such as ``(-inf, inf)`` therefore serialises as ``(None, None)``.

Imports nothing from restudy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as st

__all__ = [
    "Alternative",
    "PairedResult",
    "SlopeResult",
    "Summary",
    "binomial_floor_sd",
    "binomial_floor_sd_percent",
    "bootstrap_ci",
    "mean_squared_deviation",
    "paired_difference",
    "rate_ci",
    "relative_error",
    "seeds_needed",
    "slope_test",
    "summarize",
    "t_test_power",
    "traffic_light",
    "welch_difference",
]

Alternative = Literal["greater", "less", "two-sided"]
_ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    """Converts one dataclass field to a JSON-safe Python scalar (non-finite floats → None)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class _ToDict:
    """Mixin giving frozen result dataclasses a JSON-safe ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a dict of JSON-safe scalars.

        Returns:
            ``{field name: value}`` where floats are Python floats and every NaN or ±inf is
            ``None``; ints stay ints and strings stay strings.
        """
        items = fields(self)  # type: ignore[arg-type]
        return {f.name: _json_value(getattr(self, f.name)) for f in items}


def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Returns ``values`` as a flat float64 array (NaNs kept)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    return arr.reshape(-1)


def _finite(values: ArrayLike, name: str) -> np.ndarray:
    """Returns ``values`` as a flat float64 array with NaNs dropped."""
    arr = _as_1d(values, name)
    return arr[~np.isnan(arr)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        allowed = ", ".join(_ALTERNATIVES)
        raise ValueError(f"alternative must be one of {allowed}; got {alternative!r}")


def _degenerate_p(mean: float, alternative: str) -> float:
    """p-value of a test whose statistic has zero spread (SD 0): t is 0 or ±inf.

    With mean 0 nothing is shown (p = 1 for every alternative); with a non-zero mean the
    statistic is ±inf, so p is 0 when the sign agrees with ``alternative`` and 1 otherwise.
    """
    if mean == 0.0:
        return 1.0
    if alternative == "two-sided":
        return 0.0
    if alternative == "greater":
        return 0.0 if mean > 0 else 1.0
    return 0.0 if mean < 0 else 1.0


def _degenerate_t(mean: float) -> float:
    """t statistic for SD 0: 0 if the mean is 0 (no evidence either way), else ±inf."""
    if mean == 0.0:
        return 0.0
    return math.copysign(math.inf, mean)


# --------------------------------------------------------------------------------------------
# summaries and floors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary(_ToDict):
    """Mean, spread and confidence interval of repeated runs (e.g. one value per seed).

    Attributes:
        mean: sample mean x̄ = Σxᵢ/n (metric unit); NaN when n = 0.
        sd: sample standard deviation s = √(Σ(xᵢ−x̄)²/(n−1)) (ddof = 1, metric unit); NaN when
            n < 2.
        n: number of finite values used.
        ci_low: lower bound of the two-sided CI of the mean (metric unit).
        ci_high: upper bound of the two-sided CI of the mean (metric unit).
        se: standard error of the mean, sd_used/√n (metric unit); NaN when unknown.
        sd_used: the SD the interval is built on, max(sd, floor_sd); for n = 1 it is floor_sd
            (NaN if no floor was given).
    """

    mean: float
    sd: float
    n: int
    ci_low: float
    ci_high: float
    se: float
    sd_used: float


def summarize(values: ArrayLike, confidence: float = 0.95, floor_sd: float = 0.0) -> Summary:
    """Summarises repeated measurements with a noise-floored confidence interval of the mean.

    With n ≥ 2 finite values the interval is the Student-t interval

        x̄ ± t_{(1+c)/2, n−1} · sd_used/√n,   sd_used = max(s, floor_sd),

    where s is the sample SD (ddof = 1) and c = ``confidence``. The floor guards against
    seed-to-seed spreads that are implausibly small: the caller passes, e.g., the binomial SD of a
    test-set accuracy (:func:`binomial_floor_sd`), the noise that a finite test set adds to every
    single run no matter how many seeds agree. Keeping n − 1 degrees of freedom when the floor is
    used is conservative.

    With n = 1 there is no sample SD. The only spread we know is then the floor, so the interval
    is the normal (z) interval x̄ ± z_{(1+c)/2} · floor_sd, which accounts for test-set sampling
    noise only (not for seed-to-seed variation); without a floor (floor_sd = 0) the interval is
    (−inf, inf): one run says nothing about its own spread.

    With n = 0 every field except n is NaN.

    Args:
        values: the measurements (metric unit), e.g. one accuracy per seed; NaNs are dropped.
        confidence: two-sided confidence level in (0, 1).
        floor_sd: lower bound on the per-run SD (metric unit, ≥ 0).

    Returns:
        A :class:`Summary`.

    Raises:
        ValueError: if ``confidence`` is outside (0, 1), ``floor_sd`` is negative or NaN, or
            ``values`` is not 1-D.
    """
    _check_confidence(confidence)
    if not floor_sd >= 0.0:
        raise ValueError(f"floor_sd must be >= 0; got {floor_sd!r}")
    x = _finite(values, "values")
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return Summary(nan, nan, 0, nan, nan, nan, nan)
    mean = float(np.mean(x))
    if n == 1:
        if floor_sd > 0.0:
            z = float(st.norm.ppf(0.5 + confidence / 2.0))
            half = z * floor_sd
            return Summary(mean, nan, 1, mean - half, mean + half, float(floor_sd), float(floor_sd))
        return Summary(mean, nan, 1, -math.inf, math.inf, nan, nan)
    sd = float(np.std(x, ddof=1))
    sd_used = max(sd, float(floor_sd))
    se = sd_used / math.sqrt(n)
    tq = float(st.t.ppf(0.5 + confidence / 2.0, n - 1))
    half = tq * se
    return Summary(mean, sd, n, mean - half, mean + half, se, sd_used)


def binomial_floor_sd(p: float, n_test: int) -> float:
    """Binomial SD of an accuracy measured on a finite test set, as a proportion.

    An accuracy p measured on n_test independent test examples has sampling SD

        σ = √(p(1 − p)/n_test)

    even for a perfectly deterministic model; no spread of reproduced accuracies can honestly be
    claimed below it. Example: p = 0.94, n_test = 10 000 → σ ≈ 0.00237.

    Args:
        p: accuracy (or any per-example success rate) as a proportion in [0, 1].
        n_test: number of test examples (> 0).

    Returns:
        σ as a proportion (same unit as ``p``).

    Raises:
        ValueError: if p is outside [0, 1] or n_test ≤ 0.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a proportion in [0, 1]; got {p!r}")
    if not n_test > 0:
        raise ValueError(f"n_test must be > 0; got {n_test!r}")
    return math.sqrt(p * (1.0 - p) / n_test)


def binomial_floor_sd_percent(acc_percent: float, n_test: int) -> float:
    """Binomial SD of an accuracy given in percent, in percentage points.

    σ_pp = 100 · √(q(1 − q)/n_test) with q = acc_percent/100.
    Example: 94 %, n_test = 10 000 → σ ≈ 0.237 percentage points.

    Args:
        acc_percent: accuracy in percent, in [0, 100].
        n_test: number of test examples (> 0).

    Returns:
        σ in percentage points.

    Raises:
        ValueError: if acc_percent is outside [0, 100] or n_test ≤ 0.
    """
    if not 0.0 <= acc_percent <= 100.0:
        raise ValueError(f"acc_percent must lie in [0, 100]; got {acc_percent!r}")
    return 100.0 * binomial_floor_sd(acc_percent / 100.0, n_test)


# --------------------------------------------------------------------------------------------
# two-sample comparisons
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedResult(_ToDict):
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
    a: ArrayLike, b: ArrayLike, confidence: float = 0.95, alternative: Alternative = "greater"
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

    Args:
        a: values of the first condition (metric unit), e.g. one per seed.
        b: values of the second condition, same length and order as ``a``.
        confidence: two-sided confidence level of the CI, in (0, 1).
        alternative: ``"greater"`` (a > b), ``"less"`` (a < b) or ``"two-sided"``.

    Returns:
        A :class:`PairedResult` with ``test="paired-t"``.

    Raises:
        ValueError: if a and b differ in length, are not 1-D, or an argument is out of range.
    """
    _check_confidence(confidence)
    _check_alternative(alternative)
    xa, xb = _as_1d(a, "a"), _as_1d(b, "b")
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
    if sd == 0.0:
        return PairedResult(
            mean,
            0.0,
            n,
            mean,
            mean,
            _degenerate_t(mean),
            _degenerate_p(mean, alternative),
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


def _wilcoxon_p(d: np.ndarray, alternative: str) -> float:
    """Wilcoxon signed-rank p-value of differences ``d``; NaN if n < 2 or all d are 0."""
    if d.size < 2 or not np.any(d != 0.0):
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
    _check_confidence(confidence)
    _check_alternative(alternative)
    xa, xb = _finite(a, "a"), _finite(b, "b")
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
            mean, 0.0, n, mean, mean, _degenerate_t(mean), _degenerate_p(mean, alternative), rank_p, "welch-t", na, nb
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
    if xa.size < 2 or xb.size < 2:
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(st.mannwhitneyu(xa, xb, alternative=alternative).pvalue)
    except ValueError:
        return math.nan


# --------------------------------------------------------------------------------------------
# power
# --------------------------------------------------------------------------------------------


def t_test_power(
    n: int | np.ndarray,
    effect: float,
    sd: float,
    alpha: float = 0.05,
    paired: bool = True,
    alternative: Alternative = "greater",
) -> float | np.ndarray:
    """Exact power of a t-test of a mean difference, from the noncentral t distribution.

    Paired (one-sample t on n differences with SD σ): df = n − 1, δ = effect·√n/σ.
    Unpaired (two groups of n each, common per-group SD σ): df = 2n − 2, δ = effect·√(n/2)/σ.
    With T' ~ nct(df, δ) and critical values from the central t distribution:

        greater:   power = P(T' > t_{1−α, df})
        less:      power = P(T' < −t_{1−α, df})
        two-sided: power = P(T' > t_{1−α/2, df}) + P(T' < −t_{1−α/2, df})

    Args:
        n: pairs (paired) or runs per group (unpaired), ≥ 2; scalar or array.
        effect: true mean difference a − b (metric unit).
        sd: σ (metric unit, > 0): SD of the differences (paired) or per-group SD (unpaired).
        alpha: significance level in (0, 1).
        paired: paired or two-sample design.
        alternative: ``"greater"``, ``"less"`` or ``"two-sided"``.

    Returns:
        Power in [0, 1], with the shape of ``n``.

    Raises:
        ValueError: if an argument is out of range.
    """
    _check_alternative(alternative)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    if not sd > 0.0:
        raise ValueError(f"sd must be > 0; got {sd!r}")
    ns = np.asarray(n, dtype=float)
    if np.any(ns < 2):
        raise ValueError(f"n must be >= 2; got {n!r}")
    if paired:
        df, ncp = ns - 1.0, effect * np.sqrt(ns) / sd
    else:
        df, ncp = 2.0 * ns - 2.0, effect * np.sqrt(ns / 2.0) / sd
    if alternative == "two-sided":
        crit = st.t.ppf(1.0 - alpha / 2.0, df)
        power = st.nct.sf(crit, df, ncp) + st.nct.cdf(-crit, df, ncp)
    else:
        crit = st.t.ppf(1.0 - alpha, df)
        power = st.nct.sf(crit, df, ncp) if alternative == "greater" else st.nct.cdf(-crit, df, ncp)
    power = np.clip(power, 0.0, 1.0)
    return float(power) if np.ndim(power) == 0 else power


def seeds_needed(
    effect: float,
    sd: float,
    alpha: float = 0.05,
    power: float = 0.8,
    paired: bool = True,
    alternative: Alternative = "greater",
    max_n: int = 10000,
) -> int | None:
    """Smallest number of seeds for a t-test to detect a mean difference with given power.

    Returns the smallest n ≥ 2 with :func:`t_test_power` (n, effect, sd, alpha, paired,
    alternative) ≥ ``power``, computed exactly from the noncentral t distribution (no normal
    approximation). For ``paired=True`` n is the number of seed pairs and ``sd`` the SD of the
    paired differences; for ``paired=False`` n is the number of seeds per group and ``sd`` the
    common per-group SD. Example: paired, one-sided α = 0.05, power 0.8, effect/sd = 1 → n = 8
    (exact power 0.815; n = 7 gives 0.754).

    The sign of ``effect`` matters for one-sided tests: with ``alternative="greater"`` a negative
    effect can never be shown, so the answer is None (likewise a positive effect with ``"less"``).

    Args:
        effect: true mean difference a − b to detect (metric unit).
        sd: SD (metric unit, ≥ 0), see above.
        alpha: significance level in (0, 1).
        power: target power in (0, 1).
        paired: paired (shared seeds) or two independent groups.
        alternative: ``"greater"``, ``"less"`` or ``"two-sided"``.
        max_n: largest n searched.

    Returns:
        The smallest sufficient n; 2 if sd = 0 (any non-zero difference with zero spread is
        detected by the smallest test); None if effect = 0, the effect points against a
        one-sided alternative, or more than ``max_n`` seeds would be needed.

    Raises:
        ValueError: if an argument is out of range or NaN.
    """
    _check_alternative(alternative)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1); got {power!r}")
    if not sd >= 0.0:
        raise ValueError(f"sd must be >= 0; got {sd!r}")
    if math.isnan(effect):
        raise ValueError("effect must not be NaN")
    if effect == 0.0:
        return None
    if (alternative == "greater" and effect < 0) or (alternative == "less" and effect > 0):
        return None
    if max_n < 2:
        return None
    if sd == 0.0:
        return 2
    lo = 2
    block = 64
    while lo <= max_n:
        hi = min(max_n, lo + block - 1)
        ns = np.arange(lo, hi + 1)
        pw = np.asarray(t_test_power(ns, effect, sd, alpha, paired, alternative))
        hit = np.flatnonzero(pw >= power)
        if hit.size:
            return int(ns[hit[0]])
        lo, block = hi + 1, block * 4
    return None


# --------------------------------------------------------------------------------------------
# rates and bootstrap
# --------------------------------------------------------------------------------------------


def rate_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson exact confidence interval of a binomial proportion k/n.

    With c = ``confidence`` and a = (1 − c)/2:

        low  = Beta⁻¹(a; k, n − k + 1)      (0 if k = 0)
        high = Beta⁻¹(1 − a; k + 1, n − k)  (1 if k = n)

    Identical to ``scipy.stats.binomtest(k, n).proportion_ci(c, method="exact")``. Used, e.g.,
    for the fraction of claims or seeds that reproduce.

    Args:
        k: number of successes, 0 ≤ k ≤ n.
        n: number of trials, ≥ 0.
        confidence: two-sided confidence level in (0, 1).

    Returns:
        (low, high) as proportions in [0, 1]; (0, 1) when n = 0 (nothing is known).

    Raises:
        ValueError: if k or n is negative or non-integral, k > n, or confidence is out of range.
    """
    _check_confidence(confidence)
    if int(k) != k or int(n) != n or k < 0 or n < 0 or k > n:
        raise ValueError(f"need integers 0 <= k <= n; got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n == 0:
        return (0.0, 1.0)
    a = (1.0 - confidence) / 2.0
    low = 0.0 if k == 0 else float(st.beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(st.beta.ppf(1.0 - a, k + 1, n - k))
    return (low, high)


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[[np.ndarray], float],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of any statistic of one sample.

    Resamples the finite values with replacement ``n_resamples`` times (via
    :func:`scipy.stats.bootstrap`, ``method="percentile"``, seeded with
    ``np.random.default_rng(seed)`` so the result is reproducible), evaluates ``statistic`` on
    each resample and returns the (1 − c)/2 and (1 + c)/2 quantiles of those values. Typical use:
    the CI of a seed-to-seed SD, ``bootstrap_ci(x, lambda v: np.std(v, ddof=1))``.

    Args:
        values: the sample (metric unit); NaNs are dropped.
        statistic: maps a 1-D float array to a float (called once per resample).
        confidence: two-sided confidence level in (0, 1).
        n_resamples: number of bootstrap resamples (≥ 1).
        seed: seed of the resampling generator.

    Returns:
        (low, high) in the unit of ``statistic``; (NaN, NaN) when fewer than 2 finite values.

    Raises:
        ValueError: if confidence or n_resamples is out of range.
    """
    _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples!r}")
    x = _finite(values, "values")
    if x.size < 2:
        return (math.nan, math.nan)

    def _stat(sample: np.ndarray) -> float:
        return float(statistic(np.asarray(sample, dtype=float)))

    kwargs: dict[str, Any] = dict(
        n_resamples=int(n_resamples), vectorized=False, confidence_level=confidence, method="percentile"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # scipy >= 1.15 names the generator ``rng``
            res = st.bootstrap((x,), _stat, rng=np.random.default_rng(seed), **kwargs)
        except TypeError:  # older scipy: ``random_state``
            res = st.bootstrap((x,), _stat, random_state=np.random.default_rng(seed), **kwargs)
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


# --------------------------------------------------------------------------------------------
# reproduced versus reported
# --------------------------------------------------------------------------------------------


def mean_squared_deviation(reproduced: ArrayLike, reported: ArrayLike) -> float:
    """Mean squared deviation between reproduced and reported values.

        MSD = (1/m) Σᵢ (reproducedᵢ − reportedᵢ)²

    over the m pairs where both values are finite (NaN pairs dropped). Unit: metric unit squared.

    Args:
        reproduced: reproduced values, one per reported number.
        reported: the paper's values, same length and order.

    Returns:
        The MSD; NaN if no complete pair remains.

    Raises:
        ValueError: if the inputs differ in length or are not 1-D.
    """
    x, y = _as_1d(reproduced, "reproduced"), _as_1d(reported, "reported")
    if x.shape != y.shape:
        raise ValueError(f"reproduced and reported must have equal length; got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    if not np.any(keep):
        return math.nan
    return float(np.mean((x[keep] - y[keep]) ** 2))


def relative_error(reproduced: float, reported: float) -> float:
    """Signed relative error of a reproduced number against the reported one.

        rel = (reproduced − reported) / |reported|

    A dimensionless fraction (0.05 = 5 % above the reported value). Positive means the reproduced
    value is larger, whatever the metric's direction.

    Args:
        reproduced: reproduced value (metric unit).
        reported: reported value (metric unit).

    Returns:
        rel; NaN if reported is 0 or either input is NaN.
    """
    reproduced, reported = float(reproduced), float(reported)
    if reported == 0.0 or math.isnan(reported) or math.isnan(reproduced):
        return math.nan
    return (reproduced - reported) / abs(reported)


def traffic_light(reproduced: float, reported: float, higher_is_better: bool = True, threshold: float = 0.10) -> str:
    """Colour of a reproduced number in the reproduction-report convention.

    With rel = :func:`relative_error` (reproduced, reported):

    * ``"black"``: within the threshold, |rel| ≤ threshold (10 % relative error by default;
      the comparison tolerates 1e-9 relative rounding, so 0.9 vs 1.0 is black);
    * ``"green"``: better than reported by more than the threshold (rel > threshold if higher is
      better, rel < −threshold if lower is better);
    * ``"red"``: worse than reported by more than the threshold;
    * ``"gray"``: cannot be judged (a value is NaN).

    If reported = 0 the relative error is unbounded: equal values are black, otherwise the colour
    follows the direction of the difference (green or red).

    Args:
        reproduced: reproduced value (metric unit).
        reported: reported value (metric unit).
        higher_is_better: True for accuracy-like metrics, False for errors and losses.
        threshold: relative-error threshold as a fraction (≥ 0), 0.10 = 10 %.

    Returns:
        ``"black"``, ``"green"``, ``"red"`` or ``"gray"``.

    Raises:
        ValueError: if threshold is negative or NaN.
    """
    if not threshold >= 0.0:
        raise ValueError(f"threshold must be >= 0; got {threshold!r}")
    reproduced, reported = float(reproduced), float(reported)
    if math.isnan(reproduced) or math.isnan(reported):
        return "gray"
    if reproduced == reported:
        return "black"
    if reported != 0.0:
        rel = abs(relative_error(reproduced, reported))
        if rel <= threshold or math.isclose(rel, threshold, rel_tol=1e-9):
            return "black"
    better = reproduced > reported if higher_is_better else reproduced < reported
    return "green" if better else "red"


# --------------------------------------------------------------------------------------------
# trends
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlopeResult(_ToDict):
    """Least-squares slope of y on x with its confidence interval.

    Attributes:
        slope: b̂ = Σ(xᵢ−x̄)(yᵢ−ȳ)/Σ(xᵢ−x̄)² (unit of y per unit of x).
        ci_low: lower bound of the two-sided CI of the slope.
        ci_high: upper bound of the two-sided CI of the slope.
        p_value: two-sided p-value of H₀: slope = 0 (t-test, n − 2 df).
        n: number of complete (x, y) pairs used.
        r: Pearson correlation coefficient (dimensionless).
    """

    slope: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    r: float


def slope_test(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> SlopeResult:
    """Linear regression of y on x, for claims of a trend over a variable.

    Uses :func:`scipy.stats.linregress`. With standard error SE(b̂) and n complete pairs:

        CI = b̂ ± t_{(1+c)/2, n−2} · SE(b̂),   p = 2·P(T_{n−2} > |b̂/SE(b̂)|).

    Special cases: pairs with a NaN are dropped; fewer than 2 pairs or all x equal → everything
    NaN (slope undefined); exactly 2 pairs → slope and r, but p NaN and CI (−inf, inf) (no
    residual degrees of freedom); a perfect fit (SE = 0) → CI (b̂, b̂) and p = 0 if b̂ ≠ 0, else 1
    (all y equal: slope 0, p 1, r NaN).

    Args:
        x: the variable (e.g. width, depth, data-set size), any unit.
        y: the measured metric at each x, same length.
        confidence: two-sided confidence level in (0, 1).

    Returns:
        A :class:`SlopeResult`.

    Raises:
        ValueError: if x and y differ in length or are not 1-D, or confidence is out of range.
    """
    _check_confidence(confidence)
    xs, ys = _as_1d(x, "x"), _as_1d(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have equal length; got {xs.size} and {ys.size}")
    keep = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[keep], ys[keep]
    n = int(xs.size)
    nan = math.nan
    if n < 2 or np.all(xs == xs[0]):
        return SlopeResult(nan, nan, nan, nan, n, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = st.linregress(xs, ys)
    slope, r = float(res.slope), float(res.rvalue)
    if n == 2:
        return SlopeResult(slope, -math.inf, math.inf, nan, n, r)
    se = float(res.stderr)
    if np.all(ys == ys[0]):  # flat exact line: linregress gives 0/0 for SE and r
        se = 0.0
    if se == 0.0:
        return SlopeResult(slope, slope, slope, 0.0 if slope != 0.0 else 1.0, n, r)
    half = float(st.t.ppf(0.5 + confidence / 2.0, n - 2)) * se
    return SlopeResult(slope, slope - half, slope + half, float(res.pvalue), n, r)
