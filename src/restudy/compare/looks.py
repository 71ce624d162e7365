"""Looks at a claim as seeds are added: the false "reproduced" rate stays at α over all of them.

A report is a look at each claim's verdict. When a claim is inconclusive, "What to do next"
suggests more seeds, and the next report looks again; testing the pooled seeds at α each time
would give a false "reproduced" more often than α (following the advice with 3 seeds first raises
it from 0.05 to about 0.08). Two rules keep it at α whatever the user decides after each look:

* **α is spent, not reused** (an α-spending rule): the first look at a claim tests at
  ``FIRST_LOOK_SHARE`` of its α (most studies look once), look j ≥ 2 at
  (1 − ``FIRST_LOOK_SHARE``)·α/2^(j−1); the shares add up to α, so by the union bound the chance
  of any false verdict over all looks is at most α.
* **a follow-up confirms on fresh seeds**: look j ≥ 2 tests only the seeds added since the previous
  look, which are independent of what that look saw, so the choice to add them (and how many)
  cannot bias the test.

A look is identified by the claim's seed count: reporting again on the same runs is the same look
(the same verdict); more seeds make a new one. Each results folder keeps its looks in
``looks.json`` (:data:`restudy.storage.artifacts.LOOKS_FILE`), written by the driver.

Imports nothing of restudy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIRST_LOOK_SHARE = 0.8
"""The share of a claim's α the first look spends; the rest is kept for follow-ups on more seeds."""


@dataclass(frozen=True)
class Look:
    """Which look at a claim this is, the α it spends and the seeds it may use."""

    index: int  # 1 for the first look
    alpha: float  # the α this look tests at
    first_seed: int  # seed indices below it were seen by earlier looks (0 for the first look)
    seeds: int  # the claim's seed count at this look
    previous: tuple[dict[str, Any], ...] = ()

    def describe(self, claim_alpha: float) -> str:
        """One sentence for the report."""
        if self.index == 1:
            return (
                f"first look at this claim ({self.seeds} seeds): tested at α = {self.alpha:.3g}, "
                f"{FIRST_LOOK_SHARE:.0%} of its {claim_alpha:g}; the rest is kept for a follow-up on more seeds"
            )
        seen = ", ".join(f"{p['seeds']} seeds: {str(p.get('verdict', '?')).replace('_', ' ')}" for p in self.previous)
        return (
            f"look {self.index} at this claim: only the seeds added since the last look ({self.first_seed}–"
            f"{self.seeds - 1}) decide it, at α = {self.alpha:.3g} (α-spending keeps the false 'reproduced' "
            f"rate at {claim_alpha:g} over all looks); earlier looks: {seen}"
        )


def spent_alpha(alpha: float, index: int) -> float:
    """The α look ``index`` (1-based) of a claim with α ``alpha`` tests at; the shares sum to α."""
    if index <= 1:
        return alpha * FIRST_LOOK_SHARE
    return alpha * (1.0 - FIRST_LOOK_SHARE) * 0.5 ** (index - 1)


def this_look(previous: Sequence[Mapping[str, Any]], seeds: int, alpha: float) -> Look:
    """The look at a claim with ``seeds`` seeds, given its ``previous`` looks (``[{"seeds": n,
    "verdict": v, ...}]``, in order): the same look as an earlier one with as many seeds (a report
    written again), else the next one, which may only use the seeds added since the last look."""
    done = [dict(p) for p in previous if isinstance(p.get("seeds"), int)]
    for i, p in enumerate(done):
        if p["seeds"] == seeds:
            first = done[i - 1]["seeds"] if i else 0
            return Look(i + 1, spent_alpha(alpha, i + 1), first, seeds, tuple(done[:i]))
    last = max((p["seeds"] for p in done), default=0)
    if seeds < last:  # fewer seeds than already looked at (e.g. a subset): judged as the first look's data
        return Look(1, spent_alpha(alpha, 1), 0, seeds, ())
    index = len(done) + 1
    return Look(index, spent_alpha(alpha, index), last if done else 0, seeds, tuple(done))


def record(previous: Sequence[Mapping[str, Any]], look: Look, verdict: str) -> list[dict[str, Any]]:
    """The claim's looks with this one added (unchanged when it is an earlier look again)."""
    done = [dict(p) for p in previous]
    if any(p.get("seeds") == look.seeds for p in done):
        return done
    return [*done, {"seeds": look.seeds, "first_seed": look.first_seed, "alpha": look.alpha, "verdict": verdict}]
