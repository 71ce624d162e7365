"""Executors: every run yields a record; a run that fails, or whose worker dies, becomes a 'failed'
record and the others still finish."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from restudy.errors import RestudyError
from restudy.execution.executor import InlineExecutor, LocalExecutor, StackedExecutor, choose_executor
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study
from restudy.storage import artifacts
from restudy.storage.safeio import read_json

CRASHING_MODULE = '''"""A study module whose model kills its worker process."""
import os

from restudy.plugins import register


@register("model", "crash")
def crash(**kwargs):
    os._exit(3)
'''


@pytest.fixture(scope="module")
def spec():
    return plan(load_study("enorm"), "smoke")[0]


def _variant(spec, key: str, **settings):
    return dataclasses.replace(spec, key=key, settings=spec.settings.with_values(settings, "test"))


def _run(executor, specs, out: Path) -> dict[str, dict]:
    dirs = [artifacts.run_dir(out, s.key) for s in specs]
    return {r["key"]: r for r in executor.run(specs, dirs)}


def test_a_failing_run_does_not_stop_the_others(spec, tmp_path: Path):
    specs = [_variant(spec, "bad", model="nope"), spec]
    records = _run(InlineExecutor(1), specs, tmp_path)
    assert list(records) == ["bad", spec.key]
    assert records["bad"]["status"] == "failed" and "unknown model 'nope'" in records["bad"]["reason"]
    assert records[spec.key]["status"] == "finished"
    for key, rec in records.items():  # the record is on disk too: resume and reports read it
        assert read_json(artifacts.run_dir(tmp_path, key) / artifacts.RUN_FILE) == rec


def test_a_worker_killed_mid_run_becomes_a_failed_record(spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "crashing_study.py").write_text(CRASHING_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    crash = dataclasses.replace(_variant(spec, "crash", model="crash"), study_module="crashing_study")
    records = _run(LocalExecutor(workers=1), [spec, crash], tmp_path / "out")
    assert records[spec.key]["status"] == "finished"
    assert records["crash"]["status"] == "failed" and "worker process died" in records["crash"]["reason"]


def test_choose_executor(spec):
    assert isinstance(choose_executor([spec], "inline"), InlineExecutor)
    assert type(choose_executor([spec], "pool", workers=2)) is LocalExecutor
    assert isinstance(choose_executor([spec], "stacked"), StackedExecutor)
    assert type(choose_executor([spec], "auto")) is LocalExecutor  # one run: nothing to stack
    with pytest.raises(RestudyError) as info:
        choose_executor([spec], "threads")
    assert "got: 'threads'" in str(info.value) and "inline" in str(info.value)
    with pytest.raises(RestudyError, match="at least 1"):
        StackedExecutor(max_stack=0)


@pytest.mark.parametrize("make", [lambda: InlineExecutor(1), lambda: LocalExecutor(workers=1)], ids=["inline", "pool"])
def test_once_stop_is_set_no_more_runs_start_and_started_ones_finish(spec, tmp_path: Path, make):
    import threading

    specs = [_variant(spec, f"k{i}", epochs=10) for i in range(10)]
    stop = threading.Event()
    records = []
    executor = make()
    for rec in executor.run(specs, [artifacts.run_dir(tmp_path, s.key) for s in specs], stop=stop):
        records.append(rec)
        stop.set()  # as a first Ctrl-C does
    if isinstance(executor, InlineExecutor):
        assert len(records) == 1
    else:  # the runs a worker had started or taken from the pool's queue finish
        assert 1 <= len(records) < len(specs), [r["key"] for r in records]
    assert all(r["status"] == "finished" for r in records)
    ran = {p.parent.name for p in tmp_path.glob("runs/*/run.json")}
    assert ran == {r["key"] for r in records}
