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

Imports nothing of restudy outside this package. One module per concept: ``summary``,
``comparisons``, ``power``, ``intervals``, ``agreement``, ``decisions`` (equivalence), ``trend``, and the
variability metrics of a set of models' predictions (``variability``, with ``cka``). The helpers a
claim kind needs are in :mod:`restudy.api`; the names this package used to export still resolve for
one release, with a ``DeprecationWarning`` naming their new home.
"""

from __future__ import annotations

from .._compat import moved

__getattr__ = moved(
    "restudy.stats",
    {
        "Alternative": "restudy.stats._core",
        "mean_squared_deviation": "restudy.stats.agreement",
        "relative_error": "restudy.stats.agreement",
        "traffic_light": "restudy.stats.agreement",
        "PairedResult": "restudy.api",
        "paired_difference": "restudy.api",
        "welch_difference": "restudy.api",
        "DIFFERENT": "restudy.api",
        "EQUIVALENT": "restudy.api",
        "UNDECIDED": "restudy.api",
        "Equivalence": "restudy.api",
        "borderline": "restudy.stats.decisions",
        "equivalence": "restudy.api",
        "interval_decision": "restudy.stats.decisions",
        "seeds_to_decide": "restudy.api",
        "bca_interval": "restudy.stats.intervals",
        "bootstrap_ci": "restudy.stats.intervals",
        "bootstrap_interval": "restudy.api",
        "log_interval": "restudy.stats.intervals",
        "rate_ci": "restudy.api",
        "seeds_needed": "restudy.api",
        "t_test_power": "restudy.api",
        "Summary": "restudy.api",
        "binomial_floor_sd": "restudy.api",
        "binomial_floor_sd_percent": "restudy.api",
        "summarize": "restudy.api",
        "SlopeResult": "restudy.api",
        "slope_test": "restudy.api",
    },
)
