"""The seeds each claim needs, from pilot runs: the finished runs an output folder holds are compared
with the claims (``restudy.compare``) and each claim's verdict and power analysis reported.

The counts are the claim evaluators' own (``stats.seeds_needed``: exact noncentral-t power at the
measured SD, the claim's α and power 0.8); nothing is recomputed here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..planning.runs import RunSpec
from ..storage import artifacts


def claim_power(comparison: Any, seeds_now: int) -> list[dict[str, Any]]:
    """Per claim, from a comparison of the pilot runs: its verdict and the seeds per variant that
    would resolve it. The count is the claim evaluator's own power analysis (``stats.seeds_needed``
    at the measured SD, the claim's α and power 0.8, the conventional target: a real effect of the
    observed size is missed at most one time in five)."""
    out = []
    for c in comparison.claims:
        if c.verdict == "inconclusive":
            need = (
                f"{c.seeds_needed} seeds per variant (power 0.8 at the measured SD, α of the claim)"
                if c.seeds_needed
                else "no seed count at the measured spread would settle it"
            )
        elif c.verdict == "not_evaluated":
            need = f"not evaluated here: {c.scale_note}"
        else:
            need = f"settled with {seeds_now} seeds ({c.verdict.replace('_', ' ')})"
        out.append({"claim": c.id, "verdict": c.verdict, "seeds_needed": c.seeds_needed, "says": need})
    return out


def pilot_power(study: Any, scale: str, out: Path, specs: Sequence[RunSpec]) -> tuple[list[dict[str, Any]], int]:
    """Compare the finished runs stored in ``out`` (the pilots) with the claims; (claim power, the
    number of pilot runs). Empty when there are none."""
    from ..compare import compare, load_predictions
    from ..storage.artifacts import STORE_FILE
    from ..storage.record import row
    from ..storage.store import Store

    if not (out / STORE_FILE).is_file():
        return [], 0
    with Store(out) as store:
        records = [r for r in store.records([s.key for s in specs]) if r.get("status") in ("finished", "diverged")]
    if not records:
        return [], 0
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        spec = r.get("spec") or {}
        k = (str(spec.get("experiment")), json.dumps(spec.get("variant"), sort_keys=True))
        counts[k] = counts.get(k, 0) + 1
    comparison = compare(study, scale, [row(r) for r in records], predictions=load_predictions(out))
    return claim_power(comparison, max(counts.values())), len(records)


def fit_epochs(out: Path, specs: Sequence[RunSpec]) -> dict[tuple[str, str], float]:
    """For runs that stop when their training set is fit (``stop_at_fit``): the mean number of
    epochs the finished pilot runs of each experiment × variant in ``out`` trained, by
    ``(experiment, variant_id)``; groups without a finished pilot are left out."""
    from ..storage.store import Store

    wanted = {(s.experiment, s.variant_id) for s in specs if s.engine.stop_at_fit}
    if not wanted or not (out / "store.db").is_file():
        return {}
    keys = {s.key for s in specs}
    epochs: dict[tuple[str, str], list[int]] = {}
    with Store(out) as store:
        done = store.done_keys() & keys
        for rec in store.records(done):
            spec = rec.get("spec") or {}
            group = (str(spec.get("experiment")), artifacts.variant_id(spec.get("variant") or {}))
            if group in wanted and rec.get("status") == "finished" and rec.get("curves"):
                epochs.setdefault(group, []).append(len(rec["curves"]))
    return {g: sum(v) / len(v) for g, v in epochs.items()}
