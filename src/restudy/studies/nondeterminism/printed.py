"""The nondeterminism study's claim kinds about printed numbers (no runs).

Several of the [Re] report's findings are about printed numbers, not about runs: "the values on
paper appear to be about 20% higher than the calculated values" (§4.1, Table 6), "a slight increase
in the percentage" (Tables 6-7), "minor anomalies that account for more than 10% change" (Table 7).
A printed number is a cell of one of the study's tables (``{table, row, column}``) or the number as
printed with where it is printed (``{value, where}``); it stands for every value that rounds to it
(± half a unit of its last digit).

``reported_arithmetic``. Each pair of printed numbers gives ``left / right`` (``ratio``) or
``left − right`` (``difference``) as an interval over that rounding. *Reproduced* when the interval
lies inside the ``band`` (``relation: inside``) or wholly outside it (``relation: outside``); *not
reproduced* when it lies wholly on the other side; *inconclusive* when the printed digits allow
both. The ``quantifier`` combines the pairs: ``every`` (each must be reproduced; one not reproduced
refutes), ``any`` (one suffices; all must fail to refute) or ``mean`` (the interval of the mean
over pairs).

``reported_reduction``. A printed variability reduction % follows from the same table's printed
metrics of its row and of the reference row by one of the two formulas the sources use (re-derived
in ``restudy.stats.variability.reduction_percent``): ``original``, the mean over the five metrics of
100·(1 − V_row/V_reference) with V = 1 − correlation for the correlation; ``recalculated``, the
same mean with the correlation entering as 100·(corr_row − corr_reference)/corr_reference. The
formula is monotone in each input, so its range over the inputs' rounding is found at the corners
of that box. *Reproduced* when that range meets the printed value's rounding interval (the number
can follow from the printed metrics), *not reproduced* when it does not; every row must be.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Any, Literal

import numpy as np

from restudy.api import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimBase,
    ClaimKind,
    Field,
    fmt,
    register_claim_kind,
)

__all__ = [
    "METRICS",
    "ReportedArithmetic",
    "ReportedReduction",
    "arithmetic_interval",
    "band_verdict",
    "combine_pairs",
    "printed_interval",
    "printed_problems",
    "reduction",
    "reduction_range",
    "resolve",
]

METRICS = ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain")


def _text(value: Any) -> str:
    return getattr(value, "text", None) or str(value)


def printed_problems(p: Any, study: Any, loc: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """What is wrong with a printed number: a cell of one of the study's tables (``table``, ``row``,
    ``column``), or the number as printed (``value``) with ``where`` it is printed."""
    if not isinstance(p, dict) or not set(p) <= {"table", "row", "column", "value", "where"}:
        return [(loc, "a printed number is {table, row, column} or {value, where}")]
    if ("value" in p) == bool({"table", "row", "column"} & set(p)):
        return [(loc, "a printed number is a table cell (table, row, column) or a value, not both")]
    if "value" in p:
        try:
            float(_text(p["value"]))
        except ValueError:
            return [((*loc, "value"), "not a number")]
        return [] if p.get("where") else [(loc, "a printed value needs 'where' it is printed (document, table)")]
    if not all(p.get(k) for k in ("table", "row", "column")):
        return [(loc, "a table cell needs table, row and column")]
    tables = {t.id: t for t in study.tables}
    t = tables.get(p["table"])
    if t is None:
        return [((*loc, "table"), f"unknown table {p['table']!r}; known: {sorted(tables)}")]
    if p["row"] not in t.rows:
        return [((*loc, "row"), f"table {t.id} has no row {p['row']!r}; rows: {t.rows}")]
    if p["column"] not in t.columns:
        return [((*loc, "column"), f"table {t.id} has no column {p['column']!r}; columns: {t.columns}")]
    if t.value(p["row"], p["column"]) is None:
        return [(loc, f"table {t.id} reports no value at {p['row']}/{p['column']}")]
    return []


def printed_interval(text: str) -> tuple[float, float, float]:
    """The value a printed number shows and the interval of values that print as it:
    ``"37"`` → (37, 36.5, 37.5), ``"0.0072"`` → (0.0072, 0.00715, 0.00725)."""
    mantissa, _, exp = text.strip().lower().lstrip("+-").partition("e")
    decimals = (len(mantissa.split(".")[1]) if "." in mantissa else 0) - (int(exp) if exp else 0)
    v, h = float(text), 0.5 * 10.0 ** (-decimals)
    return v, v - h, v + h


def resolve(p: dict[str, Any], study: Any) -> tuple[str, float, float, float]:
    """(printed text, value, low, high) of a printed number (see :func:`printed_problems`)."""
    if "value" in p:
        return (_text(p["value"]), *printed_interval(_text(p["value"])))
    rv = study.table(p["table"]).value(p["row"], p["column"])
    text = rv.text or repr(rv.value)
    return (text, *printed_interval(text))


def band_verdict(low: float, high: float, band: tuple[float, float], relation: str = "inside") -> str:
    """An interval against a band: inside it, wholly outside it, or both possible."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    inside = band[0] <= low and high <= band[1]
    outside = high < band[0] or low > band[1]
    if relation == "outside":
        inside, outside = outside, inside
    return REPRODUCED if inside else NOT_REPRODUCED if outside else INCONCLUSIVE


def combine_pairs(quantifier: str, verdicts: list[str]) -> str:
    """``every``: all reproduced, one not reproduced refutes; ``any``: one suffices, all must fail
    to refute (``mean`` is one verdict already)."""
    if not verdicts:
        return NOT_EVALUATED
    if quantifier == "any":
        if REPRODUCED in verdicts:
            return REPRODUCED
        return NOT_REPRODUCED if all(v == NOT_REPRODUCED for v in verdicts) else INCONCLUSIVE
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def _table(headers: list[str], rows: list[list[str]]) -> Any:
    from restudy.api import tables

    return tables.table(headers, rows) if rows else None


# --------------------------------------------------------------------------------------------
# reported_arithmetic
# --------------------------------------------------------------------------------------------


class ReportedArithmetic(ClaimBase):
    """A ratio or difference of printed numbers lies inside (or outside) a band, each number
    standing for every value that rounds to it."""

    kind: Literal["reported_arithmetic"]
    operation: Literal["ratio", "difference"]
    pairs: list[dict[str, Any]] = Field(min_length=1, description="each {label, left, right}: two printed numbers")
    band: tuple[float, float]
    band_reason: str = Field(min_length=1, description="why this band (what the sentence's words allow)")
    relation: Literal["inside", "outside"] = "inside"
    quantifier: Literal["every", "any", "mean"] = "every"

    def reads_runs(self) -> bool:
        return False  # the documents' printed numbers only

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        if not self.band[0] <= self.band[1]:
            out.append((("band",), f"band must be [low, high] with low <= high; got {list(self.band)}"))
        for i, p in enumerate(self.pairs):
            if set(p) != {"label", "left", "right"}:
                out.append((("pairs", i), "a pair is {label, left, right}"))
                continue
            out += printed_problems(p["left"], study, ("pairs", i, "left"))
            out += printed_problems(p["right"], study, ("pairs", i, "right"))
        return out


def arithmetic_interval(operation: str, left: tuple[float, float], right: tuple[float, float]) -> tuple[float, float]:
    """The range of ``left op right`` over the two intervals (a ratio's divisor must not contain 0)."""
    if operation == "difference":
        return left[0] - right[1], left[1] - right[0]
    if right[0] <= 0 <= right[1]:
        return -math.inf, math.inf
    corners = [a / b for a, b in product(left, right)]
    return min(corners), max(corners)


def _evaluate_arithmetic(claim: ReportedArithmetic, ctx: Any) -> Any:
    items = []
    for p in claim.pairs:
        lt, lv, llo, lhi = resolve(p["left"], ctx.study)
        rt, rv, rlo, rhi = resolve(p["right"], ctx.study)
        point = lv / rv if claim.operation == "ratio" else lv - rv
        lo, hi = arithmetic_interval(claim.operation, (llo, lhi), (rlo, rhi))
        items.append({"label": p["label"], "left": lt, "right": rt, "value": point, "low": lo, "high": hi})
    if claim.quantifier == "mean":
        lo, hi = float(np.mean([i["low"] for i in items])), float(np.mean([i["high"] for i in items]))
        point = float(np.mean([i["value"] for i in items]))
        verdict = band_verdict(lo, hi, claim.band, claim.relation)
        for i in items:
            i["verdict"] = ""
        head = f"mean over {len(items)} pairs {fmt(point)} (printed rounding allows [{fmt(lo)}, {fmt(hi)}])"
    else:
        for i in items:
            i["verdict"] = band_verdict(i["low"], i["high"], claim.band, claim.relation)
        verdict = combine_pairs(claim.quantifier, [i["verdict"] for i in items])
        counts = {v: sum(i["verdict"] == v for i in items) for v in (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)}
        head = (
            f"{claim.quantifier} of {len(items)} pairs: {counts[REPRODUCED]} {claim.relation} the band, "
            f"{counts[NOT_REPRODUCED]} against it, {counts[INCONCLUSIVE]} undecided by the printed digits"
        )
        lo, hi = min(i["low"] for i in items), max(i["high"] for i in items)
    sign = "/" if claim.operation == "ratio" else "−"
    summary = f"{head}; left {sign} right {claim.relation} [{fmt(claim.band[0])}, {fmt(claim.band[1])}]; " + "; ".join(
        f"{i['label']}: {i['left']} {sign} {i['right']} = {fmt(i['value'])}" for i in items
    )
    ev = {
        "operation": claim.operation,
        "relation": claim.relation,
        "quantifier": claim.quantifier,
        "band": list(claim.band),
        "band_reason": claim.band_reason,
        "pairs": items,
        "low": lo,
        "high": hi,
    }
    return ctx.result(claim, verdict, summary, ev, scale_note="from the documents' printed numbers (no runs)")


@register_claim_kind
class ReportedArithmeticKind(ClaimKind):
    schema = ReportedArithmetic
    rule = (
        "a *reported arithmetic* claim computes a ratio or difference of printed numbers over every value that "
        "rounds to them: reproduced when that range lies on the band's claimed side, not reproduced when wholly "
        "on the other"
    )
    evaluate = staticmethod(_evaluate_arithmetic)

    @staticmethod
    def render(claim: ReportedArithmetic, result: Any) -> tuple[list[str], Any]:
        ev = result.evidence
        rows = [
            [
                i["label"],
                i["left"],
                i["right"],
                f"{fmt(i['value'])} [{fmt(i['low'])}, {fmt(i['high'])}]",
                (i.get("verdict") or "").replace("_", " "),
            ]
            for i in ev.get("pairs", [])
        ]
        head = ["pair", "left (printed)", "right (printed)", f"{ev.get('operation')} [rounding range]", "verdict"]
        return [result.summary, f"Why this band: {ev.get('band_reason')}"], _table(head, rows)


# --------------------------------------------------------------------------------------------
# reported_reduction
# --------------------------------------------------------------------------------------------


def reduction(method: dict[str, float], baseline: dict[str, float], formula: str) -> float:
    """Variability reduction % of ``method`` against ``baseline`` by the original paper's formula
    or the reproduction's recalculation (as ``restudy.stats.variability.reduction_percent``)."""
    out = []
    for m in METRICS:
        a, b = method[m], baseline[m]
        if m == "correlation" and formula == "recalculated":
            out.append(100.0 * (a - b) / b)
        else:
            va, vb = (1.0 - a, 1.0 - b) if m == "correlation" else (a, b)
            out.append(100.0 * (1.0 - va / vb))
    return float(np.mean(out))


class ReportedReduction(ClaimBase):
    """Printed reduction percentages follow from the same table's printed metrics by ``formula``."""

    kind: Literal["reported_reduction"]
    table: str
    reference_row: str
    formula: Literal["original", "recalculated"]
    rows: list[dict[str, Any]] = Field(min_length=1, description="each {row, printed}: a row and its printed %")

    def reads_runs(self) -> bool:
        return False  # the documents' printed numbers only

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        tables = {t.id: t for t in study.tables}
        t = tables.get(self.table)
        if t is None:
            return [(("table",), f"unknown table {self.table!r}; known: {sorted(tables)}")]
        if any(set(r) != {"row", "printed"} for r in self.rows):
            return [(("rows",), "each row is {row, printed}")]
        for i, name in [(None, self.reference_row)] + [(i, r["row"]) for i, r in enumerate(self.rows)]:
            loc = ("reference_row",) if i is None else ("rows", i, "row")
            if name not in t.rows:
                out.append((loc, f"table {t.id} has no row {name!r}; rows: {t.rows}"))
            elif any(t.value(name, m) is None for m in METRICS):
                out.append((loc, f"table {t.id} row {name} lacks one of the metrics {list(METRICS)}"))
        for i, r in enumerate(self.rows):
            out += printed_problems(r["printed"], study, ("rows", i, "printed"))
        return out


def reduction_range(
    row: dict[str, tuple[float, float]], ref: dict[str, tuple[float, float]], formula: str
) -> tuple[float, float]:
    """The range of the reduction % over every value that rounds to the printed metrics (the
    formula is monotone in each input, so the range is reached at the corners of the box)."""
    keys = [(side, m) for side in ("row", "ref") for m in METRICS]
    values = []
    for corner in product((0, 1), repeat=len(keys)):
        pick = {k: (row if k[0] == "row" else ref)[k[1]][c] for k, c in zip(keys, corner)}
        values.append(
            reduction({m: pick[("row", m)] for m in METRICS}, {m: pick[("ref", m)] for m in METRICS}, formula)
        )
    return min(values), max(values)


def _evaluate_reduction(claim: ReportedReduction, ctx: Any) -> Any:
    t = ctx.study.table(claim.table)

    def metrics_of(row: str) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
        vals = {m: printed_interval(t.value(row, m).text or repr(t.value(row, m).value)) for m in METRICS}
        return {m: v[0] for m, v in vals.items()}, {m: (v[1], v[2]) for m, v in vals.items()}

    ref_point, ref_box = metrics_of(claim.reference_row)
    items = []
    for r in claim.rows:
        point, box = metrics_of(r["row"])
        text, _, plo, phi = resolve(r["printed"], ctx.study)
        lo, hi = reduction_range(box, ref_box, claim.formula)
        verdict = REPRODUCED if lo <= phi and plo <= hi else NOT_REPRODUCED
        items.append(
            {
                "row": r["row"],
                "printed": text,
                "computed": reduction(point, ref_point, claim.formula),
                "low": lo,
                "high": hi,
                "verdict": verdict,
            }
        )
    verdict = combine_pairs("every", [i["verdict"] for i in items])
    ok = sum(i["verdict"] == REPRODUCED for i in items)
    summary = (
        f"{ok} of {len(items)} printed reductions follow from {claim.table}'s printed metrics by the "
        f"{claim.formula} formula against row {claim.reference_row}: "
        + "; ".join(
            f"{i['row']} {fmt(i['computed'], 1)} (range [{fmt(i['low'], 1)}, {fmt(i['high'], 1)}])"
            f" vs printed {i['printed']}"
            for i in items
        )
    )
    ev = {"table": claim.table, "reference_row": claim.reference_row, "formula": claim.formula, "rows": items}
    return ctx.result(claim, verdict, summary, ev, scale_note="from the documents' printed numbers (no runs)")


@register_claim_kind
class ReportedReductionKind(ClaimKind):
    schema = ReportedReduction
    rule = (
        "a *reported reduction* claim recomputes a printed variability reduction % from the printed metrics over "
        "every value that rounds to them: reproduced when the printed number is within that range"
    )
    evaluate = staticmethod(_evaluate_reduction)

    @staticmethod
    def render(claim: ReportedReduction, result: Any) -> tuple[list[str], Any]:
        rows = [
            [
                i["row"],
                i["printed"],
                f"{fmt(i['computed'], 1)} [{fmt(i['low'], 1)}, {fmt(i['high'], 1)}]",
                i["verdict"].replace("_", " "),
            ]
            for i in result.evidence.get("rows", [])
        ]
        head = ["row", "printed %", f"{claim.formula} formula [rounding range]", "verdict"]
        return [result.summary], _table(head, rows)


# --------------------------------------------------------------------------------------------
