"""The guide (docs/writing-a-study.md) and its worked example (docs/examples/batchnorm/) stay true:
the example study loads and plans at every scale, runs end to end at smoke scale, marks every value
it does not take from the paper with a reason, and every `restudy` command the guide shows parses,
naming study files that exist."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from restudy import api
from restudy.cli import app

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-study.md"
EXAMPLE = ROOT / "docs" / "examples" / "batchnorm"
STUDY = EXAMPLE / "study.yaml"
CLAIMS = {
    "bn_higher_test_accuracy",
    "bn_trains_faster",
    "plain_diverges_at_high_lr",
    "bn_trains_at_high_lr",
    "bn_high_lr_fewer_steps",
    "bn_same_lr_fewer_steps",
    "bn_high_lr_higher_final",
}
runner = CliRunner()


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch):
    """The example's module importable as a study run imports it; its registrations undone after."""
    monkeypatch.setattr(sys, "path", [str(EXAMPLE), *sys.path])
    monkeypatch.delitem(sys.modules, "batchnorm_parts", raising=False)
    with api.scoped_registrations():
        yield STUDY
    sys.modules.pop("batchnorm_parts", None)


def _guide_commands() -> list[str]:
    """Every line of a ```bash block of the guide that starts with `restudy `."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip().startswith("restudy ")]


@pytest.mark.parametrize("scale,runs", [("smoke", 12), ("small", 84), ("paper", 120)])
def test_the_example_plans_at_every_scale(example: Path, scale: str, runs: int):
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    study = load_study(example)
    assert {c.id for c in study.claims} == CLAIMS
    planned = plan(study, scale)
    assert len(planned) == runs
    assert {r.experiment for r in planned} == {"mlp_sigmoid", "relu_lr"}


def test_the_examples_own_model_follows_the_paper(example: Path):
    """§4.1's network: 3 sigmoid layers of 100; with BN, BatchNorm before each sigmoid and no bias."""
    import batchnorm_parts  # noqa: F401  (registers on import)
    import torch
    from torch import nn

    plain = api.create("model", "sigmoid_mlp", input_shape=(1, 8, 8), num_classes=10)
    bn = api.create("model", "sigmoid_mlp", input_shape=(1, 8, 8), num_classes=10, norm="bn")
    assert sum(isinstance(m, nn.Sigmoid) for m in plain.modules()) == 3
    assert [type(m).__name__ for m in bn][1:4] == ["Linear", "BatchNorm1d", "Sigmoid"]
    assert all(m.bias is None for m in list(bn)[:-1] if isinstance(m, nn.Linear))
    assert plain(torch.zeros(4, 1, 8, 8)).shape == (4, 10)
    with pytest.raises(ValueError, match="norm"):
        api.create("model", "sigmoid_mlp", input_shape=(64,), num_classes=10, norm="ln")


def test_every_value_not_from_the_paper_says_why():
    """The guide's rule: `assumed` and `calibrated` values carry a source, and so does every claim."""
    data = yaml.safe_load(STUDY.read_text())
    hypers = list(data["defaults"].items())
    for e in data["experiments"]:
        hypers += list(e.get("settings", {}).items()) + list(e.get("axes", {}).items())
    assert hypers
    for name, h in hypers:
        assert isinstance(h, dict) and h.get("provenance") and h.get("source", "").strip(), name
    calibrated = [name for name, h in hypers if h["provenance"] == "calibrated"]
    assert sorted(calibrated) == ["model.init_std", "optimizer.lr"]
    for c in data["claims"]:
        assert c["provenance"] == "paper" and '"' in c["source"], c["id"]  # each quotes its sentence
    tested = {cid for entry in data["coverage"] for cid in entry.get("tested_by", [])}
    assert tested == CLAIMS  # every claim answers a sentence of the paper
    assert any("Figure 3" in entry["where"] and entry.get("untested") for entry in data["coverage"])
    for scale in ("small", "paper"):
        assert len(data["scales"][scale]["deviations"]) >= 3


def test_the_example_runs_at_smoke_scale_from_another_folder(example: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    args = ["run", str(example), "--scale", "smoke", "--workers", "0", "--out", str(out)]
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert len(runs) == 12 and not [x for x in runs if x["status"] == "failed"]
    sigmoid = [x for x in runs if x["experiment"] == "mlp_sigmoid"]
    assert len(sigmoid) == 4 and all(x["status"] == "finished" for x in sigmoid)
    claims = {c["id"]: c["verdict"] for c in results["claims"]}
    assert claims == dict.fromkeys(CLAIMS, "not_evaluated")  # smoke checks the pipeline only
    md = (out / "report.md").read_text()
    assert "What the documents claim" in md and "sigmoid MLP" in md
    assert "MNIST" in md  # the deviations are in the report


def test_the_guides_verdict_table_names_the_examples_claims():
    text = GUIDE.read_text()
    rows = re.findall(r"^\| `(\w+)` .*?\| (reproduced|not reproduced|inconclusive) \|", text, flags=re.M)
    assert {cid for cid, _ in rows} == CLAIMS


def test_every_restudy_command_the_guide_shows_parses_and_names_files_that_exist():
    commands = _guide_commands()
    assert any(c.startswith("restudy new ") for c in commands)
    assert any(c.startswith("restudy run docs/examples/batchnorm/study.yaml") for c in commands)
    created = {shlex.split(c)[2] for c in commands if c.startswith("restudy new ")}  # folders `restudy new` writes
    for command in commands:
        args = shlex.split(command)
        r = runner.invoke(app, [*args[1:], "--help"], env={"COLUMNS": "200"})
        assert r.exit_code == 0, f"{command}: {r.output}"  # an unknown option or command fails here
        for arg in args[2:]:
            if arg.endswith(".yaml") and arg.split("/")[0] not in created:
                assert (ROOT / arg).is_file(), f"{command}: {arg} does not exist"


def test_the_guides_first_steps_work_as_written(tmp_path: Path, monkeypatch):
    """`restudy new my-paper`, then its smoke run, in an empty folder, as the guide says."""
    monkeypatch.chdir(tmp_path)
    first = [c for c in _guide_commands() if "my-paper" in c]
    assert first == ["restudy new my-paper", "restudy run my-paper/study.yaml --scale smoke"]
    monkeypatch.setattr(sys, "path", [str(tmp_path / "my-paper"), *sys.path])
    with api.scoped_registrations():
        for command in first:
            extra = ["--workers", "0"] if " run " in f" {command} " else []
            r = runner.invoke(app, [*shlex.split(command)[1:], *extra], env={"COLUMNS": "200"})
            assert r.exit_code == 0, f"{command}: {r.output}"
    sys.modules.pop("my_paper_parts", None)
    assert (tmp_path / "results" / "my-paper-smoke" / "report.html").is_file()
