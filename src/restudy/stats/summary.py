"""Summaries of repeated runs: mean, SD and t-interval, with the binomial test-set floor of the SD.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as st

from ._core import ToDict, check_confidence, finite


@dataclass(frozen=True)
class Summary(ToDict):
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
    check_confidence(confidence)
    if not floor_sd >= 0.0:
        raise ValueError(f"floor_sd must be >= 0; got {floor_sd!r}")
    x = finite(values, "values")
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
