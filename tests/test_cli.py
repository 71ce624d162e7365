"""The command line: help everywhere, clear errors with exit code 2, list/show/env/schema."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from typer.testing import CliRunner

import restudy.execution.runner
from restudy.cli import app
from restudy.errors import RestudyError

runner = CliRunner()


@pytest.mark.parametrize("cmd", [[], ["list"], ["show"], ["run"], ["report"], ["env"], ["schema"], ["settings"]])
def test_help_on_every_command(cmd):
    r = runner.invoke(app, [*cmd, "--help"])
    assert r.exit_code == 0 and "Usage" in r.output


def test_list_shows_the_builtin_study():
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "enorm" in r.output


def test_show_lists_claims_settings_and_provenance():
    r = runner.invoke(app, ["show", "enorm", "--scale", "small"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for word in ("enorm_beats_baseline_deep", "optimizer.lr", "authors", "assumed", "195"):
        assert word in r.output


def test_show_is_compact_says_what_does_not_run_and_full_shows_everything():
    r = runner.invoke(app, ["show", "nondeterminism", "--scale", "small"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "Runs per experiment and scale" in r.output and "not run" in r.output
    assert "Not run at small scale: c100_init, c100_order, c100_onebit." in r.output
    assert "settings of {" not in r.output and "{}" not in r.output  # no raw Python structures
    assert "eval_batch_size" not in r.output  # restudy's own default: only with --full
    full = runner.invoke(app, ["show", "nondeterminism", "--scale", "small", "--full"], env={"COLUMNS": "200"})
    assert full.exit_code == 0 and "eval_batch_size" in full.output
    assert len(r.output.splitlines()) < len(full.output.splitlines()) / 3


def test_closing_line_gives_the_wall_time_and_the_analysis_share():
    from restudy.cli import closing_line

    line = closing_line(300, 0, 367.0, 305.0, 62.0, "results/x/report.html")
    assert "wall time 6m 07s: training 5m 05s, comparison and report 1m 02s (20% of training)" in line


def test_show_settings_lists_every_declared_setting_with_its_default(monkeypatch):
    from restudy.cli.console import console
    from restudy.spec.settings import DECLARATIONS

    # The console's width is fixed when it is first made (by whichever test ran first): widen it here.
    monkeypatch.setattr(console, "_width", 400)
    r = runner.invoke(app, ["show", "enorm", "--settings"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    for decl in DECLARATIONS:
        assert decl.name in r.output
    for words in (
        "optimizer.momentum",
        "[0, 1)",
        "list[number]",
        "optimizer is sgd",
        "(required)",
        "run_metrics",
        "per-run metrics",
        "a registered model name",
        "resnet14",
        "applies when",
    ):
        assert words in r.output, words
    r = runner.invoke(app, ["settings"], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "optimizer.weight_decay" in r.output


def test_schema_is_json_schema_of_a_study():
    r = runner.invoke(app, ["schema"])
    schema = json.loads(r.output)
    assert schema["title"] == "Study" and "experiments" in schema["properties"]


def test_env_reports_versions_and_threads():
    r = runner.invoke(app, ["env", "--json"])
    env = json.loads(r.output)
    assert {"python", "torch", "numpy", "cpu", "threads", "packages", "fingerprint"} <= set(env)


@pytest.mark.parametrize(
    "args,words",
    [
        (["run", "enorm", "--scale", "huge"], ["--scale", "smoke, small, paper", "huge"]),
        (["run", "enrom"], ["unknown study", "did you mean 'enorm'"]),
        (["run", "enorm", "--scale", "smoke", "optimizer.lr=-1"], ["optimizer.lr", "(0, inf)", "-1"]),
        (["run", "enorm", "--scale", "smoke", "lr"], ["key=value", "lr"]),
        (["run", "enorm", "--scale", "smoke", "--seeds", "0"], ["--seeds"]),
        (
            ["run", "enorm", "--scale", "smoke", "--execution", "inline"],
            ["--execution", "auto, stacked, pool", "inline"],
        ),
        (["run", "enorm", "--scale", "smoke", "--execution", "fast"], ["--execution", "auto, stacked, pool", "fast"]),
        (
            ["run", "enorm", "--scale", "smoke", "optimizer=lamb"],
            ["command line: optimizer=lamb", "unknown optimizer 'lamb'", "adam, adamw, rmsprop, sgd"],
        ),
        (["show", "enorm", "--scale", "huge"], ["--scale", "smoke, small, paper", "huge"]),
        (["run", "missing.yaml"], ["study file not found", "missing.yaml"]),
        (["report", "/nonexistent-dir"], ["not a restudy output directory"]),
    ],
)
def test_bad_values_give_clear_errors_and_exit_2(args, words, tmp_path):
    r = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    for w in words:
        assert w in r.output, r.output
    assert "Traceback" not in r.output


def test_smoke_study_end_to_end_writes_report_and_results(tmp_path):
    out = tmp_path / "enorm-smoke"
    r = runner.invoke(
        app, ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    assert "enorm_beats_baseline_deep" in r.output and "ran 24 run(s)" in r.output
    results = json.loads((out / "results.json").read_text())
    assert list(results)[:7] == ["study", "scale", "dataset", "env", "claims", "cells", "runs"]
    assert results["scale"] == "smoke" and len(results["runs"]) == 24
    assert {c["id"] for c in results["claims"]} >= {
        "enorm_beats_baseline_deep",
        "enorm_bn_is_best",
        "bias_enorm_deep_diverges",
    }
    assert all(
        c["verdict"] in ("reproduced", "not_reproduced", "inconclusive", "not_evaluated") for c in results["claims"]
    )
    for run in results["runs"]:
        assert run["status"] == "finished" and 0 <= run["test_acc"] <= 100 and run["wall_s"] > 0
    md = (out / "report.md").read_text()
    assert "smoke" in md and "synthetic" in md  # says which scale and data produced the numbers
    assert "**assumed**" in md or "assumed" in md
    assert "Initial learning rates" in md  # the authors' lr grid, as reported
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="http' not in html and "<link" not in html
    assert list((out / "figures").glob("*.png"))

    # Resuming reuses every run; `restudy report` rebuilds the same verdicts from the store.
    again = runner.invoke(
        app, ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert again.exit_code == 0 and "ran 0 run(s), reused 24" in again.output
    (out / "results.json").unlink()
    rep = runner.invoke(app, ["report", str(out)], env={"COLUMNS": "200"})
    assert rep.exit_code == 0, rep.output
    rebuilt = json.loads((out / "results.json").read_text())
    assert [(c["id"], c["verdict"]) for c in rebuilt["claims"]] == [(c["id"], c["verdict"]) for c in results["claims"]]


def test_paper_scale_without_cifar_is_one_clear_error_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTUDY_DATA", str(tmp_path / "no-data-here"))
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", "enorm", "--scale", "paper", "--out", str(out)], env={"COLUMNS": "200"})
    assert r.exit_code == 2, r.output
    assert "DataError" in r.output and "data_batch_1.bin" in r.output and "download" in r.output
    assert not list((out / "runs").glob("*/run.json"))


# --- output folders, invocation files and study paths that are not what they should be -------------


def _refused(args: list[str], *words: str) -> str:
    r = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    text = " ".join(r.output.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())  # the panel wraps long lines
    for w in words:
        assert w in text, (w, r.output)
    return text


def test_out_naming_a_file_or_an_impossible_folder_is_refused(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    _refused(["run", "enorm", "--scale", "smoke", "--out", str(a_file)], "names a file, not a folder")
    _refused(["run", "enorm", "--scale", "smoke", "--out", "/proc/x"], "cannot create the output folder", "/proc/x")


@pytest.mark.skipif(os.geteuid() == 0, reason="the superuser writes to read-only folders")
def test_a_read_only_out_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _refused(["run", "enorm", "--scale", "smoke", "--out", str(ro)], "not writable")
    finally:
        ro.chmod(0o755)


def test_a_folder_given_as_the_study_says_so(tmp_path):
    (tmp_path / "study.yaml").write_text("id: x\n")
    _refused(["run", str(tmp_path)], "a folder, not a study file", "study.yaml")
    _refused(["show", str(tmp_path)], "a folder, not a study file")


def test_another_study_or_scale_into_the_same_out_is_refused_unless_fresh(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "invocation.json").write_text(json.dumps({"study": "enorm", "scale": "small", "overrides": []}))
    _refused(["run", "enorm", "--scale", "smoke", "--out", str(out)], "study 'enorm' at scale 'small'", "--fresh")
    (out / "invocation.json").write_text(json.dumps({"study": "nondeterminism", "scale": "smoke"}))
    _refused(["run", "enorm", "--scale", "smoke", "--out", str(out)], "study 'nondeterminism'", "--fresh")
    (out / "invocation.json").write_text("[1, 2]")
    _refused(["run", "enorm", "--scale", "smoke", "--out", str(out)], "invocation.json", "--fresh")
    # --fresh starts over here: the folder is accepted and the runs start
    started = []

    def run_study(*args, **kwargs):
        started.append(kwargs["fresh"])
        raise RestudyError("stopped here by the test")

    monkeypatch.setattr(restudy.execution.runner, "run_study", run_study)
    r = runner.invoke(app, ["run", "enorm", "--scale", "smoke", "--out", str(out), "--fresh"])
    assert r.exit_code == 2 and "stopped here by the test" in r.output and started == [True], r.output
    assert json.loads((out / "invocation.json").read_text())["scale"] == "smoke"  # the folder is now this study's


@pytest.mark.parametrize(
    "content, words",
    [
        ("[1, 2]", ["invocation.json is not what restudy writes", "list"]),
        ('{"study": "enorm"}', ["invocation.json is not what restudy writes"]),
        ('{"study": "enorm", "scale": "smoke", "overrides": "x"}', ["'overrides' must be a list"]),
        ("{not json", ["not valid JSON"]),
    ],
)
def test_report_on_a_damaged_invocation_file_is_a_clear_error(tmp_path, content, words):
    (tmp_path / "invocation.json").write_text(content)
    _refused(["report", str(tmp_path)], *words)


def test_report_lists_invalid_runs_and_run_redoes_them(tmp_path):
    out = tmp_path / "out"
    args = ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    runs = sorted(p.parent for p in (out / "runs").glob("*/run.json"))
    no_spec = json.loads((runs[0] / "run.json").read_text())
    del no_spec["spec"]
    (runs[0] / "run.json").write_text(json.dumps(no_spec))
    (runs[1] / "run.json").write_text("[]")
    shutil.copyfile(runs[3] / "test_logits.safetensors", runs[2] / "test_logits.safetensors")
    rep = runner.invoke(app, ["report", str(out)], env={"COLUMNS": "300"})
    assert rep.exit_code == 0, rep.output
    assert "3 stored run(s) are invalid and not used" in rep.output
    for d in runs[:3]:
        assert d.name in rep.output
    assert "21 of 24 runs" in rep.output
    again = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert again.exit_code == 0, again.output
    assert "3 stored run(s) are invalid and will be redone" in again.output
    assert "ran 3 run(s), reused 21" in again.output


def test_report_on_runs_another_version_planned_says_so_and_how_to_make_them(tmp_path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out)]).exit_code == 0
    inv = json.loads((out / "invocation.json").read_text())
    (out / "invocation.json").write_text(json.dumps({**inv, "overrides": ["epochs=1"]}))  # other keys now
    rep = runner.invoke(app, ["report", str(out)], env={"COLUMNS": "300"})
    assert rep.exit_code == 2
    assert "none of the 24 stored runs is one this version of the study plans" in rep.output
    assert "restudy run enorm epochs=1 --scale smoke --out" in rep.output  # the command that makes them, as is
