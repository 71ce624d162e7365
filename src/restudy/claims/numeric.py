"""Claim kind ``numeric``: reported table cells are reproduced, or lie on a stated side of them.

The cells are the ones named (``cells``) and every reported cell of the tables named
(``tables``). Each is judged by the rule of :mod:`restudy.compare.cells` (result tables) or of
:mod:`restudy.compare.variability` (variability tables) with the claim's tolerance and
``relation``: ``equivalent`` (the default: within ± the tolerance), ``at_least`` (no lower than the
reported value less the tolerance: the [Re] Network Deconvolution report's colour rule, §5.1,
"lower … by more than 10 %" is red), ``above`` or ``below`` (beyond the printed value's rounding,
"reproduced with better results"). The ``quantifier`` says how the cells combine
(:mod:`restudy.compare.quantifiers`): ``every`` cell by default (each passes at α, one refuting
at α/k refutes), ``most``, ``any`` or a ``share`` of them ("36 out of 60 values"); cells at
another scale than the table's are not evaluated, and a claim none of whose cells is evaluated
is not evaluated. The evidence holds every cell's result and the per-run values behind it
(``points``), which the figure draws next to the reported value.

Imports spec, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..compare.cells import RELATION_TEXT, RELATIONS, CellRule, cell_runs, evaluate_cell
from ..compare.quantifiers import RULE_TEXT, cell_alphas, combine_cells, counts_text
from ..compare.select import metric_value, usable
from ..compare.variability import variability_cell_result
from ..compare.verdicts import NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED, VERDICTS
from ..spec.claim_base import CellRef, ClaimBase, Quantified
from ..spec.reported import VariabilityLayout
from ..spec.study import Study
from ..spec.values import ScaleName
from .base import ClaimKind, register_claim_kind

Relation = Literal["equivalent", "at_least", "above", "below"]
assert set(RELATIONS) == set(Relation.__args__)  # type: ignore[attr-defined]


class NumericClaim(Quantified, ClaimBase):
    """Reported table cells are reproduced: the CI of reproduced − reported lies within the
    tolerance (``tolerance`` × the reported value + its rounding; a default from the printed
    precision and the binomial test-set noise otherwise), or on the side ``relation`` names."""

    kind: Literal["numeric"]
    cells: list[CellRef] = Field([], description="the cells, each named by table, row and column")
    tables: list[str] = Field([], description="tables whose every reported cell the claim covers")
    relation: Relation = Field(
        "equivalent",
        description="equivalent (within ± tolerance), at_least (≥ reported − tolerance), above or below "
        "(beyond the printed value's rounding and the declared tolerance)",
    )
    tolerance: float | None = Field(
        None, ge=0, description="equivalence tolerance, a fraction of the reported value (rounding is added)"
    )
    tolerance_reason: str = Field("", description="why this tolerance (shown in the report)")
    scales: list[ScaleName] = ["paper"]

    def refs(self, study: Study) -> list[CellRef]:
        """The named cells, then every reported cell of the named tables (each once)."""
        out = list(self.cells)
        for t in study.tables:
            if t.id in self.tables:
                out += [CellRef(table=t.id, row=r, column=c) for r in t.rows for c in t.columns if t.value(r, c)]
        return list(dict.fromkeys(out))

    def problems(self, study: Study) -> list[tuple[Any, ...]]:
        tables = {t.id: t for t in study.tables}
        out: list[tuple[Any, ...]] = []
        if not self.cells and not self.tables:
            out.append((("cells",), "a numeric claim names cells, tables or both", []))
        for i, name in enumerate(self.tables):
            if name not in tables:
                out.append((("tables", i), f"unknown table {name!r}; known: {sorted(tables)}"))
            elif self.relation != "equivalent" and isinstance(tables[name].layout, VariabilityLayout):
                out.append((("relation",), f"table {name} is a variability table: only relation equivalent applies"))
        for i, ref in enumerate(self.cells):
            t = tables.get(ref.table)
            if t is None:
                out.append((("cells", i, "table"), f"unknown table {ref.table!r}; known: {sorted(tables)}"))
            elif ref.row not in t.rows:
                out.append((("cells", i, "row"), f"table {t.id} has no row {ref.row!r}; rows: {t.rows}"))
            elif ref.column not in t.columns:
                out.append((("cells", i, "column"), f"table {t.id} has no column {ref.column!r}; columns: {t.columns}"))
        return out


def _max_seeds(items: list[dict[str, Any]]) -> int | None:
    needed = [e["seeds_needed"] for e in items if e.get("seeds_needed")]
    return max(needed) if needed else None


def _judge(claim: NumericClaim, ref: CellRef, ctx: Any, rule: CellRule) -> tuple[Any, list[float]]:
    """One cell's result at ``rule`` and the per-run values behind it."""
    table = ctx.study.table(ref.table)
    reported = table.value(ref.row, ref.column)
    if isinstance(table.layout, VariabilityLayout):
        return variability_cell_result(table, ref.row, ref.column, reported, ctx, rule), []
    runs = cell_runs(table, ref.row, ref.column, ctx.rows, ctx.scale)
    cell = evaluate_cell(table, ref.row, ref.column, reported, runs, ctx.scale, ctx.dataset, rule)
    return cell, [metric_value(r, str(table.metric)) for r in usable(runs)]


def evaluate(claim: NumericClaim, ctx: Any) -> Any:
    """Judges every cell, passing at the quantifier's α and refuting at its own, and combines them."""
    refs = [r for r in claim.refs(ctx.study) if ctx.study.table(r.table).value(r.row, r.column) is not None]
    alphas = cell_alphas(claim.quantifier, len(refs), claim.alpha)
    rules = [CellRule(a, claim.tolerance, claim.id, claim.tolerance_reason, claim.relation) for a in alphas]
    cells, points, passed, refuted = [], [], [], []
    for ref in refs:
        cell, vals = _judge(claim, ref, ctx, rules[0])
        strict = _judge(claim, ref, ctx, rules[1])[0] if alphas[1] != alphas[0] else cell
        passed.append(cell.verdict == REPRODUCED)
        refuted.append(strict.verdict == NOT_REPRODUCED)
        cells.append(strict if refuted[-1] and not passed[-1] else cell)
        points.append(vals)
    evaluated = [c.verdict != NOT_EVALUATED for c in cells]
    if cells and not any(evaluated):
        verdict = NOT_EVALUATED
    else:
        verdict = combine_cells(
            claim.quantifier,
            [p for p, e in zip(passed, evaluated) if e],
            [r for r, e in zip(refuted, evaluated) if e],
            claim.share,
        )
    counts = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    rels = [abs(c.rel_error) for c in cells if math.isfinite(c.rel_error)]
    if any(evaluated):
        summary = counts_text(claim.quantifier, passed, refuted, claim.share)
    else:
        summary = f"{len(cells)} cells: " + ", ".join(f"{k} {v.replace('_', ' ')}" for v, k in counts.items() if k)
    if claim.relation != "equivalent":
        summary += f"; each {RELATION_TEXT[claim.relation]}"
    if rels:
        summary += f"; max |rel. error| {max(rels):.1%}"
    evidence = {
        "cells": [c.to_dict() for c in cells],
        "counts": counts,
        "confidence": rules[0].confidence,
        "alpha_per_cell": rules[0].alpha,
        "alpha_pass": alphas[0],
        "alpha_refute": alphas[1],
        "quantifier": claim.quantifier,
        "rule": RULE_TEXT[claim.quantifier],
        "relation": claim.relation,
        "correction": f"{claim.quantifier} over {len(refs)} cell(s): {RULE_TEXT[claim.quantifier]}",
        "tolerance": claim.tolerance,
        "tolerance_reason": claim.tolerance_reason,
        "points": points,
    }
    note = None
    if cells and all(c.verdict == NOT_EVALUATED and c.n > 0 for c in cells):
        note = cells[0].note
        summary = f"not evaluated: {note}. " + summary
    return ctx.result(claim, verdict, summary, evidence, _max_seeds([c.to_dict() for c in cells]), note)


def figure(claim: NumericClaim, result: Any, path: Path) -> Path | None:
    """Per cell: the runs' values, the reproduced mean ± CI and the reported value ± its pm."""
    cells = result.evidence.get("cells") or []
    if not cells:
        return None
    from ..display import draw

    points = result.evidence.get("points") or [[] for _ in cells]
    fig, ax = draw.subplots(figsize=(max(6.0, 0.6 * len(cells) + 2), 4.2))
    for i, (cell, vals) in enumerate(zip(cells, points)):
        ax.scatter([i] * len(vals), draw.floats(vals), s=14, color="tab:blue", alpha=0.5, zorder=2)
        if cell.get("mean") is not None:
            draw.errorbar(
                ax,
                i,
                cell["mean"],
                cell.get("ci_low"),
                cell.get("ci_high"),
                "tab:blue",
                "reproduced mean ± CI" if i == 0 else None,
            )
        pm = cell.get("reported_pm") or 0.0
        ax.errorbar(
            [i + 0.2],
            [cell["reported"]],
            yerr=[[pm], [pm]],
            fmt="x",
            color="tab:red",
            markersize=8,
            capsize=3,
            label="reported" if i == 0 else None,
        )
    ax.set_xticks(
        range(len(cells)), [f"{c['row']} / {c['column']}" for c in cells], rotation=30, ha="right", fontsize=7
    )
    ax.set_ylabel(draw.metric_label(claim.metric))
    ax.legend(fontsize=8)
    draw.title(ax, result)
    return draw.save(fig, path)


def render(claim: NumericClaim, result: Any) -> tuple[list[str], Any]:
    """The cells as a table (reproduced mean, CI, reported value, error, verdict)."""
    from ..display import tables

    cells = result.evidence.get("cells") or []
    return [tables.seeds_line(result)], (tables.cells_table(cells) if cells else None)


@register_claim_kind
class Numeric(ClaimKind):
    schema = NumericClaim
    rule = (
        "a *numeric* cell is reproduced when the CI of reproduced − reported lies within the tolerance "
        "(equivalence), not reproduced when it lies outside it; with a relation (at_least, above, below) when "
        "the CI lies on the claimed side of the line; the cells combine as the quantifier says"
    )
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
