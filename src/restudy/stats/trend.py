"""Trends: least-squares slope over a numeric axis with its interval and test.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as st

from ._core import ToDict, as_1d, check_confidence


@dataclass(frozen=True)
class SlopeResult(ToDict):
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
    check_confidence(confidence)
    xs, ys = as_1d(x, "x"), as_1d(y, "y")
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
