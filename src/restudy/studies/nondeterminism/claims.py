"""The nondeterminism study's own claim kinds (registered with ``register_claim_kind``).

Several of the [Re] report's findings are about printed numbers, not about runs: "the values on
paper appear to be about 20% higher than the calculated values" (§4.1, Table 6), "a slight increase
in the percentage" (Tables 6–7), "minor anomalies that account for more than 10% change" (Table 7).
Two kinds check such sentences against the numbers as printed, with no runs:

``reported_arithmetic``. Each pair of printed numbers (a cell of one of the study's tables, or a
printed value with where it is printed) gives ``left / right`` (``ratio``) or ``left − right``
(``difference``). A printed number stands for every value that rounds to it (± half a unit of its
last digit), so each pair gives an interval, not a point. *Reproduced* when the interval lies inside
the ``band`` (``relation: inside``) or wholly outside it (``relation: outside``); *not reproduced*
when it lies wholly on the other side; *inconclusive* when the printed digits allow both. The
``quantifier`` combines the pairs: ``every`` (each must be reproduced; one not reproduced refutes),
``any`` (one suffices; all must fail to refute) or ``mean`` (the interval of the mean over pairs).

``reported_reduction``. A printed variability reduction % follows from the same table's printed
metrics of its row and of the reference row by one of the two formulas the sources use (re-derived
in ``restudy.stats.variability.reduction_percent``): ``original``, the mean over the five metrics of
100·(1 − V_row/V_reference) with V = 1 − correlation for the correlation; ``recalculated``, the
same mean with the correlation entering as 100·(corr_row − corr_reference)/corr_reference. The
formula is monotone in each input, so its range over the inputs' rounding is found at the corners
of that box. *Reproduced* when that range meets the printed value's rounding interval (the number
can follow from the printed metrics), *not reproduced* when it does not; every row must be.

Three kinds use runs:

``train_time_within``. The training time (the run's ``train_s``: the optimisation steps, without
loading and evaluation) of ``a`` over that of ``b``, runs
paired by seed index: the geometric mean ratio over seeds with its (1 − 2α) t-interval on the log
scale. *Reproduced* when it lies inside ``band``, *not reproduced* when wholly outside, else
inconclusive. Paired runs are trained seed-major (interleaved), so the host's load reaches both arms
alike; the evidence carries the load.

``variability_scaled``. Each group's overall variability against its own reference set: the
geometric mean over the five metrics of r = V_group/V_reference (V = 1 − correlation for the
correlation), its percentile interval from the two sets' own bootstrap draws over models (the sets
are different experiments: independent resamples) at 1 − 2α/k for k groups. *Reproduced* when every
interval lies inside ``band`` (which, unlike ``variability``'s, need not contain 1: "about three
times higher"), *not reproduced* when one lies wholly outside, else inconclusive.

``mean_metric``. The mean of a run metric over the runs of several experiments, pooled, with its
(1 − 2α) t-interval, against one printed value: *reproduced* when the interval lies within the
printed value's rounding (± half a unit of its last digit), *not reproduced* when wholly outside it.
"""

from __future__ import annotations

import math
from itertools import product
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from restudy.api import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimBase,
    ClaimKind,
    Field,
    ModelSet,
    Selector,
    fmt,
    mean_host_load,
    register_claim_kind,
    summarize,
)

__all__ = [
    "MeanMetric",
    "Printed",
    "ReportedArithmetic",
    "ReportedReduction",
    "TrainTimeWithin",
    "VariabilityScaled",
    "band_verdict",
    "combine_pairs",
    "printed_interval",
    "reduction",
]

METRICS = ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Printed(_Part):
    """A printed number: a cell of one of the study's tables (``table``, ``row``, ``column``), or
    the number as printed (``value``, as text so its digits count) with ``where`` it is printed."""

    table: str = ""
    row: str = ""
    column: str = ""
    value: str = ""
    where: str = ""

    @model_validator(mode="before")
    @classmethod
    def _text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("value"), (int, float)):
            v = data["value"]
            data = {**data, "value": getattr(v, "text", None) or str(v)}
        return data

    @model_validator(mode="after")
    def _cell_or_value(self) -> Printed:
        cell = bool(self.table or self.row or self.column)
        if cell == bool(self.value):
            raise ValueError("a printed number is a table cell (table, row, column) or a value, not both")
        if cell and not (self.table and self.row and self.column):
            raise ValueError("a table cell needs table, row and column")
        if self.value:
            float(self.value)
            if not self.where:
                raise ValueError("a printed value needs 'where' it is printed (document, table)")
        return self

    def label(self) -> str:
        return f"{self.table}[{self.row}, {self.column}]" if self.table else f"{self.value} ({self.where})"


def printed_interval(text: str) -> tuple[float, float, float]:
    """The value a printed number shows and the interval of values that print as it:
    ``"37"`` → (37, 36.5, 37.5), ``"0.0072"`` → (0.0072, 0.00715, 0.00725)."""
    mantissa, _, exp = text.strip().lower().lstrip("+-").partition("e")
    decimals = (len(mantissa.split(".")[1]) if "." in mantissa else 0) - (int(exp) if exp else 0)
    v, h = float(text), 0.5 * 10.0 ** (-decimals)
    return v, v - h, v + h


def _cell_problems(p: Printed, study: Any, loc: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    if not p.table:
        return []
    tables = {t.id: t for t in study.tables}
    t = tables.get(p.table)
    if t is None:
        return [((*loc, "table"), f"unknown table {p.table!r}; known: {sorted(tables)}")]
    if p.row not in t.rows:
        return [((*loc, "row"), f"table {t.id} has no row {p.row!r}; rows: {t.rows}")]
    if p.column not in t.columns:
        return [((*loc, "column"), f"table {t.id} has no column {p.column!r}; columns: {t.columns}")]
    if t.value(p.row, p.column) is None:
        return [((*loc,), f"table {t.id} reports no value at {p.row}/{p.column}")]
    return []


def _resolve(p: Printed, study: Any) -> tuple[str, float, float, float]:
    """(printed text, value, low, high) of a printed number."""
    if p.value:
        return (p.value, *printed_interval(p.value))
    rv = study.table(p.table).value(p.row, p.column)
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


class Pair(_Part):
    """Two printed numbers compared, with a label for the report."""

    label: str
    left: Printed
    right: Printed


class ReportedArithmetic(ClaimBase):
    """A ratio or difference of printed numbers lies inside (or outside) a band, each number
    standing for every value that rounds to it."""

    kind: Literal["reported_arithmetic"]
    operation: Literal["ratio", "difference"]
    pairs: list[Pair] = Field(min_length=1)
    band: tuple[float, float]
    band_reason: str = Field(min_length=1, description="why this band (what the sentence's words allow)")
    relation: Literal["inside", "outside"] = "inside"
    quantifier: Literal["every", "any", "mean"] = "every"

    @model_validator(mode="after")
    def _band(self) -> ReportedArithmetic:
        if not self.band[0] <= self.band[1]:
            raise ValueError(f"band must be [low, high] with low <= high; got {list(self.band)}")
        return self

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for i, p in enumerate(self.pairs):
            out += _cell_problems(p.left, study, ("pairs", i, "left"))
            out += _cell_problems(p.right, study, ("pairs", i, "right"))
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
        lt, lv, llo, lhi = _resolve(p.left, ctx.study)
        rt, rv, rlo, rhi = _resolve(p.right, ctx.study)
        point = lv / rv if claim.operation == "ratio" else lv - rv
        lo, hi = arithmetic_interval(claim.operation, (llo, lhi), (rlo, rhi))
        items.append({"label": p.label, "left": lt, "right": rt, "value": point, "low": lo, "high": hi})
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


class ReductionRow(_Part):
    """One row of the table and the reduction % printed for it."""

    row: str
    printed: Printed


class ReportedReduction(ClaimBase):
    """Printed reduction percentages follow from the same table's printed metrics by ``formula``."""

    kind: Literal["reported_reduction"]
    table: str
    reference_row: str
    formula: Literal["original", "recalculated"]
    rows: list[ReductionRow] = Field(min_length=1)

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        tables = {t.id: t for t in study.tables}
        t = tables.get(self.table)
        if t is None:
            return [(("table",), f"unknown table {self.table!r}; known: {sorted(tables)}")]
        for i, name in [(None, self.reference_row)] + [(i, r.row) for i, r in enumerate(self.rows)]:
            loc = ("reference_row",) if i is None else ("rows", i, "row")
            if name not in t.rows:
                out.append((loc, f"table {t.id} has no row {name!r}; rows: {t.rows}"))
            elif any(t.value(name, m) is None for m in METRICS):
                out.append((loc, f"table {t.id} row {name} lacks one of the metrics {list(METRICS)}"))
        for i, r in enumerate(self.rows):
            out += _cell_problems(r.printed, study, ("rows", i, "printed"))
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
        point, box = metrics_of(r.row)
        text, _, plo, phi = _resolve(r.printed, ctx.study)
        lo, hi = reduction_range(box, ref_box, claim.formula)
        verdict = REPRODUCED if lo <= phi and plo <= hi else NOT_REPRODUCED
        items.append(
            {
                "row": r.row,
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
# train_time_within
# --------------------------------------------------------------------------------------------


class TrainTimeWithin(ClaimBase):
    """The training time of ``a`` over that of ``b`` lies inside ``band``."""

    kind: Literal["train_time_within"]
    a: Selector
    b: Selector
    band: tuple[float, float]
    band_reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _band(self) -> TrainTimeWithin:
        if not 0 < self.band[0] <= self.band[1]:
            raise ValueError(f"band must be ratios [low, high] with 0 < low <= high; got {list(self.band)}")
        return self

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("a",), self.a), (("b",), self.b)]


def _evaluate_train_time(claim: TrainTimeWithin, ctx: Any) -> Any:
    pairs, info = ctx.pair(ctx.runs(claim.a), ctx.runs(claim.b), claim.a, claim.b)
    by_seed: dict[int, list[float]] = {}
    for x, y in pairs:
        ta, tb = x.get("train_s"), y.get("train_s")
        if isinstance(ta, (int, float)) and isinstance(tb, (int, float)) and ta > 0 and tb > 0:
            by_seed.setdefault(int(x["seed_index"]), []).append(math.log(ta / tb))
    seeds = sorted(by_seed)
    if len(seeds) < 2:
        return ctx.result(claim, NOT_EVALUATED, f"{len(seeds)} seed(s) with timed pairs: too few", {})
    conf = 1 - 2 * claim.alpha
    s = summarize([float(np.mean(by_seed[k])) for k in seeds], conf)
    ratio, lo, hi = math.exp(s.mean), math.exp(s.ci_low), math.exp(s.ci_high)
    verdict = band_verdict(lo, hi, claim.band)
    summary = (
        f"{claim.a.label()} / {claim.b.label()} training time (train_s): ×{fmt(ratio)} "
        f"({round(conf * 100)}% CI [{fmt(lo)}, {fmt(hi)}], geometric mean over n={s.n} paired seeds) "
        f"vs band [{fmt(claim.band[0])}, {fmt(claim.band[1])}]"
    )
    loads = [mean_host_load([p[i] for p in pairs]) for i in (0, 1)]
    if loads[0] and loads[1]:
        (la, cpus), (lb, _) = loads[0], loads[1]
        summary += f"; host load while they ran (1-minute load average, {cpus} cores): {fmt(la)} and {fmt(lb)}"
    ev = {
        "ratio": ratio,
        "ci_low": lo,
        "ci_high": hi,
        "n": s.n,
        "band": list(claim.band),
        "band_reason": claim.band_reason,
        "confidence": conf,
        "pairing": info,
    }
    return ctx.result(claim, verdict, summary, ev, metric="train_s")


@register_claim_kind
class TrainTimeWithinKind(ClaimKind):
    schema = TrainTimeWithin
    rule = (
        "a *training time* claim holds when the t-interval over paired seeds of the geometric mean training-time "
        "ratio a/b lies inside the band"
    )
    evaluate = staticmethod(_evaluate_train_time)


# --------------------------------------------------------------------------------------------
# variability_scaled
# --------------------------------------------------------------------------------------------


class VariabilityScaled(ClaimBase):
    """Each group's overall variability (geometric mean over the metrics of V_group/V_reference)
    lies inside ``band``, each group against its own reference set."""

    kind: Literal["variability_scaled"]
    groups: list[ModelSet] = Field(min_length=1)
    references: list[ModelSet] = Field(min_length=1, description="one reference set per group, in order")
    band: tuple[float, float]
    band_reason: str = Field(min_length=1)
    metrics: list[Literal["sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"]] = list(
        METRICS
    )

    @model_validator(mode="after")
    def _shape(self) -> VariabilityScaled:
        if len(self.references) != len(self.groups):
            raise ValueError(f"{len(self.groups)} groups need {len(self.groups)} references, one each")
        if not 0 < self.band[0] <= self.band[1]:
            raise ValueError(f"band must be ratios [low, high] with 0 < low <= high; got {list(self.band)}")
        return self

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        out = [(("groups", i), g.selector()) for i, g in enumerate(self.groups)]
        return out + [(("references", i), r.selector()) for i, r in enumerate(self.references)]


def _v(metric: str, x: Any) -> Any:
    return 1.0 - np.asarray(x, dtype=float) if metric == "correlation" else np.asarray(x, dtype=float)


def scaled_ratio(
    metrics: list[str],
    g_values: dict[str, float],
    r_values: dict[str, float],
    g_draws: dict[str, np.ndarray],
    r_draws: dict[str, np.ndarray],
    confidence: float,
) -> tuple[float, float, float]:
    """Geometric mean over ``metrics`` of V_group/V_reference, with the percentile interval of the
    same statistic over the two sets' independent bootstrap draws."""
    point = float(np.exp(np.mean([np.log(_v(m, g_values[m]) / _v(m, r_values[m])) for m in metrics])))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.mean([np.log(_v(m, g_draws[m]) / _v(m, r_draws[m])) for m in metrics], axis=0)
    logs = logs[np.isfinite(logs)]
    if logs.size < 10:
        return point, math.nan, math.nan
    q = (1 - confidence) / 2
    return point, float(np.exp(np.quantile(logs, q))), float(np.exp(np.quantile(logs, 1 - q)))


def _evaluate_scaled(claim: VariabilityScaled, ctx: Any) -> Any:
    conf = 1 - 2 * claim.alpha / len(claim.groups)
    parts = []
    for g_ms, r_ms in zip(claim.groups, claim.references):
        g, r = ctx.model_set(g_ms), ctx.model_set(r_ms)
        name = f"{g.name} vs {r.name}"
        why = g.why or r.why or ("" if min(g.n_models, r.n_models) >= 2 else "fewer than 2 models")
        if why:
            parts.append({"group": name, "verdict": NOT_EVALUATED, "sentence": f"{name}: {why}"})
            continue
        ratio, lo, hi = scaled_ratio(claim.metrics, g.values, r.values, g.draws(), r.draws(), conf)
        verdict = band_verdict(lo, hi, claim.band)
        parts.append(
            {
                "group": name,
                "n_models": [g.n_models, r.n_models],
                "ratio": ratio,
                "ci_low": lo,
                "ci_high": hi,
                "per_metric": {m: float(_v(m, g.values[m]) / _v(m, r.values[m])) for m in claim.metrics},
                "verdict": verdict,
                "sentence": f"{name}: ×{fmt(ratio)} ({round(conf * 1000) / 10}% CI [{fmt(lo)}, {fmt(hi)}])",
            }
        )
    verdicts = [p["verdict"] for p in parts]
    verdict = NOT_EVALUATED if all(v == NOT_EVALUATED for v in verdicts) else combine_pairs("every", verdicts)
    summary = (
        f"geometric mean of V(group)/V(reference) over {len(claim.metrics)} metrics, band "
        f"[{fmt(claim.band[0])}, {fmt(claim.band[1])}]: " + "; ".join(p["sentence"] for p in parts)
    )
    ev = {"band": list(claim.band), "band_reason": claim.band_reason, "confidence": conf, "groups": parts}
    return ctx.result(claim, verdict, summary, ev, metric=", ".join(claim.metrics))


@register_claim_kind
class VariabilityScaledKind(ClaimKind):
    schema = VariabilityScaled
    rule = (
        "a *scaled variability* claim compares each group's geometric-mean variability ratio against its own "
        "reference with a band that need not contain 1, by bootstrap intervals over models"
    )
    evaluate = staticmethod(_evaluate_scaled)


# --------------------------------------------------------------------------------------------
# mean_metric
# --------------------------------------------------------------------------------------------


class MeanMetric(ClaimBase):
    """The mean of ``metric`` over the runs of ``select`` (pooled) equals the printed value."""

    kind: Literal["mean_metric"]
    select: list[Selector] = Field(min_length=1)
    printed: Printed

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select", i), s) for i, s in enumerate(self.select)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        return _cell_problems(self.printed, study, ("printed",))


def _evaluate_mean(claim: MeanMetric, ctx: Any) -> Any:
    values = [ctx.value(r, claim.metric) for s in claim.select for r in ctx.runs(s)]
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return ctx.result(claim, NOT_EVALUATED, f"{len(values)} run(s) with {claim.metric}: too few", {})
    text, target, plo, phi = _resolve(claim.printed, ctx.study)
    s = summarize(values, 1 - 2 * claim.alpha)
    verdict = band_verdict(s.ci_low, s.ci_high, (plo, phi))
    summary = (
        f"mean {claim.metric} over {s.n} runs: {fmt(s.mean)} ({round((1 - 2 * claim.alpha) * 100)}% CI "
        f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]) vs printed {text} (values that print as it: [{fmt(plo)}, {fmt(phi)}])"
    )
    ev = {"mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "printed": text, "band": [plo, phi]}
    return ctx.result(claim, verdict, summary, ev)


@register_claim_kind
class MeanMetricKind(ClaimKind):
    schema = MeanMetric
    rule = "a *mean metric* claim holds when the t-interval of the pooled mean lies within the printed value's rounding"
    evaluate = staticmethod(_evaluate_mean)
