"""How much a verdict leans on particular seeds: the claim judged again on resamples of its seeds.

The seeds a study ran are a sample. :func:`stability` draws ``resamples`` bootstrap resamples of
the seed indices (as many as ran, with replacement; a seed index brings every run it has, so runs
paired by seed stay paired, and the stored test predictions behind each run are reused), judges
the claim on each at the α it was judged at, and reports the share that agree with the verdict
and what the others gave. The draws are seeded by the study's seed and the claim's id, so a
report is reproducible. A verdict that only some resamples give rests on a few of its seeds.

What it is not: the chance that a rerun on new seeds agrees. A resample reuses these seeds, so
with few of them it overstates agreement: in ``tests/test_stability.py``, simulated 5-seed
studies whose "reproduced" held in at least :data:`STABLE` of the resamples still flipped on an
independent rerun about a quarter of the time. The report says so beside every number. It is
also a statement about this host and software: another device, thread count or version draws
from another process.

Claims on model sets (variability) are not resampled: their intervals already resample the
models, and a set's stored predictions are measured once per set.

Imports spec, stats, display and the sibling module verdicts (numpy).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ..display.tables import VERDICT_TEXT
from ..spec.claim_base import uses_model_sets
from ..stats.comparisons import without_rank_tests
from .verdicts import INCONCLUSIVE, NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED

RESAMPLES = 50
"""Resamples per claim: the share's binomial SE is at most 7 points, enough to tell a verdict
that holds in 95 % of resamples from one that holds in 60 %."""
STABLE = 0.8
"""Below this share of agreeing resamples the report says the verdict leans on a few seeds."""


def _rng(study_seed: int, claim_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{study_seed}|stability|{claim_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def resample_rows(rows: list[dict[str, Any]], chosen: list[int]) -> list[dict[str, Any]]:
    """The rows of the seed indices ``chosen`` (repeats allowed), the j-th chosen seed's runs
    renumbered as seed index j (rows of seeds not chosen are left out)."""
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_seed.setdefault(int(r.get("seed_index", 0)), []).append(r)
    return [{**r, "seed_index": j} for j, s in enumerate(chosen) for r in by_seed.get(s, ())]


def stability(
    claim: Any,
    ctx: Any,
    verdict: str,
    judge: Callable[[Any, Any], Any],
    resamples: int = RESAMPLES,
) -> dict[str, Any] | None:
    """The share of seed resamples on which ``judge(claim, ctx_resampled)`` gives ``verdict``.

    Args:
        claim: the claim, at the α it was judged at.
        ctx: the :class:`~restudy.compare.context.EvaluationContext` it was judged on.
        verdict: the verdict it got.
        judge: the claim kind's evaluator.
        resamples: how many resamples.

    Returns:
        ``{"same": share, "resamples": B, "seeds": n, "verdicts": {verdict: share}}``, or None
        for a verdict that is not evaluated, fewer than 2 seeds, a claim on model sets or one that
        reads no runs (:meth:`~restudy.spec.claim_base.ClaimBase.reads_runs`).
    """
    if verdict == NOT_EVALUATED or uses_model_sets(claim) or not claim.reads_runs():
        return None
    selectors = [sel for _, sel in claim.selectors()]
    own = [r for sel in selectors for r in ctx.runs(sel)] if selectors else ctx.rows
    seeds = sorted({int(r.get("seed_index", 0)) for r in own})  # the seeds the claim's own runs have
    if len(seeds) < 2:
        return None
    rng = _rng(ctx.study.seed, claim.id)
    counts: dict[str, int] = {}
    with without_rank_tests():  # shown beside verdicts, never deciding them
        for _ in range(resamples):
            chosen = [seeds[i] for i in rng.integers(0, len(seeds), len(seeds))]
            sub = dataclasses.replace(ctx, rows=resample_rows(ctx.rows, chosen), var_rows={}, model_sets=None)
            got = judge(claim, sub).verdict
            counts[got] = counts.get(got, 0) + 1
    order = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_EVALUATED)
    shares = {v: counts[v] / resamples for v in order if v in counts}
    return {"same": shares.get(verdict, 0.0), "resamples": resamples, "seeds": len(seeds), "verdicts": shares}


def describe(stab: dict[str, Any] | None, verdict: str) -> str:
    """``resampled seeds agree in 83% (50 resamples of its 5 seeds; 17% inconclusive)``."""
    if not stab:
        return ""
    others = "".join(
        f"; {share:.0%} {VERDICT_TEXT.get(v, v)}" for v, share in stab["verdicts"].items() if v != verdict and share
    )
    runs = f"{stab['resamples']} resamples of its {stab['seeds']} seeds"
    return f"resampled seeds agree in {stab['same']:.0%} ({runs}{others})"
