"""Faults a user (or an attacker) meets, each ending in a clear message and nothing lost or silently
wrong: a driver killed at random points with run files damaged in between ends exactly as an
uninterrupted study; Ctrl-C stops a study and says how to resume; workers die with their driver; a
driver takes over the runs of a killed one; parts that cannot be built are refused before the
first run with the study file's ``file:line``; claims whose groups have no runs are not evaluated
and the report is still written; bad output folders and tampered files are refused or listed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restudy import plugins
from restudy.compare import load_predictions
from restudy.errors import StudyError
from restudy.execution.executor import InlineExecutor
from restudy.execution.runner import run_study
from restudy.spec.studyfile import load_study, parse_overrides

SRC = str(Path(__file__).resolve().parents[1] / "src")
runner = CliRunner()


def _restudy(out: Path, *args: str, workers: str = "0") -> subprocess.Popen:
    """``restudy run enorm --scale smoke`` (plus ``args``) into ``out``, in its own process group."""
    cmd = [sys.executable, "-m", "restudy.cli", "run", "enorm", "--scale", "smoke", *args]
    cmd += ["--out", str(out), "--workers", workers]
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": SRC}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )


def _ended(out: Path) -> int:
    return len(list((out / "runs").glob("*/run.json")))


def _wait_for(cond, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc is not None and proc.poll() is not None:
            return cond()
        time.sleep(0.02)
    return False


def _group_gone(pgid: int, timeout: float) -> bool:
    """Whether every process of the group has exited within ``timeout`` seconds."""

    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    return _wait_for(gone, timeout)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _comparable(out: Path) -> dict:
    """What results.json says, less what may differ between two correct runs of the same study
    (timings, the environment, the command)."""
    data = json.loads((out / "results.json").read_text())
    runs = sorted((r["id"], r["status"], r["test_acc"], r["train_acc"]) for r in data["runs"])
    claims = [(c["id"], c["verdict"], c.get("summary")) for c in data["claims"]]
    return {"runs": runs, "claims": claims, "cells": data.get("cells")}


def _damage(out: Path, rng: random.Random) -> str:
    """Delete or corrupt one random stored run file; says what it did."""
    runs = sorted(p.parent for p in (out / "runs").glob("*/run.json"))
    if not runs:
        return "nothing to damage"
    victim = rng.choice(runs)
    how = rng.choice(["remove folder", "truncate run.json", "remove run.json", "copy logits", "flip logits"])
    if how == "remove folder":
        shutil.rmtree(victim)
    elif how == "truncate run.json":
        text = (victim / "run.json").read_text()
        (victim / "run.json").write_text(text[: len(text) // 2])
    elif how == "remove run.json":
        (victim / "run.json").unlink()
    else:
        logits = victim / "test_logits.safetensors"
        others = [r for r in runs if r != victim and (r / "test_logits.safetensors").exists()]
        if not logits.exists() or (how == "copy logits" and not others):
            shutil.rmtree(victim)
            return f"remove folder {victim.name}"
        if how == "copy logits":
            shutil.copyfile(rng.choice(others) / "test_logits.safetensors", logits)
        else:
            data = bytearray(logits.read_bytes())
            data[-5] ^= 0x40
            logits.write_bytes(bytes(data))
    return f"{how} {victim.name}"


def test_killed_at_random_points_with_damaged_files_ends_as_an_uninterrupted_run(tmp_path):
    rng = random.Random(int(os.environ.get("RESTUDY_FAULT_SEED", "9")))
    clean = tmp_path / "clean"
    reference = _restudy(clean)  # runs while the other is being killed
    out = tmp_path / "faulty"
    done: list[str] = []
    for _ in range(5):
        target = min(_ended(out) + rng.randint(1, 4), 23) if (out / "runs").exists() else rng.randint(1, 4)
        proc = _restudy(out)
        _wait_for(lambda n=target: (out / "runs").exists() and _ended(out) >= n, 60, proc)
        time.sleep(rng.random() * 0.2)  # somewhere inside a run, or between two
        _kill_group(proc)
        done.append(_damage(out, rng))
    final = _restudy(out)
    text, _ = final.communicate(timeout=120)
    assert final.returncode == 0, text
    assert "invalid and will be redone" in text or "resuming" in text, text
    ref_text, _ = reference.communicate(timeout=120)
    assert reference.returncode == 0, ref_text
    assert _comparable(out) == _comparable(clean), done
    again = _restudy(out)
    text, _ = again.communicate(timeout=120)
    assert again.returncode == 0 and "ran 0 run(s), reused 24" in text, text


SLOW = ["epochs=12", "data.n_train=800"]  # runs long enough to be interrupted in the middle


def test_first_ctrl_c_lets_running_runs_finish_and_prints_the_command_to_resume(tmp_path):
    out = tmp_path / "out"
    proc = _restudy(out, *SLOW, workers="2")
    try:
        assert _wait_for(lambda: (out / "runs").exists() and _ended(out) >= 1, 90, proc)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the driver and its workers
        text, _ = proc.communicate(timeout=90)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, text
    assert "Ctrl-C" in text and "To resume, type" in text and f"--out {out}" in text, text
    assert "Traceback" not in text
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")]
    assert 1 <= len(records) < 24
    assert all(r["status"] == "finished" for r in records), "a run stopped by Ctrl-C must not be recorded"
    assert _group_gone(proc.pid, 10), "worker processes outlived their driver"
    resumed = _restudy(out, *SLOW, workers="2")
    text, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0 and f"reused {len(records)}" in text, text


def test_second_ctrl_c_stops_at_once(tmp_path):
    out = tmp_path / "out"
    proc = _restudy(out, *SLOW, "epochs=400", workers="2")
    try:
        assert _wait_for(lambda: (out / "runs").exists() and any((out / "runs").iterdir()), 90, proc)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        text, _ = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 20
    finally:
        _kill_group(proc)
    assert proc.returncode == 130 and "To resume, type" in text and "Traceback" not in text, text
    assert _group_gone(proc.pid, 10), "worker processes outlived their driver"


def test_workers_exit_when_their_driver_is_killed(tmp_path):
    out = tmp_path / "out"
    proc = _restudy(out, *SLOW, "epochs=400", workers="2")
    try:
        assert _wait_for(lambda: (out / "runs").exists() and any((out / "runs").iterdir()), 90, proc)
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait()
        assert _group_gone(proc.pid, 10), "worker processes outlived their driver"
    finally:
        _kill_group(proc)


def test_a_driver_takes_over_the_runs_of_a_killed_one(tmp_path):
    out = tmp_path / "shared"
    first = _restudy(out, *SLOW)
    try:
        assert _wait_for(lambda: (out / "runs").exists() and _ended(out) >= 1, 90, first)
        second = _restudy(out, *SLOW)
        assert _wait_for(lambda: _ended(out) >= 3, 90, second)
        _kill_group(first)  # it holds a claim on the run it was training
        text, _ = second.communicate(timeout=240)
    finally:
        _kill_group(first)
    assert second.returncode == 0, text
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")]
    assert len(runs) == 24 and all(r["status"] == "finished" for r in runs)
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 24


# --- checks before the first run --------------------------------------------------------------------


def test_a_model_argument_its_factory_refuses_is_named_with_file_and_line_before_any_run(study_file, tmp_path):
    def mutate(d):
        d["experiments"][0].setdefault("settings", {})["model.colour"] = {"value": 1, "provenance": "assumed"}

    path = study_file(mutate)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "model.colour" in t)
    with pytest.raises(StudyError) as info:
        run_study(load_study(path), "smoke", tmp_path / "out", executor=InlineExecutor(1))
    text = str(info.value)
    assert f"{path}:{line}" in text and "colour" in text and "experiment 'fc'" in text, text
    assert not list((tmp_path / "out").glob("runs/*/run.json"))


def test_a_model_argument_set_on_the_command_line_is_named_as_such(tmp_path):
    with pytest.raises(StudyError) as info:
        run_study(
            load_study("enorm"),
            "smoke",
            tmp_path,
            overrides=parse_overrides(["fc:model.colour=1"]),
            executor=InlineExecutor(1),
        )
    assert "command line: model.colour=1" in str(info.value) and "colour" in str(info.value)
    assert not list(tmp_path.glob("runs/*/run.json"))


# --- claims with empty groups -----------------------------------------------------------------------


def _cli_run(path: Path, out: Path, *extra: str):
    return runner.invoke(
        app_(),
        ["run", str(path), "--scale", "smoke", "--workers", "0", "--out", str(out), *extra],
        env={"COLUMNS": "200"},
    )


def app_():
    from restudy.cli import app

    return app


def test_a_scale_without_a_claims_levels_gives_not_evaluated_and_a_report(study_file, tmp_path):
    def mutate(d):
        d["scales"]["smoke"].setdefault("axes", {})["method"] = ["baseline"]

    out = tmp_path / "out"
    r = _cli_run(study_file(mutate), out)
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in results["claims"]}
    assert verdicts["enorm_beats_baseline_deep"] == "not_evaluated", verdicts
    assert (out / "report.html").exists() and (out / "report.md").exists()


def test_an_axis_restricted_to_nothing_runs_nothing_and_still_reports(study_file, tmp_path):
    def mutate(d):
        d["scales"]["smoke"].setdefault("axes", {})["method"] = []

    out = tmp_path / "out"
    r = _cli_run(study_file(mutate), out)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    results = json.loads((out / "results.json").read_text())
    assert all(c["verdict"] == "not_evaluated" for c in results["claims"])
    assert (out / "report.html").exists()


@pytest.fixture
def exploding_model():
    """A model that builds but fails when it trains: every run of a variant using it fails."""
    import torch

    class Explodes(torch.nn.Module):
        def __init__(self, input_shape, num_classes, **kw):
            super().__init__()
            self.lin = torch.nn.Linear(int(torch.tensor(input_shape).prod()), num_classes)

        def forward(self, x):
            raise RuntimeError("this model always fails")

    with plugins.scoped():
        plugins.register("model", "explodes")(Explodes)
        yield "explodes"


def test_a_failed_variant_gives_not_evaluated_and_a_report(study_file, tmp_path, exploding_model):
    def mutate(d):
        levels = d["experiments"][0]["axes"]["method"]
        levels = levels.get("levels", levels)
        levels["baseline"]["model"] = exploding_model

    out = tmp_path / "out"
    r = _cli_run(study_file(mutate), out)
    assert r.exit_code == 0, r.output
    assert "failed" in r.output and "this model always fails" in r.output
    results = json.loads((out / "results.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in results["claims"]}
    assert verdicts["enorm_beats_baseline_deep"] == "not_evaluated", verdicts
    assert (out / "report.html").exists()


# --- stored predictions -------------------------------------------------------------------------------


def test_load_predictions_counts_a_file_that_fails_its_sha256_as_missing(tmp_path: Path) -> None:
    import torch

    from restudy.storage.artifacts import LOGITS_FILE, RUN_FILE, run_dir
    from restudy.storage.safeio import save_tensors, write_json

    for key, scale in (("k1", 1.0), ("k2", 2.0)):
        sha = save_tensors(
            run_dir(tmp_path, key) / LOGITS_FILE, {"logits": scale * torch.ones(4, 2), "labels": torch.zeros(4)}
        )
        write_json(run_dir(tmp_path, key) / RUN_FILE, {"artifacts": {LOGITS_FILE: {"sha256": sha}}})
    load = load_predictions(tmp_path)
    assert load("k1", "test") is not None and load("k2", "test") is not None
    # Another run's predictions copied over this run's: its run.json's sha256 no longer matches.
    (run_dir(tmp_path, "k1") / LOGITS_FILE).write_bytes((run_dir(tmp_path, "k2") / LOGITS_FILE).read_bytes())
    assert load("k1", "test") is None and load("k2", "test") is not None
    assert "sha256" in load.problems["k1"] and "k2" not in load.problems
    # A run.json that records no hash for the file: not trusted either.
    write_json(run_dir(tmp_path, "k2") / RUN_FILE, {"artifacts": {}})
    assert load("k2", "test") is None and "records no sha256" in load.problems["k2"]
