"""A killed study resumes without redoing finished runs and ends exactly as an uninterrupted one;
two drivers on one directory lose nothing and do not crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ARGS = ["enorm", "--scale", "smoke", "epochs=25", "data.n_train=800"]


def _restudy(out: Path, *extra: str, workers: str = "0", **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "restudy.cli", "run", *ARGS, "--out", str(out), "--workers", workers, *extra]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kw)


def _finished(out: Path) -> dict[str, str]:
    """run key -> run.json text, for runs whose run.json exists."""
    return {p.parent.name: p.read_text() for p in (out / "runs").glob("*/run.json")}


def _results(out: Path) -> dict[str, tuple]:
    data = json.loads((out / "results.json").read_text())
    return {r["id"]: (r["status"], r["test_acc"], r["train_acc"]) for r in data["runs"]}


def test_sigkill_then_resume_redoes_nothing_and_matches_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    proc = _restudy(killed, workers="1", start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_finished(killed)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _finished(killed)
    assert 3 <= len(before) < 24, "the study should have been killed part-way"

    resumed = _restudy(killed)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resuming" in out
    after = _finished(killed)
    assert len(after) == 24
    for key, text in before.items():
        if json.loads(text)["status"] in ("finished", "diverged"):
            assert after[key] == text, f"run {key} was redone"

    clean = tmp_path / "clean"
    ref = _restudy(clean)
    out2, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out2
    assert _results(killed) == _results(clean)  # bit-identical metrics, same run ids
    for key in after:
        a = json.loads(after[key])["artifacts"]["test_logits.safetensors"]["sha256"]
        b = json.loads((clean / "runs" / key / "run.json").read_text())["artifacts"]["test_logits.safetensors"][
            "sha256"
        ]
        assert a == b


def test_two_drivers_on_one_directory_lose_nothing(tmp_path):
    out = tmp_path / "shared"
    procs = [_restudy(out, workers="0") for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    runs = _finished(out)
    assert len(runs) == 24 and all(json.loads(t)["status"] == "finished" for t in runs.values())
    ran = sum(int(o.split("ran ")[1].split(" ")[0]) for o in outputs)
    assert ran == 24, outputs  # every run executed exactly once between the two
    assert len(_results(out)) == 24
