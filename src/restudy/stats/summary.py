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


def summarize(
    values: ArrayLike, confidence: float = 0.95, floor_sd: float = 0.0, extra_variance: float = 0.0
) -> Summary:
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

    ``extra_variance`` v is a variance of the mean that more seeds do not shrink: the sampling
    noise of the one finite test set every run is evaluated on (:func:`test_set_variance`). With
    v > 0 the standard error is √(sd_used²/n + v) with Welch–Satterthwaite degrees of freedom
    (sd_used²/n + v)²/((sd_used²/n)²/(n − 1)), and the interval is the wider of that one and the
    interval without v (adding noise never narrows it); with n = 1 the normal interval of
    √(floor_sd² + v).

    Args:
        values: the measurements (metric unit), e.g. one accuracy per seed; NaNs are dropped.
        confidence: two-sided confidence level in (0, 1).
        floor_sd: lower bound on the per-run SD (metric unit, ≥ 0).
        extra_variance: the variance v above (squared metric unit, ≥ 0).

    Returns:
        A :class:`Summary`.

    Raises:
        ValueError: if ``confidence`` is outside (0, 1), ``floor_sd`` is negative or NaN, or
            ``values`` is not 1-D.
    """
    check_confidence(confidence)
    if not floor_sd >= 0.0:
        raise ValueError(f"floor_sd must be >= 0; got {floor_sd!r}")
    if not extra_variance >= 0.0:
        raise ValueError(f"extra_variance must be >= 0; got {extra_variance!r}")
    v = float(extra_variance)
    x = finite(values, "values")
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return Summary(nan, nan, 0, nan, nan, nan, nan)
    mean = float(np.mean(x))
    if n == 1:
        if floor_sd > 0.0:
            z = float(st.norm.ppf(0.5 + confidence / 2.0))
            se1 = math.sqrt(float(floor_sd) ** 2 + v)
            return Summary(mean, nan, 1, mean - z * se1, mean + z * se1, se1, float(floor_sd))
        return Summary(mean, nan, 1, -math.inf, math.inf, nan, nan)
    sd = float(np.std(x, ddof=1))
    sd_used = max(sd, float(floor_sd))
    w = sd_used * sd_used / n
    se = math.sqrt(w + v)
    half = float(st.t.ppf(0.5 + confidence / 2.0, n - 1)) * math.sqrt(w)
    if v > 0.0:
        df = math.inf if w == 0.0 else (w + v) ** 2 / (w * w / (n - 1))
        q = float(st.norm.ppf(0.5 + confidence / 2.0) if math.isinf(df) else st.t.ppf(0.5 + confidence / 2.0, df))
        half = max(half, q * se)
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


def test_set_variance(accuracies_percent: ArrayLike, n_test: int) -> float:
    """Sampling variance (pp²) of a mean test accuracy that comes from the test set itself.

    Every run is evaluated on the same n_test examples, so the seeds average out training noise
    but not the luck of which examples the test set holds: the mean accuracy p̂ of any number of
    runs estimates the population accuracy with variance at most p(1 − p)/n_test (in pp²,
    10⁴·p(1 − p)/n_test), the binomial variance of one model. Pass it as ``extra_variance``.

    Args:
        accuracies_percent: the runs' (or seeds') accuracies in percent; their mean is used.
        n_test: test examples per evaluation (> 0).

    Returns:
        The variance in pp² (0 when there is no finite accuracy).
    """
    if not n_test > 0:
        raise ValueError(f"n_test must be > 0; got {n_test!r}")
    x = finite(accuracies_percent, "accuracies_percent")
    if x.size == 0:
        return 0.0
    p = min(1.0, max(0.0, float(np.mean(x)) / 100.0))
    return 1e4 * p * (1.0 - p) / n_test


def difference_test_set_variance(
    acc_a_percent: ArrayLike, acc_b_percent: ArrayLike, n_test: int, disagreement: float | None = None
) -> float:
    """Sampling variance (pp²) of a mean accuracy difference a − b from the shared test set.

    Both sides are evaluated on the same n_test examples. With the per-example mean correctness
    difference δᵢ = P(a right on i) − P(b right on i), the test set's share of the variance of the
    mean difference is Var(δ)/n_test, and Var(δ) ≤ q − (p_a − p_b)² (McNemar's variance) where q
    is the share of examples on which exactly one side is right. With the measured ``disagreement``
    q (averaged over the pairs of runs) that bound is used; without per-example predictions, q is
    taken at its value for independent errors, which gives p_a(1 − p_a) + p_b(1 − p_b): an
    overestimate when the two sides make mostly the same mistakes, as models trained on the same
    data do.

    Args:
        acc_a_percent, acc_b_percent: accuracies (%) of the two sides.
        n_test: test examples per evaluation (> 0).
        disagreement: measured share of examples where exactly one side is right, in [0, 1].

    Returns:
        The variance in pp².
    """
    if not n_test > 0:
        raise ValueError(f"n_test must be > 0; got {n_test!r}")
    a, b = finite(acc_a_percent, "acc_a_percent"), finite(acc_b_percent, "acc_b_percent")
    if a.size == 0 or b.size == 0:
        return 0.0
    pa = min(1.0, max(0.0, float(np.mean(a)) / 100.0))
    pb = min(1.0, max(0.0, float(np.mean(b)) / 100.0))
    if disagreement is not None:  # Var(δ) = E[δ²] − (p_a − p_b)² ≤ disagreement − (p_a − p_b)²
        q = min(1.0, max(0.0, float(disagreement)))
        return 1e4 * max(0.0, q - (pa - pb) ** 2) / n_test
    return 1e4 * (pa * (1.0 - pa) + pb * (1.0 - pb)) / n_test
