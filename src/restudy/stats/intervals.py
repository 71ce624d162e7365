"""Intervals for rates (Clopper-Pearson) and bootstrap intervals of any statistic.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as st

from ._core import _check_confidence, _finite


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
