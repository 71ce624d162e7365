"""The public API a study's own code imports (``restudy.api``): the example ``restudy new`` writes, one
part of every plug-in kind, registers and runs as written, and each part does what it says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from restudy import api, plugins
from restudy.cli import app


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The study ``restudy new mystudy`` writes, in its folder; registrations undone after."""
    r = CliRunner().invoke(app, ["new", "mystudy", "--dir", str(tmp_path / "mystudy")])
    assert r.exit_code == 0, r.output
    folder = tmp_path / "mystudy"
    assert sorted(p.name for p in folder.iterdir()) == ["mystudy_parts.py", "study.yaml"]
    monkeypatch.setattr(sys, "path", [str(folder), *sys.path])
    monkeypatch.delitem(sys.modules, "mystudy_parts", raising=False)
    with api.scoped_registrations():
        yield folder
    sys.modules.pop("mystudy_parts", None)


def test_the_new_studys_module_registers_one_part_of_every_kind(example: Path):
    import mystudy_parts  # noqa: F401  (registers on import)

    ours = {
        kind: [n for n in api.registered(kind) if plugins.get(kind, n).__module__ == "mystudy_parts"]
        for kind in api.KINDS
    }
    assert all(ours[kind] for kind in api.KINDS), {k: v for k, v in ours.items() if not v}
    data = api.create("dataset", "two_blobs", n_train=64, n_test=32)
    assert data.input_shape == (8,) and data.num_classes == 2
    flipped = api.create("transform", "flip_labels", data=data, generator=torch.Generator().manual_seed(0), p=1.0)
    assert torch.equal(flipped.y_train, 1 - data.y_train) and torch.equal(flipped.y_test, data.y_test)
    model = api.create("model", "linear", input_shape=(8,), num_classes=2)
    hook = api.create("method", "max_norm", model=model, optimizer=None, limit=0.01)
    hook.step()
    assert max(float(w.detach().abs().max()) for w in model.parameters()) <= 0.01
    schedule = api.create("schedule", "halving", lr=0.4, epochs=6, steps_per_epoch=3)
    assert [schedule(0, e) for e in range(5)] == [0.4, 0.4, 0.2, 0.2, 0.1]
    assert plugins.get("view", "snapshot")("2") == "snapshot_2"


def test_the_new_study_runs_at_smoke_scale_at_once(example: Path):
    out = example / "out"
    r = CliRunner().invoke(
        app, ["run", str(example / "study.yaml"), "--scale", "smoke", "--workers", "0", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert len(runs) == 4 and {run["status"] for run in runs} == {"finished"}  # 2 weight limits x 2 seeds
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")]
    assert all(rec["metrics"]["weight_norm"] > 0 for rec in records)  # the run metric ran
    assert all("train labels flipped" in rec["env"]["dataset"] for rec in records)  # the transform ran
    claims = {c["id"]: c for c in results["claims"]}
    assert set(claims) == {"learns", "loose_limit_helps", "small_weights"}
    assert {c["verdict"] for c in claims.values()} == {"not_evaluated"}  # smoke gives no verdict
    md = (out / "report.md").read_text()
    assert "What the documents claim" in md and "Test accuracy of the classifier" in md  # coverage, table


def test_new_refuses_a_folder_with_files_and_copies_a_built_in_study(tmp_path: Path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(app, ["new", "taken", "--dir", str(tmp_path / "taken")])
    assert r.exit_code == 2 and "not empty" in r.output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]  # nothing lost
    bad = CliRunner().invoke(app, ["new", "My Study", "--dir", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "lower-case" in bad.output
    r = CliRunner().invoke(app, ["new", "my-enorm", "--from", "enorm", "--dir", str(tmp_path / "mine")])
    assert r.exit_code == 0, r.output
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    copy = load_study(tmp_path / "mine" / "study.yaml")
    assert copy.id == "my-enorm" and len(plan(copy, "smoke")) == len(plan(load_study("enorm"), "smoke"))


def test_the_example_claim_kind_decides_by_its_sign_test(example: Path):
    """The example kind on constructed runs: 5 of 5 seeds above the value is reproduced at α = 0.05
    (p = 1/32); 3 of 5 is not decided either way."""
    import mystudy_parts  # noqa: F401

    from restudy.spec.studyfile import load_study

    study = load_study(example / "study.yaml")
    claim = next(c for c in study.claims if c.id == "learns")

    def ctx(accuracies):
        rows = [
            {"key": f"k{i}", "experiment": "main", "variant": {}, "variant_id": "-", "seed_index": i,
             "status": "finished", "metrics": {"test_acc": a}, "scale": "small"}
            for i, a in enumerate(accuracies)
        ]  # fmt: skip
        return api.EvaluationContext(study, "small", "two blobs", rows)

    kind = api.claim_kind("most_seeds_above")
    assert kind.evaluate(claim, ctx([60, 70, 80, 65, 55])).verdict == api.REPRODUCED
    assert kind.evaluate(claim, ctx([60, 40, 80, 45, 55])).verdict == api.INCONCLUSIVE
    assert kind.evaluate(claim, ctx([10, 20, 30, 40, 45])).verdict == api.NOT_REPRODUCED
