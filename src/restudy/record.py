"""The run record: what one run was, how it ended, what it measured, where and how long.

A record is a JSON-safe dict written as ``runs/<key>/run.json``; ``RunRecord`` gives it a type.
``row()`` flattens it to what comparisons need.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .artifacts import variant_id

STATUSES = ("finished", "diverged", "failed")
DONE_STATUSES = ("finished", "diverged")   # never redone on resume; "failed" is retried


def now() -> str:
    """The current UTC time, ISO 8601 to the second: a record's ``started_at`` and ``finished_at``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    key: str
    spec: dict[str, Any]                       # RunSpec.to_dict()
    status: str                                # one of STATUSES
    reason: str = ""                           # why diverged / failed
    metrics: dict[str, float | None] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def row(record: dict[str, Any]) -> dict[str, Any]:
    """The flat view of a record that compare and report use."""
    spec = record["spec"]
    variant = spec.get("variant", {})
    return {
        "key": record["key"],
        "experiment": spec["experiment"],
        "variant": variant,
        "variant_id": variant_id(variant),
        "seed_index": spec["seed_index"],
        "scale": spec.get("scale"),
        "dataset": spec.get("dataset_label"),
        "status": record["status"],
        "reason": record.get("reason", ""),
        "metrics": record.get("metrics", {}),
        "wall_s": record.get("timings", {}).get("wall_s"),
        "env_fingerprint": record.get("env", {}).get("fingerprint"),
    }
