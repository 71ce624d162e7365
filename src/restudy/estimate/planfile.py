"""``<out>/plan.json``: the estimate ``restudy plan`` made (``restudy.estimate.cost``), kept so that the
report of the ``restudy run`` that follows can set it beside the actual wall time.

The estimate is compared only when it is of the same plan (same run keys) and the command that
made the report ran exactly the runs the estimate had left (started after it, within the command's
time); otherwise the report says why not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import RestudyError
from ..planning.runs import RunSpec
from .cost import Estimate

PLAN_FILE = "plan.json"


def keys_digest(keys: Sequence[str]) -> str:
    """A short digest of a set of run keys (which runs a plan covers)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def write_plan(out: Path, est: Estimate, specs: Sequence[RunSpec], done: set[str]) -> Path:
    """Write the estimate to ``<out>/plan.json`` with the runs it covers."""
    from ..storage.safeio import write_json

    todo = sorted(s.key for s in specs if s.key not in done)
    payload = {
        **est.to_json(),
        "planned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "plan_keys": keys_digest([s.key for s in specs]),
        "todo_keys": todo,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / PLAN_FILE, payload)
    return out / PLAN_FILE


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def estimate_vs_actual(
    out: Path,
    keys: Sequence[str],
    records: Sequence[dict[str, Any]],
    wall_s: float | None,
    training_ended: datetime | None = None,
) -> dict[str, Any] | None:
    """What the report says of ``<out>/plan.json``: None without one; else the estimate, and the
    actual training wall time with the ratio actual / estimate when this command ran exactly the
    runs the plan had left (started after the plan, within this command's ``wall_s`` of training
    that ended at ``training_ended``, default now)."""
    from ..storage.safeio import read_json

    path = out / PLAN_FILE
    if not path.is_file():
        return None
    try:
        plan = read_json(path)
    except RestudyError:
        return {"note": f"{PLAN_FILE} could not be read"}
    if not isinstance(plan, dict) or not isinstance(plan.get("wall_s"), (int, float)):
        return {"note": f"{PLAN_FILE} is not one restudy plan wrote"}
    keep = ("wall_s", "wall_s_now", "load_factor", "todo", "workers", "threads", "planned_at", "execution")
    shown = {k: plan.get(k) for k in keep}
    if plan.get("plan_keys") != keys_digest(list(keys)):
        return {
            **shown,
            "note": "the estimate is of another plan (seeds, overrides or study changed): not compared",
        }
    todo = set(plan.get("todo_keys") or [])
    if wall_s is None:
        return {**shown, "note": "this command ran no runs: no actual time to compare"}
    planned = _when(plan.get("planned_at"))
    now = training_ended or datetime.now(UTC)
    ran = [
        r
        for r in records
        if r.get("key") in todo
        and (t := _when(r.get("started_at"))) is not None
        and planned is not None
        and t >= planned.replace(microsecond=0)
        and (now - t).total_seconds() <= wall_s + 2.0
    ]
    if len(ran) != len(todo):
        return {**shown, "note": f"this command ran {len(ran)} of the {len(todo)} runs the plan had left: not compared"}
    now_s = plan.get("wall_s_now") if isinstance(plan.get("wall_s_now"), (int, float)) else plan["wall_s"]
    return {
        **shown,
        "actual_s": wall_s,
        "ratio": wall_s / plan["wall_s"] if plan["wall_s"] > 0 else None,
        "ratio_at_load": wall_s / now_s if now_s > 0 else None,
        "note": "",
    }
