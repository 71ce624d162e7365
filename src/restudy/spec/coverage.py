"""What a study covers: every claim its sources make, each with the study claims that test it or
the reason none can.

A paper and its reproduction reports make more claims than a study's headline ones: "36 out of 60
values were better", "DPN-92 always takes longest", "some initialisations did not converge". A
study file lists them under ``coverage``, one entry per claim in the source's own words, so that a
reader sees what was tested, what was not, and why; the report shows the list with each testing
claim's verdict at the scale that ran.

Imports pydantic and the study file's value types only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from .values import Frozen, Loc

if TYPE_CHECKING:
    from .study import Study


class CoveredClaim(Frozen):
    """One claim a source makes, and what tests it."""

    says: str = Field(min_length=1, description="the claim in the source's own words")
    document: str = Field(description="the document making it (an id from documents)")
    where: str = Field("", description="section, table or figure")
    tested_by: list[str] = Field([], description="ids of the study claims that test it as worded")
    untested: str = Field("", description="why no study claim can test it (a reason a reader can check)")
    note: str = Field("", description="how the claims read the sentence (e.g. 'always' as every cell)")

    @model_validator(mode="after")
    def _tested_or_why_not(self) -> CoveredClaim:
        if bool(self.tested_by) == bool(self.untested.strip()):
            raise ValueError("a covered claim has either tested_by (claim ids) or untested (the reason), not both")
        return self


def coverage_problems(study: Study) -> list[tuple[Loc, str, Any]]:
    """Documents and claim ids the coverage list names that the study does not declare."""
    docs = [d.id for d in study.documents]
    claims = {c.id for c in study.claims}
    out: list[tuple[Loc, str, Any]] = []
    for i, entry in enumerate(study.coverage):
        if entry.document not in docs:
            out.append((("coverage", i, "document"), f"unknown document; allowed: {', '.join(docs)}", entry.document))
        for j, cid in enumerate(entry.tested_by):
            if cid not in claims:
                out.append((("coverage", i, "tested_by", j), "no claim has this id", cid))
    return out


def coverage_counts(study: Study, scale: str | None = None) -> dict[str, int]:
    """``claims`` listed, ``tested`` (by a study claim), ``untested``, and with ``scale`` the
    tested ones ``at_scale`` (a testing claim gets its verdict at that scale)."""
    scales = {c.id: set(c.scales) for c in study.claims}
    tested = [e for e in study.coverage if e.tested_by]
    out = {"claims": len(study.coverage), "tested": len(tested), "untested": len(study.coverage) - len(tested)}
    if scale is not None:
        out["at_scale"] = sum(any(scale in scales[c] for c in e.tested_by) for e in tested)
    return out
