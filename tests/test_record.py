"""Run records: a record survives a JSON round trip and flattens to the row comparisons use; a
record read from disk is checked against its schema and a damaged one is refused, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from restudy.errors import StoreError
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study
from restudy.storage.record import DONE_STATUSES, STATUSES, RunRecord, row, validate
from restudy.storage.safeio import read_json, write_json


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


# --- validation of run.json read from disk -------------------------------------------------------

RECORDS = Path(__file__).parent / "records"  # run.json files written by the previous version


def _valid() -> dict:
    d = _record().to_dict()
    d["artifacts"] = {"test_logits.safetensors": {"sha256": "ab" * 32, "what": "logits"}}
    d["metrics"] = {
        "test_acc": 51.5,
        "train_acc": 60.0,
        "test_loss": 1.2,
        "train_loss": None,
        "diverged": 0.0,
        "epochs_done": 2,
        "n_test": 200,
        "n_train": 400,
        "test_acc_tta_crop9": 52.0,
    }
    return d


def test_a_valid_record_validates_and_comes_back_typed():
    d = _valid()
    rec = validate(d, folder_key=d["key"])
    assert isinstance(rec, RunRecord) and rec.to_dict() == d


def test_a_step_curve_validates_and_a_record_without_one_has_none():
    d = _valid()
    assert "step_curve" not in d and validate(d).step_curve == []  # off: not written, read as empty
    d["step_curve"] = [{"step": 5, "loss": 2.25, "n": 5}, {"step": 7, "loss": 1.5, "n": 2}]
    rec = validate(d, folder_key=d["key"])
    assert rec.step_curve == d["step_curve"] and rec.to_dict() == d
    assert row(d)["step_curve"] == d["step_curve"]


@pytest.mark.parametrize("name", ["finished", "diverged", "ensemble_tta"])
def test_records_written_by_the_previous_version_validate(name: str):
    d = read_json(RECORDS / f"{name}.json")
    assert validate(d, folder_key=d["key"]).to_dict() == d


def _set(path: str, value):
    def change(d: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        if value is _DELETE:
            del d[last]
        else:
            d[last] = value

    return change


_DELETE = object()
BAD = {
    "accuracy as a word": ("metrics.test_acc", "high", "metrics.test_acc"),
    "accuracy 1e300": ("metrics.test_acc", 1e300, "[0, 100]"),
    "accuracy -500": ("metrics.train_acc", -500, "metrics.train_acc"),
    "accuracy NaN": ("metrics.test_acc", float("nan"), "nan"),
    "TTA accuracy over 100": ("metrics.test_acc_tta_crop9", 100.5, "metrics.test_acc_tta_crop9"),
    "negative loss": ("metrics.test_loss", -0.1, ">= 0"),
    "infinite loss": ("metrics.train_loss", float("inf"), "metrics.train_loss"),
    "diverged 0.5": ("metrics.diverged", 0.5, "0 or 1"),
    "diverged as a bool": ("metrics.diverged", True, "metrics.diverged"),
    "fractional count": ("metrics.epochs_done", 2.5, "integer"),
    "negative count": ("metrics.n_test", -1, "metrics.n_test"),
    "unknown status": ("status", "done", "'finished', 'diverged' or 'failed'"),
    "no spec": ("spec", _DELETE, "field spec"),
    "spec a list": ("spec", [1, 2], "field spec"),
    "variant a string": ("spec.variant", "depth=1", "spec.variant"),
    "variant level a number": ("spec.variant.depth", 1, "spec.variant.depth"),
    "negative seed index": ("spec.seed_index", -1, "spec.seed_index"),
    "seed index a string": ("spec.seed_index", "0", "spec.seed_index"),
    "no experiment": ("spec.experiment", _DELETE, "spec.experiment"),
    "spec key differs": ("spec.key", "0" * 20, "spec.key"),
    "key with a slash": ("key", "../other", "field key"),
    "step curve row without its step": ("step_curve", [{"loss": 1.0, "n": 5}], "step_curve.0.step"),
    "step curve loss NaN": ("step_curve", [{"step": 5, "loss": float("nan"), "n": 5}], "step_curve.0.loss"),
    "step curve step 0": ("step_curve", [{"step": 0, "loss": 1.0, "n": 1}], "step_curve.0.step"),
    "negative duration": ("timings.wall_s", -1.0, "timings.wall_s"),
    "artifact outside the folder": ("artifacts", {"../x.safetensors": {"sha256": "ab" * 32}}, "../x"),
    "artifact without sha256": ("artifacts", {"test_logits.safetensors": {"what": "x"}}, "sha256"),
    "artifact sha256 not hex": ("artifacts", {"test_logits.safetensors": {"sha256": "zz"}}, "sha256"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_damaged_record_is_refused_naming_the_field(case: str):
    path, value, expect = BAD[case]
    d = _valid()
    _set(path, value)(d)
    with pytest.raises(StoreError) as info:
        validate(d, where="runs/k/run.json")
    msg = str(info.value)
    assert msg.startswith("runs/k/run.json: ") and expect in msg


@pytest.mark.parametrize("value", [[1, 2], "text", None, 3])
def test_a_record_that_is_not_an_object_is_refused(value):
    with pytest.raises(StoreError, match="must be a JSON object"):
        validate(value)


def test_a_record_copied_from_another_run_is_refused():
    d = _valid()
    with pytest.raises(StoreError) as info:
        validate(d, folder_key="f" * 20)
    assert "copied from another run" in str(info.value) and d["key"] in str(info.value)


def test_null_metrics_and_a_failed_record_without_metrics_are_valid():
    d = _valid() | {"status": "failed", "metrics": {}, "artifacts": {}}
    assert validate(d).status == "failed"
    d = _valid()
    d["metrics"].update(test_acc=None, test_loss=None, extra_score=-3.5)
    validate(d)


def test_a_huge_bad_value_is_echoed_truncated():
    d = _valid()
    d["spec"]["variant"] = "x" * 1_000_000
    with pytest.raises(StoreError) as info:
        validate(d)
    assert len(str(info.value)) < 1000
