"""Power of t-tests and the seeds a test would need to detect an effect.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as st

from ._core import Alternative, check_alternative


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
    check_alternative(alternative)
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
    extra_variance: float = 0.0,
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
        extra_variance: a variance v of the mean difference that seeds do not shrink (squared
            metric unit), e.g. the test set's sampling noise (paired designs). The test then
            rejects only when both its test with √(sd²/n + v) (Welch–Satterthwaite degrees of
            freedom) and the plain test do (:func:`restudy.stats.comparisons.paired_difference`);
            its power is taken as the smaller of the two tests' noncentral-t powers. As n grows
            it tends to Φ(|effect|/√v − z_{1−α}), so an effect the test set's noise hides gets
            None.

    Returns:
        The smallest sufficient n; 2 if sd = 0 (any non-zero difference with zero spread is
        detected by the smallest test); None if effect = 0, the effect points against a
        one-sided alternative, or more than ``max_n`` seeds would be needed.

    Raises:
        ValueError: if an argument is out of range or NaN.
    """
    check_alternative(alternative)
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
    if extra_variance > 0.0:
        return _seeds_with_floor(abs(effect), sd, alpha, power, alternative, max_n, extra_variance)
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


def _seeds_with_floor(
    effect: float, sd: float, alpha: float, power: float, alternative: str, max_n: int, v: float
) -> int | None:
    """:func:`seeds_needed` of a paired design whose mean has a variance ``v`` no seed count
    shrinks: the smallest n at which both the test with √(sd²/n + v) and the plain test reach
    ``power``; None when even n → ∞ cannot."""
    a = alpha / 2.0 if alternative == "two-sided" else alpha
    if float(st.norm.sf(float(st.norm.ppf(1.0 - a)) - effect / math.sqrt(v))) < power:
        return None
    lo, block = 2, 64
    while lo <= max_n:
        ns = np.arange(lo, min(max_n, lo + block - 1) + 1).astype(float)
        w = sd * sd / ns
        df = np.where(w > 0, (w + v) ** 2 / np.maximum(w * w, 1e-300) * (ns - 1), np.inf)
        df = np.minimum(df, 1e6)
        with_v = st.nct.sf(st.t.ppf(1.0 - a, df), df, effect / np.sqrt(w + v))
        plain = st.nct.sf(st.t.ppf(1.0 - a, ns - 1), ns - 1, effect / np.sqrt(w)) if sd > 0 else 1.0
        hit = np.flatnonzero(np.minimum(with_v, plain) >= power)
        if hit.size:
            return int(ns[hit[0]])
        lo, block = int(ns[-1]) + 1, block * 4
    return None
