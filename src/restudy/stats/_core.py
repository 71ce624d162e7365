"""Shared helpers of the statistics modules: input checks, JSON-safe result dataclasses.

Pure functions of numbers (numpy and scipy.stats); see the package docstring for the conventions.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

Alternative = Literal["greater", "less", "two-sided"]
_ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")


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


class ToDict:
    """Mixin giving frozen result dataclasses a JSON-safe ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a dict of JSON-safe scalars.

        Returns:
            ``{field name: value}`` where floats are Python floats and every NaN or ±inf is
            ``None``; ints stay ints and strings stay strings.
        """
        items = fields(self)  # type: ignore[arg-type]
        return {f.name: _json_value(getattr(self, f.name)) for f in items}


def as_1d(values: ArrayLike, name: str) -> np.ndarray:
    """Returns ``values`` as a flat float64 array (NaNs kept)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    return arr.reshape(-1)


def finite(values: ArrayLike, name: str) -> np.ndarray:
    """Returns ``values`` as a flat float64 array with NaNs dropped."""
    arr = as_1d(values, name)
    return arr[~np.isnan(arr)]


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")


def check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        allowed = ", ".join(_ALTERNATIVES)
        raise ValueError(f"alternative must be one of {allowed}; got {alternative!r}")


def degenerate_p(mean: float, alternative: str) -> float:
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


def degenerate_t(mean: float) -> float:
    """t statistic for SD 0: 0 if the mean is 0 (no evidence either way), else ±inf."""
    if mean == 0.0:
        return 0.0
    return math.copysign(math.inf, mean)
