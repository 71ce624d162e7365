"""Claim kind ``numeric``: reported table cells are reproduced.

Each named cell is judged by the equivalence rule of :mod:`restudy.compare.cells` (result tables)
or of :mod:`restudy.compare.variability` (variability tables) with the claim's tolerance and α/k
for k cells (Bonferroni: any one red cell fails the claim, so the family-wise error is
controlled); the claim's verdict combines them: all reproduced → reproduced; any not reproduced →
not reproduced; all not evaluated → not evaluated; else inconclusive. Borderline when a cell that
decides the verdict is. The evidence holds every cell's result and
the per-run values behind it (``points``), which the figure draws next to the reported value.

Imports spec, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..compare.cells import CellRule, cell_runs, evaluate_cell
from ..compare.select import metric_value, usable
from ..compare.variability import variability_cell_result
from ..compare.verdicts import NOT_EVALUATED, VERDICTS, combine
from ..spec.claim_base import CellRef, ClaimBase
from ..spec.reported import VariabilityLayout
from ..spec.study import Study
from ..spec.values import ScaleName
from .base import ClaimKind, register_claim_kind


class NumericClaim(ClaimBase):
    """Reported table cells are reproduced: the CI of reproduced − reported lies within the
    tolerance (``tolerance`` × the reported value + its rounding; a default from the printed
    precision and the binomial test-set noise otherwise)."""

    kind: Literal["numeric"]
    cells: list[CellRef] = Field(min_length=1)
    tolerance: float | None = Field(
        None, ge=0, description="equivalence tolerance, a fraction of the reported value (rounding is added)"
    )
    tolerance_reason: str = Field("", description="why this tolerance (shown in the report)")
    scales: list[ScaleName] = ["paper"]

    def problems(self, study: Study) -> list[tuple[Any, ...]]:
        tables = {t.id: t for t in study.tables}
        out: list[tuple[Any, ...]] = []
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


def evaluate(claim: NumericClaim, ctx: Any) -> Any:
    """Judges every named cell and combines their verdicts."""
    rule = CellRule(claim.alpha / len(claim.cells), claim.tolerance, claim.id, claim.tolerance_reason)
    cells, points = [], []
    for ref in claim.cells:
        table = ctx.study.table(ref.table)
        reported = table.value(ref.row, ref.column)
        if reported is None:
            continue
        if isinstance(table.layout, VariabilityLayout):
            cells.append(variability_cell_result(table, ref.row, ref.column, reported, ctx, rule))
            points.append([])
            continue
        runs = cell_runs(table, ref.row, ref.column, ctx.rows)
        cells.append(evaluate_cell(table, ref.row, ref.column, reported, runs, ctx.scale, ctx.dataset, rule))
        points.append([metric_value(r, str(table.metric)) for r in usable(runs)])
    verdict = combine([c.verdict for c in cells])
    counts = {v: sum(c.verdict == v for c in cells) for v in VERDICTS}
    rels = [abs(c.rel_error) for c in cells if math.isfinite(c.rel_error)]
    parts = [f"{k} {v.replace('_', ' ')}" for v, k in counts.items() if k]
    summary = f"{len(cells)} cells: " + ", ".join(parts)
    if rels:
        summary += f"; max |rel. error| {max(rels):.1%}"
    evidence = {
        "cells": [c.to_dict() for c in cells],
        "counts": counts,
        "confidence": rule.confidence,
        "alpha_per_cell": rule.alpha,
        "correction": f"Bonferroni over {len(claim.cells)} cell(s)",
        "tolerance": claim.tolerance,
        "tolerance_reason": claim.tolerance_reason,
        "points": points,
    }
    deciding = [c for c in cells if c.verdict == verdict]
    borderline = bool(deciding) and any(c.borderline for c in deciding)
    note = None
    if cells and all(c.verdict == NOT_EVALUATED and c.n > 0 for c in cells):
        note = cells[0].note
        summary = f"not evaluated: {note}. " + summary
    return ctx.result(
        claim, verdict, summary, evidence, _max_seeds([c.to_dict() for c in cells]), note, borderline=borderline
    )


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
        "(equivalence), not reproduced when it lies outside it"
    )
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
