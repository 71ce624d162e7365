"""Deprecated: the variability metrics of a model set are :mod:`restudy.stats.variability`
(``variability`` is in :mod:`restudy.api`).

Kept for one release: every name resolves from its new home with a ``DeprecationWarning``.
"""

from ._compat import moved

__getattr__ = moved(
    "restudy.metrics",
    {
        "SD_METRICS": "restudy.stats.variability",
        "PAIRWISE_METRICS": "restudy.stats.variability",
        "SUMMARY_METRICS": "restudy.stats.variability",
        "REDUCTION_METRICS": "restudy.stats.variability",
        "REDUCTION_LABELS": "restudy.stats.variability",
        "Pairwise": "restudy.stats.variability",
        "pairwise_stats": "restudy.stats.variability",
        "summarize": "restudy.stats.variability",
        "resample_weights": "restudy.stats.variability",
        "jackknife_weights": "restudy.stats.variability",
        "bootstrap_draws": "restudy.stats.variability",
        "percentile_ci": "restudy.stats.variability",
        "bootstrap_sd": "restudy.stats.variability",
        "variability": "restudy.api",
        "summarize_with_ci": "restudy.stats.variability",
        "variability_value": "restudy.stats.variability",
        "reduction_percent": "restudy.stats.variability",
    },
)
