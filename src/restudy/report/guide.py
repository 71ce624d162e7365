"""What to do next, at the end of a report: the command that would settle each inconclusive claim
(with its estimated time, scaled from this run's own measured cost) and, below paper scale, what
the paper-scale runs need (the data files under ``RESTUDY_DATA``).

Imports compare and study (pure string building otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import compare as cmp
from ..study import Study
from .tables import duration


def _seeds_now(rows: Sequence[dict[str, Any]]) -> int:
    """The most seeds any variant has in these runs (``--seeds N`` sets every experiment's)."""
    count: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (str(r.get("experiment")), str(r.get("variant_id")))
        count[key] = count.get(key, 0) + 1
    return max(count.values(), default=0)


def _estimate(rows: Sequence[dict[str, Any]], plan_info: dict[str, Any], seeds_now: int, seeds: int) -> str:
    """Time for ``--seeds seeds`` when ``seeds_now`` are done (resume redoes nothing): this run's
    elapsed time (or summed run time over the workers) × the new seeds / the seeds done."""
    elapsed = plan_info.get("wall_s_total")
    if not isinstance(elapsed, (int, float)) or elapsed <= 0:
        total = sum(r["wall_s"] for r in rows if isinstance(r.get("wall_s"), (int, float)))
        workers = plan_info.get("workers") or 1
        elapsed = total / max(1, int(workers)) if isinstance(workers, int) else total
    if not seeds_now or not elapsed:
        return "unknown"
    return duration(elapsed * max(0, seeds - seeds_now) / seeds_now)


def next_steps(
    study: Study,
    scale: str,
    comparison: cmp.Comparison,
    rows: Sequence[dict[str, Any]],
    plan_info: dict[str, Any],
) -> dict[str, Any]:
    """``{"commands": [{"claims", "command", "seeds", "estimate"}], "paper": {...} | None}``.

    One command per distinct number of seeds: ``restudy run <study> --scale <scale> --seeds N``
    (earlier runs are reused). ``paper``: the data the paper scale reads and the claims it would
    judge, when this report is below paper scale.
    """
    seeds_now = _seeds_now(rows)
    wanted: dict[int, list[str]] = {}
    unknown: list[str] = []
    for c in comparison.claims:
        if c.verdict != "inconclusive":
            continue
        if c.seeds_needed and c.seeds_needed > seeds_now:
            wanted.setdefault(int(c.seeds_needed), []).append(c.id)
        else:
            unknown.append(c.id)
    commands = [
        {
            "claims": ids,
            "seeds": n,
            "command": f"restudy run {study.id} --scale {scale} --seeds {n}",
            "estimate": _estimate(rows, plan_info, seeds_now, n),
        }
        for n, ids in sorted(wanted.items())
    ]
    paper = None
    if scale != "paper":
        waiting = [c.id for c in comparison.claims if c.verdict == "not_evaluated"]
        paper = {
            "command": f"RESTUDY_DATA=/path/to/data restudy run {study.id} --scale paper",
            "data": list(plan_info.get("paper_data") or []),
            "claims": waiting,
        }
    return {"commands": commands, "unknown": unknown, "paper": paper, "seeds_now": seeds_now}
