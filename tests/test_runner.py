"""The driver: plans once, imports a study's own module before checking data, and runs a study whose
module (in the study file's folder) registers its own data set and model, inline and in workers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import restudy.execution.runner
import restudy.planning.runs
from restudy import plugins
from restudy.cli import app

ROOT = Path(__file__).resolve().parents[1]

STUDY_MODULE = '''
"""A user's study module: a data set and a model registered by name."""
import dataclasses

import torch

from restudy.data.synthetic import synthetic
from restudy.plugins import register


@register("dataset", "own_blobs")
def own_blobs(n_train=64, n_test=32):
    return dataclasses.replace(synthetic(n_train=n_train, n_test=n_test, dim=6, num_classes=3), name="own_blobs")


@register("model", "own_linear")
def own_linear(input_shape, num_classes, scale=1.0):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[-1], num_classes))
'''

STUDY_FILE = """
id: own
title: A study with its own parts
paper: {title: Own parts}
module: mystudy
defaults:
  model: {value: own_linear, provenance: assumed}
  data: {value: own_blobs, provenance: assumed}
  optimizer.lr: {value: 0.1, provenance: assumed}
  epochs: {value: 2, provenance: assumed}
  batch_size: {value: 16, provenance: assumed}
experiments:
  - id: base
    seeds: 2
scales:
  smoke:
    settings: {data.n_train: 48}
"""


@pytest.fixture
def own_study(tmp_path, monkeypatch):
    """A study folder with ``study.yaml`` and ``mystudy.py``; sys.path and modules restored after."""
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "mystudy.py").write_text(textwrap.dedent(STUDY_MODULE))
    (folder / "study.yaml").write_text(STUDY_FILE)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "mystudy", raising=False)
    with plugins.scoped():  # other tests list the registered parts
        yield folder / "study.yaml"
    sys.modules.pop("mystudy", None)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_study_module_next_to_the_study_file_registers_data_and_model(own_study, tmp_path, workers):
    out = tmp_path / f"out{workers}"
    r = CliRunner().invoke(
        app,
        ["run", str(own_study), "--scale", "smoke", "--workers", workers, "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "ran 2 run(s)" in r.output
    results = json.loads((out / "results.json").read_text())
    assert [run["status"] for run in results["runs"]] == ["finished", "finished"]
    assert (out / "report.md").exists()
    r = CliRunner().invoke(app, ["report", str(out)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output


def test_run_plans_once(own_study, tmp_path, monkeypatch):
    calls = []
    real = restudy.planning.runs.plan

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(restudy.planning.runs, "plan", counting)
    monkeypatch.setattr(restudy.execution.runner, "plan", counting)
    r = CliRunner().invoke(
        app, ["run", str(own_study), "--scale", "smoke", "--workers", "0", "--out", str(tmp_path / "out")]
    )
    assert r.exit_code == 0, r.output
    assert calls == ["smoke"]
    r = CliRunner().invoke(app, ["report", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert calls == ["smoke", "smoke"]


def test_data_preflight_imports_the_study_module_first(own_study, tmp_path):
    """In a fresh process that knows only the planned runs (as a driver resuming from them would),
    the preflight finds the data set that the study's module registers."""
    from restudy.spec.studyfile import load_study

    specs = restudy.planning.runs.plan(load_study(own_study), "smoke")
    (tmp_path / "specs.json").write_text(json.dumps([s.to_dict() for s in specs]))
    code = (
        "import json, sys; from restudy.planning.runs import RunSpec; "
        "from restudy.execution.runner import preflight_data; "
        "preflight_data([RunSpec.from_dict(d) for d in json.load(open(sys.argv[1]))]); print('ok')"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "specs.json")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_an_unknown_part_of_the_study_module_is_named_with_its_line(own_study):
    from restudy.errors import StudyError
    from restudy.spec.studyfile import load_study

    own_study.write_text(own_study.read_text().replace("value: own_blobs", "value: own_blob"))
    with pytest.raises(StudyError) as e:
        restudy.planning.runs.plan(load_study(own_study), "smoke")
    assert f"{own_study}:8 defaults.data: unknown dataset 'own_blob' (did you mean 'own_blobs'?)" in str(e.value)


def test_runs_held_by_a_driver_that_dies_are_taken_over_and_run(own_study, tmp_path):
    """Another driver holds two runs when this one starts; it dies while this one waits: this one
    takes its runs over and runs them (the study ends complete, not short of them)."""
    import os
    import socket
    import time

    from restudy.execution.executor import InlineExecutor
    from restudy.spec.studyfile import load_study
    from restudy.storage import artifacts

    st = load_study(own_study)
    specs = restudy.planning.runs.plan(st, "smoke")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    try:
        for s in specs:
            claim = tmp_path / "runs" / s.key / artifacts.CLAIM_FILE
            claim.parent.mkdir(parents=True)
            claim.write_text(
                json.dumps({"host": socket.gethostname(), "pid": other.pid, "driver": "other", "time": time.time()})
            )
        events = []
        out = restudy.execution.runner.run_study(
            st, "smoke", tmp_path, executor=InlineExecutor(1), progress=lambda e, i: events.append(e)
        )
    finally:
        other.kill()
        other.wait()
    assert "waiting" in events and "takeover" in events
    assert sorted(out.taken_over) == sorted(s.key for s in specs) == sorted(out.executed)
    assert [r["status"] for r in out.records] == ["finished", "finished"]
    assert not os.path.exists(tmp_path / "runs" / specs[0].key / artifacts.CLAIM_FILE)


def test_runs_found_invalid_are_reported_and_redone(own_study, tmp_path):
    from restudy.execution.executor import InlineExecutor
    from restudy.spec.studyfile import load_study

    st = load_study(own_study)
    first = restudy.execution.runner.run_study(st, "smoke", tmp_path, executor=InlineExecutor(1))
    victim = tmp_path / "runs" / first.records[0]["key"] / "run.json"
    victim.write_text(victim.read_text()[:50])
    events = []
    again = restudy.execution.runner.run_study(
        st, "smoke", tmp_path, executor=InlineExecutor(1), progress=lambda e, i: events.append((e, i))
    )
    invalid = [i["runs"] for e, i in events if e == "invalid"]
    assert invalid and list(invalid[0]) == [first.records[0]["key"]]
    assert "run.json" in again.invalid[first.records[0]["key"]]
    assert again.executed == [first.records[0]["key"]]
    assert [r["metrics"]["test_acc"] for r in again.records] == [r["metrics"]["test_acc"] for r in first.records]
