"""How numbers are written in sentences, tables and figure labels: one formatter, one missing mark.

Compare's sentences (``ClaimResult.summary``, cell notes) and every report table use these
functions, so a value reads the same everywhere and a missing one (None, NaN, not a number) is
always :data:`MISSING`.

Imports nothing of restudy.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "n/a"


def _number(x: Any) -> float | None:
    """``x`` as a float, or None when it is missing, a bool or not a number."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def fmt(x: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``inf``/``-inf`` for infinities; :data:`MISSING`
    for None, NaN or anything that is not a number. A value that rounds to zero never reads
    ``-0.00``."""
    v = _number(x)
    if v is None or math.isnan(v):
        return MISSING
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def pct(level: float) -> str:
    """A level or fraction as a percentage without trailing zeros: ``90%``, ``96.7%``."""
    text = f"{100 * level:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def p_value(p: Any) -> str:
    """A p-value as ``p=0.012`` or ``p<0.001`` (``p=n/a`` when missing)."""
    v = _number(p)
    if v is None or not math.isfinite(v):
        return f"p={MISSING}"
    return "p<0.001" if v < 0.001 else f"p={v:.3f}"


def signed_percent(x: Any) -> str:
    """A signed fraction as a percentage with one decimal: ``+4.2%``."""
    v = _number(x)
    if v is None or not math.isfinite(v):
        return MISSING
    text = f"{v:+.1%}"
    return "0.0%" if not text.strip("+-0.%") else text


def interval(low: Any, high: Any, digits: int = 2) -> str:
    """``[low, high]``."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"
