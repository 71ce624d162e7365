"""The verdicts section of a report and each claim's own section, as view-model data: the
verdicts table (with how much each verdict leans on particular seeds), what the verdicts come
from, and each claim's evidence as its kind renders it.

Imports compare, claims, display and spec (no matplotlib).
"""

from __future__ import annotations

from typing import Any

from .. import compare as cmp
from ..claims.base import claim_kind
from ..compare.looks import FIRST_LOOK_SHARE
from ..compare.stability import STABLE
from ..compare.stability import describe as describe_stability
from ..display.numbers import fmt
from ..display.tables import VERDICT_TEXT, Table, anchor, cell, evidence_lines, seeds_line, table, verdict_cell
from ..spec.study import Study
from .provenance import human_source


def verdict_table(comparison: cmp.Comparison) -> Table:
    rows = []
    for c in comparison.claims:
        verdict = verdict_cell(c.verdict)
        if c.stability and c.stability["same"] < STABLE:
            verdict = {**verdict, "text": verdict["text"] + " (leans on a few seeds)"}
        stable = describe_stability(c.stability, c.verdict)
        summary = c.summary + (f". {stable[:1].upper()}{stable[1:]}" if stable else "")
        rows.append([cell(c.statement, f"link {anchor('claim', c.id)}"), verdict, cell(summary)])
    return table(["claim", "verdict", "result"], rows)


def host_note(env: dict[str, Any], scale: str) -> str:
    """What the verdicts are from, and what would change them."""
    where = ", ".join(
        str(x)
        for x in (
            env.get("cpu"),
            env.get("gpu"),
            f"torch {env['torch']}" if env.get("torch") else None,
            f"{env['threads']} thread(s) per run" if env.get("threads") else None,
        )
        if x
    )
    return (
        f"These verdicts come from {scale}-scale runs on this host ({where or 'see Environment'}). Rerun with the "
        "same seeds, device, thread count and software, the runs are bit-identical and so are the verdicts; other "
        "seeds give other numbers and may give other verdicts (most often those that lean on a few seeds), and another "
        "device, thread count or version adds its own differences: a rerun there is a new sample, to be judged "
        "afresh."
    )


def claim_view(
    claim: Any, result: cmp.ClaimResult, figure: str | None, docs: dict[str, str], seen: set[str]
) -> dict[str, Any]:
    """A claim's section: its kind renders the evidence (the default shows its top-level numbers)."""
    rendered = claim_kind(claim.kind).render(claim, result) if result.evidence else None
    if rendered is None:
        lines, tab = (evidence_lines(result) if result.evidence else [seeds_line(result)]), None
    else:
        lines, tab = rendered
    lines = [ln for ln in lines if ln and ln.strip()]
    look = (result.evidence or {}).get("look")
    if isinstance(look, dict) and look.get("index") == 1:  # later looks say so in the summary
        lines.append(
            f"First look at this claim ({look['seeds']} seeds): judged at α = {fmt(look['alpha'], 3)}, "
            f"{FIRST_LOOK_SHARE:.0%} of its {fmt(look.get('claim_alpha'), 3)}; the rest is kept so that a "
            "follow-up on more seeds keeps the false 'reproduced' rate at its α."
        )
    if result.stability:
        lines.append(
            f"Seed dependence: {describe_stability(result.stability, result.verdict)}: resamples of these seeds, "
            "drawn with replacement, judged again. This shows how much the verdict leans on particular seeds; it "
            "is not the chance that a rerun on new seeds agrees, which is lower when seeds are few."
        )
    head = result.summary.split(";")[0][:60]
    # the result sentence, unless the kind's own lines already give it (a beats b, gap shrinks, ...)
    shown = result.verdict == cmp.NOT_EVALUATED or any(head in ln for ln in lines)
    return {
        "id": result.id,
        "anchor": anchor("claim", result.id),
        "statement": result.statement,
        "kind": result.kind,
        "metric": result.metric,
        "verdict": result.verdict,
        "verdict_text": VERDICT_TEXT.get(result.verdict, result.verdict),
        "summary": result.summary,
        "scale_note": result.scale_note,
        "source": human_source(getattr(claim, "source", ""), docs, seen),
        "lines": lines,
        "result": "" if shown else result.summary,
        "table": tab,
        "figure": figure,
    }


def rules(study: Study) -> list[str]:
    """How each kind of claim in the study reaches its verdict (its kind's ``rule``)."""
    kinds = dict.fromkeys(c.kind for c in study.claims)
    return [rule for k in kinds if (rule := claim_kind(k).rule)]
