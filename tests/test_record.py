"""Run records: a record survives a JSON round trip and flattens to the row comparisons use."""

from __future__ import annotations

from pathlib import Path

from restudy.plan import plan
from restudy.record import DONE_STATUSES, STATUSES, RunRecord, row
from restudy.safeio import read_json, write_json
from restudy.studyfile import load_study


def _record(status: str = "finished") -> RunRecord:
    spec = plan(load_study("enorm"), "smoke")[0]
    return RunRecord(
        key=spec.key,
        spec=spec.to_dict(),
        status=status,
        metrics={"test_acc": 51.5, "test_loss": None},
        curves=[{"epoch": 1, "train_loss": 1.2}],
        timings={"wall_s": 0.5},
        env={"fingerprint": "abc123", "threads": 1},
        artifacts={"test_logits.safetensors": {"sha256": "00"}},
        started_at="t0",
        finished_at="t1",
    )


def test_json_round_trip(tmp_path: Path):
    rec = _record()
    write_json(tmp_path / "run.json", rec.to_dict())
    assert RunRecord.from_dict(read_json(tmp_path / "run.json")) == rec


def test_fields_from_a_newer_version_are_ignored():
    d = _record().to_dict() | {"added_later": 1}
    assert RunRecord.from_dict(d) == _record()


def test_row_is_the_flat_view_compare_reads():
    rec = _record("diverged")
    r = row(rec.to_dict())
    assert r["key"] == rec.key and r["status"] == "diverged"
    assert r["experiment"] == "fc" and r["seed_index"] == 0 and r["scale"] == "smoke"
    assert r["variant"] == rec.spec["variant"]
    assert r["variant_id"] == ",".join(f"{k}={v}" for k, v in rec.spec["variant"].items())
    assert r["metrics"] == {"test_acc": 51.5, "test_loss": None}
    assert r["wall_s"] == 0.5 and r["env_fingerprint"] == "abc123"


def test_failed_runs_are_retried_the_others_not():
    assert set(STATUSES) == {"finished", "diverged", "failed"}
    assert "failed" not in DONE_STATUSES and set(DONE_STATUSES) == {"finished", "diverged"}
