"""Runs that feed runs: an experiment whose runs start from another run's weights (fine-tuning) or
learn from its outputs (distillation). The dependency is planned (the reader's key holds the read
run's), runs in order, resumes, and a failed input run fails its readers, not the study."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from restudy import plugins
from restudy.errors import StudyError
from restudy.execution.runner import input_waves, run_study
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.training.loop import distillation_loss


def _h(value: Any) -> dict[str, Any]:
    return {"value": value, "provenance": "assumed"}


def _study(tmp_path: Path, change=None) -> Path:
    d: dict[str, Any] = {
        "id": "feed",
        "title": "Runs that feed runs",
        "paper": {"title": "A test"},
        "documents": [{"id": "paper", "kind": "original", "title": "A test"}],
        "defaults": {
            "data": _h("synthetic"),
            "data.n_train": _h(256),
            "data.n_test": _h(128),
            "data.dim": _h(10),
            "data.num_classes": _h(3),
            "model": _h("fc"),
            "model.width": _h(32),
            "optimizer.lr": _h(0.1),
            "epochs": _h(2),
            "batch_size": _h(64),
        },
        "experiments": [
            {"id": "student", "settings": {"model.width": _h(8)}, "seeds": 2,
             "input_run": {"experiment": "teacher", "take": "outputs"}},
            {"id": "teacher", "axes": {"width": {"path": "model.width", "values": [64, 16]}}, "seeds": 2},
            {"id": "finetune", "settings": {"optimizer.lr": _h(1e-9), "epochs": _h(1), "model.width": _h(64)},
             "seeds": 2, "input_run": {"experiment": "teacher", "where": {"width": 64}, "take": "weights"}},
        ],
    }  # fmt: skip
    d["experiments"][0]["input_run"]["where"] = {"width": 64}
    if change:
        change(d)
    path = tmp_path / "feed.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


def test_a_reader_is_planned_after_the_run_it_reads_and_keyed_by_it(tmp_path):
    specs = plan(load_study(_study(tmp_path)), "smoke")
    by = {(s.experiment, s.variant.get("width"), s.seed_index): s for s in specs}
    teacher0 = by[("teacher", "64", 0)]
    assert teacher0.settings.values["save_weights"] is True  # kept for its readers
    assert "reads these runs' weights" in teacher0.settings.provenance["save_weights"]["source"]
    assert not by[("teacher", "16", 0)].input_run
    student1 = by[("student", None, 1)]
    assert student1.input_run["key"] == by[("teacher", "64", 1)].key  # the same seed index
    assert student1.settings.values["input_run.take"] == "outputs"
    assert student1.settings.values["distill.alpha"] == 0.5  # applies, so listed with its provenance
    assert "distill.alpha" not in teacher0.settings.values
    assert [s.experiment for s in input_waves(specs)[0]] == ["teacher"] * 4
    # a changed teacher gives its readers new keys; a teacher nobody reads keeps its key
    again = plan(load_study(_study(tmp_path)), "smoke", overrides=parse_overrides(["teacher:optimizer.lr=0.05"]))
    moved = {(s.experiment, s.seed_index): s.key for s in again}
    assert moved[("student", 1)] != student1.key and moved[("finetune", 0)] != by[("finetune", None, 0)].key
    # --only on the readers plans the runs they read too
    only = plan(load_study(_study(tmp_path)), "smoke", only={"experiment": ["student"]})
    assert sorted({(s.experiment, s.variant.get("width")) for s in only}) == [("student", None), ("teacher", "64")]


def test_readers_train_from_their_input_runs_and_resume(tmp_path, monkeypatch):
    import restudy.training.loop as loop

    calls = []
    real = loop.distillation_loss
    monkeypatch.setattr(loop, "distillation_loss", lambda *a, **k: calls.append(a[3:5]) or real(*a, **k))
    study = load_study(_study(tmp_path))
    out = tmp_path / "out"
    first = run_study(study, "smoke", out, workers=0)
    # the 2 students distilled at every step (4 steps x 2 epochs), at the declared temperature and alpha
    assert len(calls) == 2 * 4 * 2 and set(calls) == {(1.0, 0.5)}
    recs = {
        (r["spec"]["experiment"], r["spec"]["variant"].get("width"), r["spec"]["seed_index"]): r for r in first.records
    }
    assert {r["status"] for r in first.records} == {"finished"}
    teacher = recs[("teacher", "64", 0)]
    tuned = recs[("finetune", None, 0)]
    # fine-tuning at lr 1e-9 for one epoch keeps the teacher's weights: its test accuracy
    assert tuned["env"]["input_run"]["key"] == teacher["key"] and tuned["env"]["input_run"]["take"] == "weights"
    assert abs(tuned["metrics"]["test_acc"] - teacher["metrics"]["test_acc"]) <= 100 / 128
    student = recs[("student", None, 0)]
    assert student["env"]["input_run"]["test_acc"] == teacher["metrics"]["test_acc"]
    # resuming redoes nothing
    second = run_study(study, "smoke", out, workers=0)
    assert second.executed == []


def test_a_failed_input_run_fails_its_readers_and_the_study_goes_on(tmp_path):
    with plugins.scoped():

        @plugins.register("model", "breaks")
        def breaks(input_shape, num_classes, width: int = 8):
            """A model whose forward fails.

            Args:
                width: ignored.
            """

            class Broken(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.w = torch.nn.Parameter(torch.zeros(1))

                def forward(self, x):
                    raise ValueError("this model cannot run")

            return Broken()

        def broken_teacher(d):
            d["experiments"][1]["settings"] = {"model": _h("breaks")}
            d["experiments"].pop(2)  # the fine-tuning needs the fc teacher's architecture

        out = tmp_path / "out"
        result = run_study(load_study(_study(tmp_path, broken_teacher)), "smoke", out, workers=0, check_parts=False)
    status = {(r["spec"]["experiment"], r["spec"]["seed_index"]): r for r in result.records}
    assert status[("teacher", 0)]["status"] == "failed"
    student = status[("student", 0)]
    assert student["status"] == "failed" and "the run it reads (input_run) ended 'failed'" in student["reason"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["experiments"][1].update(input_run={"experiment": "student", "take": "weights"}), "cycle"),
        (lambda d: d["experiments"][0]["input_run"].update(experiment="nope"), "unknown experiment"),
        (lambda d: d["experiments"][0]["input_run"].update(where={"width": 3}), "no such level"),
        (lambda d: d["experiments"][0]["input_run"].update(where={}), "must select one variant"),
        (lambda d: d["defaults"].update({"input_run.take": _h("weights")}), "not by hand"),
        (lambda d: d["experiments"][1].update(seeds=1), "give it at least as many seeds"),
    ],
)
def test_an_input_run_that_cannot_be_read_is_a_clear_error(tmp_path, change, words):
    with pytest.raises(StudyError) as err:
        plan(load_study(_study(tmp_path, change)), "smoke")
    assert words in str(err.value)


def test_the_distillation_loss_is_hintons():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    y = torch.randint(0, 4, (5,), generator=g)
    ce = torch.nn.functional.cross_entropy(s, y)
    assert torch.allclose(distillation_loss(s, y, t, 3.0, 0.0), ce)
    p, logq = torch.softmax(t / 3.0, 1), torch.log_softmax(s / 3.0, 1)
    kl = (p * (p.log() - logq)).sum(1).mean()
    assert torch.allclose(distillation_loss(s, y, t, 3.0, 1.0), 9.0 * kl)
    assert torch.allclose(distillation_loss(s, y, t, 3.0, 0.25), 0.75 * ce + 0.25 * 9.0 * kl)
    assert math.isclose(float(distillation_loss(t, y, t, 2.0, 1.0)), 0.0, abs_tol=1e-6)  # a perfect student
