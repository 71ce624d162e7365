"""The one number formatter: every missing value reads the same; p-values, percentages, signs."""

from __future__ import annotations

import math

from restudy.display.numbers import MISSING, fmt, interval, p_value, pct, signed_percent


def test_one_formatter_one_missing_mark() -> None:
    assert fmt(None) == fmt(math.nan) == fmt("x") == fmt(True) == MISSING
    assert fmt(math.inf) == "inf" and fmt(-math.inf) == "-inf" and fmt(1.23456, 3) == "1.235"
    assert p_value(None) == f"p={MISSING}" and p_value(0.0001) == "p<0.001" and p_value(0.25) == "p=0.250"
    assert pct(0.9) == "90%" and pct(1 - 0.1 / 3) == "96.7%"
    assert signed_percent(0.042) == "+4.2%" and signed_percent(None) == MISSING
    assert interval(1, None) == f"[1.00, {MISSING}]"


def test_a_value_that_rounds_to_zero_has_no_minus_sign():
    assert fmt(-0.001) == "0.00"
    assert fmt(-0.0) == "0.00"
    assert fmt(-0.006) == "-0.01"
    assert signed_percent(-0.0001) == "0.0%"
    assert signed_percent(-0.01) == "-1.0%"
