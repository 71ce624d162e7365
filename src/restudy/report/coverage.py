"""The coverage section: every claim the study's documents make, the study claims that test it
and their verdicts at this scale, or why none can (the study file's ``coverage``,
:mod:`restudy.spec.coverage`).

Imports compare, display and spec only.
"""

from __future__ import annotations

from typing import Any

from .. import compare as cmp
from ..display.tables import Table, anchor, cell, table, verdict_cell
from ..spec.coverage import coverage_counts
from ..spec.study import Study

UNTESTED = "untested"


def coverage_entries(study: Study, comparison: cmp.Comparison) -> list[dict[str, Any]]:
    """``results.json``'s coverage: each claim of the documents with its testing claims' verdicts."""
    verdicts = {c.id: c.verdict for c in comparison.claims}
    return [
        {
            **e.model_dump(exclude={"tested_by"}),
            "tested_by": [{"id": cid, "verdict": verdicts.get(cid)} for cid in e.tested_by],
        }
        for e in study.coverage
    ]


def counts_sentence(study: Study, scale: str) -> str:
    """``21 claims in the documents: 20 tested by a study claim (5 with a verdict at small scale),
    1 untested.``"""
    n = coverage_counts(study, scale)
    share = f" ({n['tested'] / n['claims']:.0%})" if n["claims"] else ""
    return (
        f"{n['claims']} claims in the documents: {n['tested']}{share} tested by a study claim "
        f"({n['at_scale']} with a verdict at {scale} scale, the others at the scales their claims name), "
        f"{n['untested']} untested, each with its reason."
    )


def coverage_view(study: Study, scale: str, comparison: cmp.Comparison) -> dict[str, Any] | None:
    """The section's sentence and table (one row per testing claim), None without a coverage list."""
    if not study.coverage:
        return None
    results = {c.id: c for c in comparison.claims}
    rows = []
    for i, e in enumerate(study.coverage, start=1):
        says = f"“{e.says}” ({e.document}{', ' + e.where if e.where else ''})"
        if e.note:
            says += f"; read as: {e.note}"
        if not e.tested_by:
            rows.append([cell(i), cell(says), cell("—"), cell(f"{UNTESTED}: {e.untested}", "verdict not_evaluated")])
            continue
        for j, cid in enumerate(e.tested_by):
            r = results.get(cid)
            verdict = verdict_cell(r.verdict) if r is not None else cell("")
            lead = [cell(i), cell(says)] if j == 0 else [cell(""), cell("")]
            rows.append([*lead, cell(cid, f"link {anchor('claim', cid)}"), verdict])
    tab: Table = table(["#", "the document says", "tested by", "verdict here"], rows)
    return {"sentence": counts_sentence(study, scale), "table": tab}
