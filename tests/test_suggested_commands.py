"""Every command restudy suggests works as printed: for a study file as for a built-in study, from
any folder, with the run's own overrides, subset and output folder (so earlier runs are reused)."""

from __future__ import annotations

import shlex
from pathlib import Path

from typer.testing import CliRunner

from restudy.cli import app
from restudy.cli.session import rerun_of
from restudy.spec.studyfile import run_command, study_argument

runner = CliRunner()


def _invoke(command: str) -> str:
    """Run a printed ``restudy ...`` command line as a shell would split it."""
    args = shlex.split(command)
    assert args[0] == "restudy"
    r = runner.invoke(app, [*args[1:], "--workers", "0"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return r.output


def test_the_reports_commands_name_a_study_file_so_they_work_from_another_folder(tmp_path, study_file, monkeypatch):
    path = study_file()  # tmp_path/study.yaml, a copy of the ENorm study
    monkeypatch.chdir(tmp_path)
    first = _invoke("restudy run study.yaml epochs=1 --scale smoke --only depth=1 --out out")
    assert "ran 12 run(s)" in first
    md = (tmp_path / "out" / "report.md").read_text()
    paper = next(line for line in md.splitlines() if "--scale paper" in line)
    assert str(path.resolve()) in paper and "--only depth=1" in paper  # not the study's id, which names no study
    assert "restudy run enorm" not in md

    # "run with more seeds", as the report builds it, typed in another folder: every run is reused
    again = rerun_of("enorm", str(path.resolve()), tmp_path / "out", ["epochs=1"], ["depth=1"])
    command = run_command(again["study"], "smoke", seeds=2, **{k: again[k] for k in ("out", "overrides", "only")})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert "ran 0 run(s), reused 12" in _invoke(command)
    assert not (elsewhere / "results").exists()  # the same output folder, not a new one here

    # `restudy report` from yet another folder prints the same study file, even though it reads
    # the output folder's copy of the study
    (tmp_path / "out" / "report.md").unlink()
    r = runner.invoke(app, ["report", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert str(path.resolve()) in (tmp_path / "out" / "report.md").read_text()


def test_a_built_in_study_is_named_by_its_id_and_a_moved_file_by_the_output_folders_copy(tmp_path):
    from restudy.spec.studyfile import builtin_studies

    assert study_argument(builtin_studies()["enorm"], "enorm") == "enorm"
    assert study_argument(None, "enorm") == "enorm"
    gone = rerun_of("mine", str(tmp_path / "deleted.yaml"), tmp_path / "out", [], [])
    assert gone["study"] == str((tmp_path / "out" / "study.yaml").resolve())
    spaced = tmp_path / "my studies" / "s.yaml"
    spaced.parent.mkdir()
    spaced.write_text("x")
    arg = study_argument(spaced, "mine")
    assert shlex.split(arg) == [str(spaced.resolve())]  # quoted for a shell
    line = run_command("enorm", "small", seeds=5, overrides=["fc:epochs=3"], out=Path("r"))
    assert shlex.split(line) == [
        "restudy",
        "run",
        "enorm",
        "fc:epochs=3",
        "--scale",
        "small",
        "--seeds",
        "5",
        "--out",
        str(Path("r").resolve()),
    ]


def test_a_folder_named_like_a_built_in_study_does_not_hide_it(tmp_path, monkeypatch):
    from restudy.spec.studyfile import builtin_studies, resolve_study_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "enorm").mkdir()  # e.g. an output folder named after the study
    assert resolve_study_path("enorm") == builtin_studies()["enorm"]
