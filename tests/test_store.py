"""The run store: run.json is the truth, the index can always be rebuilt from it, several drivers
on one folder neither lose records nor run a run twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from restudy.errors import StoreError
from restudy.storage import artifacts
from restudy.storage.safeio import write_json
from restudy.storage.store import Store

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _record(key: str, status: str = "finished", seed: int = 0) -> dict:
    spec = {"study": "s", "scale": "smoke", "experiment": "fc", "variant": {"depth": "1"}, "seed_index": seed}
    return {
        "key": key,
        "spec": spec,
        "status": status,
        "metrics": {"test_acc": 50.0 + seed},
        "timings": {"wall_s": 1.0},
        "env": {"fingerprint": "f"},
        "finished_at": "t",
    }


def _worker_writes(store: Store, rec: dict) -> None:
    """What a worker does: the run's run.json, atomically; the index is the driver's job."""
    write_json(store.run_dir(rec["key"]) / artifacts.RUN_FILE, rec)


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, text=True, **kw
    )


def test_put_then_read_back(tmp_path: Path):
    with Store(tmp_path) as store:
        for i, status in enumerate(["finished", "diverged", "failed"]):
            rec = _record(f"k{i}", status, seed=i)
            _worker_writes(store, rec)
            store.put(rec)
        assert store.statuses() == {"k0": "finished", "k1": "diverged", "k2": "failed"}
        assert store.done_keys() == {"k0", "k1"}  # a failed run is retried on resume
        assert store.load("k1") == _record("k1", "diverged", seed=1)
        assert [r["key"] for r in store.records()] == ["k0", "k1", "k2"]
        assert store.ended_on_disk("k0") and not store.ended_on_disk("k2") and not store.ended_on_disk("nope")


def test_reindex_after_a_killed_driver_finds_every_finished_run(tmp_path: Path):
    """A driver killed between a worker's write and its own index update loses nothing."""
    with Store(tmp_path) as store:
        _worker_writes(store, _record("indexed"))
        store.put(_record("indexed"))
        _worker_writes(store, _record("orphan"))  # written, never indexed
        _worker_writes(store, _record("retried", "failed"))
        store.put(_record("retried", "failed"))
        _worker_writes(store, _record("retried"))  # rerun finished, index still says failed
        (store.runs_dir / "foreign").mkdir()
        (store.runs_dir / "foreign" / artifacts.RUN_FILE).write_text("not json")
    with Store(tmp_path) as store:  # the next driver
        assert store.done_keys() == {"indexed"}
        assert store.reindex() == 2
        assert store.done_keys() == {"indexed", "orphan", "retried"}
        assert store.reindex() == 0  # idempotent


def test_two_writers_lose_no_record(tmp_path: Path):
    code = (
        "import sys\n"
        "from restudy.storage.store import Store\n"
        "from restudy.storage.safeio import write_json\n"
        "tag = sys.argv[1]\n"
        "with Store(sys.argv[2]) as s:\n"
        "    for i in range(60):\n"
        "        rec = {'key': f'{tag}{i}', 'status': 'finished', 'spec': {'study': 's', 'scale': 'smoke',\n"
        "               'experiment': 'fc', 'variant': {}, 'seed_index': i}}\n"
        "        write_json(s.run_dir(rec['key']) / 'run.json', rec)\n"
        "        s.put(rec)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, tag, str(tmp_path)], env={**os.environ, "PYTHONPATH": SRC})
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store(tmp_path) as store:
        assert len(store.done_keys()) == 120


def test_a_run_claimed_by_a_live_driver_is_not_taken_and_a_dead_drivers_claim_is(tmp_path: Path):
    holder = _python(
        "import sys, time\n"
        "from restudy.storage.store import Store\n"
        f"assert Store({str(tmp_path)!r}).claim('k')\n"
        "print('claimed', flush=True)\n"
        "time.sleep(60)\n"
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with Store(tmp_path) as store:
            assert store.claimed_elsewhere("k")
            assert not store.claim("k")
    finally:
        holder.kill()
        holder.wait()
    with Store(tmp_path) as store:
        assert not store.claimed_elsewhere("k")
        assert store.claim("k")
        store.release("k")
        assert not (store.run_dir("k") / artifacts.CLAIM_FILE).exists()


def test_an_unusable_folder_is_a_store_error_naming_it(tmp_path: Path):
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    with pytest.raises(StoreError) as info:
        Store(blocker)
    assert str(blocker) in str(info.value)
