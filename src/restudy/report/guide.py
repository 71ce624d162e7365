"""What to do next, at the end of a report: the command that would settle each inconclusive claim
(with its estimated time, scaled from this run's own measured cost) and, below paper scale, what
the paper-scale runs need (the data files under ``RESTUDY_DATA``).

Imports compare, display and spec (pure string building otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import compare as cmp
from ..display.tables import duration
from ..spec.study import Study
from ..spec.studyfile import run_command


def _seeds_now(rows: Sequence[dict[str, Any]]) -> int:
    """The most seeds any variant has in these runs (``--seeds N`` sets every experiment's)."""
    count: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (str(r.get("experiment")), str(r.get("variant_id")))
        count[key] = count.get(key, 0) + 1
    return max(count.values(), default=0)


def _estimate(rows: Sequence[dict[str, Any]], plan_info: dict[str, Any], seeds: int) -> str:
    """Time for ``--seeds seeds`` (resume redoes nothing): each experiment × variant's missing runs
    at the mean wall time of its runs here, spread over this run's workers."""
    times: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        key = (str(r.get("experiment")), str(r.get("variant_id")))
        times.setdefault(key, []).append(r["wall_s"] if isinstance(r.get("wall_s"), (int, float)) else math.nan)
    extra = sum(max(0, seeds - len(ts)) * sum(ts) / len(ts) for ts in times.values())
    workers = plan_info.get("workers")
    if not times or not math.isfinite(extra):
        return "unknown"
    return duration(extra / max(1, workers if isinstance(workers, int) else 1))


def _same(again: dict[str, Any]) -> dict[str, Any]:
    return {"out": again["out"], "overrides": again["overrides"], "only": again["only"]}


def next_steps(
    study: Study,
    scale: str,
    comparison: cmp.Comparison,
    rows: Sequence[dict[str, Any]],
    plan_info: dict[str, Any],
) -> dict[str, Any]:
    """``{"commands": [{"claims", "command", "seeds", "estimate"}], "paper": {...} | None}``.

    One command per distinct number of seeds: ``restudy run <study> --scale <scale> --seeds N``
    with the run's own study file, overrides, ``--only`` and ``--out`` (``plan_info["rerun"]``,
    :func:`restudy.spec.studyfile.run_command`), so earlier runs are reused. ``paper``: the data
    the paper scale reads, the claims it would judge and how many reported train/test values its
    runs would let the leakage guard judge, when this report is below paper scale.
    """
    seeds_now = _seeds_now(rows)
    again = {"study": study.id, "out": None, "overrides": [], "only": [], **(plan_info.get("rerun") or {})}
    wanted: dict[int, list[str]] = {}
    unknown: list[str] = []
    for c in comparison.claims:
        if c.verdict != "inconclusive":
            continue
        if c.seeds_needed:
            # --seeds sets every experiment's count: never below what some experiment already has
            wanted.setdefault(max(int(c.seeds_needed), seeds_now), []).append(c.id)
        else:
            unknown.append(c.id)
    commands = [
        {
            "claims": ids,
            "seeds": n,
            "command": run_command(again["study"], scale, seeds=n, **_same(again)),
            "estimate": _estimate(rows, plan_info, n),
        }
        for n, ids in sorted(wanted.items())
    ]
    paper = None
    if scale != "paper":
        waiting = [c.id for c in comparison.claims if c.verdict == "not_evaluated"]
        paper = {
            # a new folder (one folder holds one scale); only the study and the --only subset carry over
            "command": ("RESTUDY_DATA=/path/to/data " if plan_info.get("paper_data") else "")
            + run_command(again["study"], "paper", only=again["only"]),
            "data": list(plan_info.get("paper_data") or []),
            "claims": waiting,
            # reported train/test values the leakage guard leaves to the paper scale's runs
            "leakage": sum(1 for x in comparison.leakage if study.table(x.table).scale == "paper"),
        }
    return {"commands": commands, "unknown": unknown, "paper": paper, "seeds_now": seeds_now}
