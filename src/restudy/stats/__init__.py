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

Imports nothing from restudy. One module per concept: ``summary``, ``comparisons``, ``power``,
``intervals``, ``agreement``, ``equivalence``, ``trend``; every public name is re-exported here.
"""

from __future__ import annotations

from ._core import Alternative
from .agreement import mean_squared_deviation, relative_error, traffic_light
from .comparisons import PairedResult, paired_difference, welch_difference
from .equivalence import (
    DIFFERENT,
    EQUIVALENT,
    UNDECIDED,
    Equivalence,
    borderline,
    equivalence,
    interval_decision,
    seeds_to_decide,
)
from .intervals import bca_interval, bootstrap_ci, bootstrap_interval, log_interval, rate_ci
from .power import seeds_needed, t_test_power
from .summary import Summary, binomial_floor_sd, binomial_floor_sd_percent, summarize
from .trend import SlopeResult, slope_test

__all__ = [
    "Alternative",
    "DIFFERENT",
    "EQUIVALENT",
    "UNDECIDED",
    "Equivalence",
    "PairedResult",
    "SlopeResult",
    "Summary",
    "bca_interval",
    "binomial_floor_sd",
    "borderline",
    "binomial_floor_sd_percent",
    "bootstrap_ci",
    "bootstrap_interval",
    "equivalence",
    "interval_decision",
    "log_interval",
    "mean_squared_deviation",
    "paired_difference",
    "rate_ci",
    "relative_error",
    "seeds_needed",
    "seeds_to_decide",
    "slope_test",
    "summarize",
    "t_test_power",
    "traffic_light",
    "welch_difference",
]
