"""Reproduced versus reported numbers: relative error, squared deviation, the 10 % traffic light.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from ._core import as_1d


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
    x, y = as_1d(reproduced, "reproduced"), as_1d(reported, "reported")
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
