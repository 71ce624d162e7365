"""Deprecated: verdicts and result types are :mod:`restudy.compare.verdicts`; a claim kind
imports them from :mod:`restudy.api`.

Kept for one release: every name resolves from its new home with a ``DeprecationWarning``.
"""

from .._compat import moved

__getattr__ = moved(
    "restudy.compare.results",
    {
        "REPRODUCED": "restudy.api",
        "NOT_REPRODUCED": "restudy.api",
        "INCONCLUSIVE": "restudy.api",
        "NOT_EVALUATED": "restudy.api",
        "VERDICTS": "restudy.api",
        "POWER": "restudy.api",
        "MIN_SEEDS_TO_REJECT": "restudy.compare.verdicts",
        "SMOKE_NOTE": "restudy.compare.verdicts",
        "BORDERLINE_NOTE": "restudy.compare.verdicts",
        "combine": "restudy.api",
        "directional_verdict": "restudy.api",
        "directional_borderline": "restudy.api",
        "threshold_borderline": "restudy.api",
        "clean": "restudy.compare.verdicts",
        "GroupSummary": "restudy.compare.verdicts",
        "CellResult": "restudy.compare.verdicts",
        "TableResult": "restudy.compare.verdicts",
        "chance_sentence": "restudy.compare.verdicts",
        "ClaimResult": "restudy.api",
        "VariabilityCell": "restudy.compare.verdicts",
        "VariabilityRow": "restudy.compare.verdicts",
        "VariabilityTableResult": "restudy.compare.verdicts",
        "LeakageResult": "restudy.compare.verdicts",
        "ColumnRatio": "restudy.compare.verdicts",
        "Comparison": "restudy.compare.verdicts",
    },
)
