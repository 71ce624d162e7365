"""Agreement as a decision: equivalence of a reproduced and a reported number within a declared
tolerance (two one-sided tests, TOST), how many seeds would decide it either way, and when a
decided verdict is borderline.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ._core import ToDict

EQUIVALENT = "equivalent"
DIFFERENT = "different"
UNDECIDED = "undecided"
BORDERLINE_FRACTION = 0.10


@dataclass(frozen=True)
class Equivalence(ToDict):
    """The difference d = reproduced − reported judged against a tolerance δ.

    Attributes:
        diff: d (metric unit).
        se: standard error of d: √(se_reproduced² + se_reported²) (metric unit).
        df: degrees of freedom of the t quantile (seeds − 1; inf for a normal quantile).
        alpha: level of each one-sided test; the CI is two-sided at 1 − 2α.
        ci_low, ci_high: the (1 − 2α) CI of d.
        tolerance: δ (metric unit, ≥ 0).
        decision: ``equivalent`` (CI inside [−δ, δ]: both one-sided tests reject |d| ≥ δ),
            ``different`` (CI entirely outside [−δ, δ]) or ``undecided``.
        borderline: a decided CI whose decisive edge lies within 10 % of δ (or, for δ = 0, of
            the CI's width) of the tolerance.
    """

    diff: float
    se: float
    df: float
    alpha: float
    ci_low: float
    ci_high: float
    tolerance: float
    decision: str
    borderline: bool


def _quantile(alpha: float, df: float) -> float:
    return float(st.norm.ppf(1.0 - alpha)) if not math.isfinite(df) else float(st.t.ppf(1.0 - alpha, df))


def borderline(low: float, high: float, threshold: float, decided_inside: bool, by_width: bool = False) -> bool:
    """Whether an interval's decisive edge lies within 10 % of the threshold's size (of the
    interval's width when the threshold is 0, or ``by_width``) from the threshold.

    Args:
        low, high: the interval.
        threshold: the value the decisive edge was compared with.
        decided_inside: True when the decision was "the interval lies below/inside" (the upper
            edge decides against an upper threshold), as given by the caller's comparison.
        by_width: measure closeness by the interval's width, for thresholds on a level whose
            size says nothing about closeness (10 % of a 99 % accuracy bound would be 9.9 points).
    """
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(threshold)):
        return False
    scale = abs(threshold) if threshold != 0 and not by_width else (high - low)
    if scale <= 0:
        return False
    edge = high if decided_inside else low
    return abs(edge - threshold) <= BORDERLINE_FRACTION * scale


def interval_decision(low: float, high: float, tolerance: float) -> tuple[str, bool]:
    """The equivalence decision for any interval of a difference (e.g. an asymmetric bootstrap
    one) against ±δ, and whether its decisive edge lies within 10 % of δ (of the interval's width
    for δ = 0) of the tolerance."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return UNDECIDED, False
    if -tolerance <= low and high <= tolerance:
        decision, gap = EQUIVALENT, min(tolerance - high, low + tolerance)
    elif low > tolerance or high < -tolerance:
        decision, gap = DIFFERENT, (low - tolerance if low > tolerance else -tolerance - high)
    else:
        return UNDECIDED, False
    scale = tolerance if tolerance > 0 else (high - low)
    return decision, bool(scale > 0 and gap <= BORDERLINE_FRACTION * scale)


def equivalence(diff: float, se: float, df: float, tolerance: float, alpha: float = 0.05) -> Equivalence:
    """Equivalence test of d against ±δ (TOST), with its (1 − 2α) CI.

        CI = d ± q · se,  q = t_{1−α, df} (normal quantile for df = inf)
        equivalent: −δ ≤ CI low and CI high ≤ δ;  different: CI low > δ or CI high < −δ.

    Fewer seeds make the CI wider, so they make "equivalent" harder, never easier.

    Args:
        diff: reproduced − reported (metric unit).
        se: standard error of ``diff`` (≥ 0).
        df: degrees of freedom (≥ 1, or inf).
        tolerance: δ ≥ 0.
        alpha: level of each one-sided test, in (0, 0.5).

    Returns:
        An :class:`Equivalence`; ``undecided`` with an unbounded CI when se or diff is not finite.
    """
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5); got {alpha!r}")
    if not tolerance >= 0.0:
        raise ValueError(f"tolerance must be >= 0; got {tolerance!r}")
    if not (math.isfinite(diff) and math.isfinite(se) and se >= 0 and df >= 1):
        return Equivalence(diff, se, df, alpha, -math.inf, math.inf, tolerance, UNDECIDED, False)
    half = _quantile(alpha, df) * se
    low, high = diff - half, diff + half
    decision, near = interval_decision(low, high, tolerance)
    return Equivalence(diff, se, df, alpha, low, high, tolerance, decision, near)


def seeds_to_decide(
    diff: float, sd: float, se_fixed: float, tolerance: float, alpha: float = 0.05, max_n: int = 10000
) -> tuple[int | None, str]:
    """Seeds after which the equivalence CI would decide, if d and the run-to-run SD stayed as
    observed: the smallest n ≥ 2 with |d| + q_n·se_n ≤ δ (towards ``equivalent``, when |d| < δ)
    or |d| − q_n·se_n > δ (towards ``different``, when |d| > δ), se_n = √(sd²/n + se_fixed²).

    An expected-value estimate (half the time the CI of the next seeds will be wider), not a
    power analysis. ``se_fixed`` is the reported value's own standard error, which no number of
    seeds shrinks: when it alone keeps the CI from deciding, no count would.

    Returns:
        (n, the direction ``equivalent``/``different``) or (None, why none).
    """
    if not (math.isfinite(diff) and math.isfinite(sd) and math.isfinite(se_fixed)):
        return None, "the spread is unknown"
    gap = abs(diff)
    if gap == tolerance:
        return None, "the observed difference equals the tolerance"
    target = EQUIVALENT if gap < tolerance else DIFFERENT
    ns = np.arange(2, max_n + 1, dtype=float)
    q = st.t.ppf(1.0 - alpha, ns - 1.0)
    half = q * np.sqrt(sd**2 / ns + se_fixed**2)
    ok = gap + half <= tolerance if target == EQUIVALENT else gap - half > tolerance
    hit = np.flatnonzero(ok)
    if not hit.size:
        return None, f"no seed count would show {target}: the reported value's own uncertainty is too large"
    return int(ns[hit[0]]), target


def one_sided(
    diff: float, se: float, df: float, line: float, above: bool, alpha: float = 0.05
) -> tuple[str, float, float]:
    """Whether d lies on the claimed side of ``line``, from its (1 − 2α) CI (one-sided test at α).

        above: ``equivalent`` (the claimed side) when CI low ≥ line, ``different`` when CI high < line;
        below: ``equivalent`` when CI high ≤ line, ``different`` when CI low > line.

    Returns:
        (decision, CI low, CI high); ``undecided`` with an unbounded CI when se or d is not finite.
    """
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5); got {alpha!r}")
    if not (math.isfinite(diff) and math.isfinite(se) and se >= 0 and df >= 1):
        return UNDECIDED, -math.inf, math.inf
    half = _quantile(alpha, df) * se
    low, high = diff - half, diff + half
    if (low >= line) if above else (high <= line):
        return EQUIVALENT, low, high
    if (high < line) if above else (low > line):
        return DIFFERENT, low, high
    return UNDECIDED, low, high


def seeds_to_cross(
    diff: float, sd: float, se_fixed: float, line: float, alpha: float = 0.05, max_n: int = 10000
) -> int | None:
    """Seeds after which the one-sided CI of d would clear ``line`` on d's side, if d and the SD
    stayed as observed: the smallest n ≥ 2 with |d − line| > q_n·√(sd²/n + se_fixed²) (an
    expected-value estimate, as :func:`seeds_to_decide`); None when none would."""
    if not (math.isfinite(diff) and math.isfinite(sd) and math.isfinite(se_fixed)) or diff == line:
        return None
    ns = np.arange(2, max_n + 1, dtype=float)
    half = st.t.ppf(1.0 - alpha, ns - 1.0) * np.sqrt(sd**2 / ns + se_fixed**2)
    hit = np.flatnonzero(abs(diff - line) > half)
    return int(ns[hit[0]]) if hit.size else None
