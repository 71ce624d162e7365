"""`restudy plan` on a smoke study: what it prints, its JSON, runs already done, and its estimate
against the actual wall time of the run that follows (measured in the same test)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from restudy.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def _plan(*args: str) -> dict:
    r = runner.invoke(app, ["plan", "enorm", "--scale", "smoke", *args], env=WIDE)
    assert r.exit_code == 0, r.output
    return r


def test_plan_then_run_then_plan_again(tmp_path: Path):
    out = tmp_path / "enorm-smoke"
    r = _plan("--workers", "0", "--out", str(out))
    text = " ".join(r.stdout.split())
    assert "24 runs, 0 already done" in text and "24 to run" in text
    assert "Estimated wall time:" in text and "Core-hours:" in text and "GPU-hours: 0.000 (CPU only)" in text
    assert "fc_bias" in text  # one row per experiment
    assert "run a pilot first" in text
    assert (out / "plan.json").is_file()

    # The run that follows: its report sets the estimate beside the actual training time.
    r = runner.invoke(app, ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out)], env=WIDE)
    assert r.exit_code == 0, r.output
    estimate = json.loads((out / "results.json").read_text())["plan"]["estimate"]
    assert estimate["todo"] == 24 and estimate["note"] == ""
    # Smoke runs are tiny (fixed costs dominate), so the band is loose; never an absolute time. The
    # run follows the plan at once, so it is compared with the estimate at the load of that moment.
    assert 0.25 <= estimate["ratio_at_load"] <= 4.0, estimate
    assert estimate["wall_s"] <= estimate["wall_s_now"] and estimate["load_factor"] >= 1
    assert estimate["actual_s"] == json.loads((out / "results.json").read_text())["plan"]["wall_s_total"]
    md = (out / "report.md").read_text()
    assert "Estimated by `restudy plan`" in md and "× the estimate" in md

    # Planned again: every run is done, nothing is left, and the pilots give each claim's status.
    data = json.loads(_plan("--workers", "0", "--out", str(out), "--json").stdout)
    assert {"runs", "wall_s", "core_hours", "gpu_hours", "per_experiment"} <= set(data)
    assert (data["runs"], data["done"], data["todo"], data["wall_s"], data["core_hours"]) == (24, 24, 0, 0, 0)
    assert [e["experiment"] for e in data["per_experiment"]] == ["fc", "fc_bias"]
    assert all(e["done"] == e["runs"] for e in data["per_experiment"])
    assert data["pilot_runs"] == 24 and len(data["claims"]) > 0
    assert all(c["verdict"] == "not_evaluated" and "smoke" in c["says"] for c in data["claims"])


def test_json_schema_and_finished_runs_count_as_done(tmp_path: Path):
    out = tmp_path / "o"
    r = runner.invoke(
        app, ["run", "enorm", "--scale", "smoke", "--seeds", "1", "--workers", "0", "--out", str(out)], env=WIDE
    )
    assert r.exit_code == 0, r.output
    data = json.loads(_plan("--workers", "0", "--out", str(out), "--json").stdout)
    assert data["runs"] == 24 and data["done"] == 12 and data["todo"] == 12  # seed 0 of every variant is done
    assert data["wall_s"] > 0 and data["core_hours"] > 0 and data["gpu_hours"] == 0 and data["device"] == "cpu"
    for e in data["per_experiment"]:
        assert set(e) >= {"experiment", "runs", "done", "todo", "run_s", "per_run_s"}
        assert e["done"] + e["todo"] == e["runs"] and e["run_s"] > 0
    assert json.loads((out / "plan.json").read_text())["todo"] == 12


def test_ray_without_slots_a_bad_mode_and_a_foreign_folder_are_clear_errors(tmp_path: Path):
    r = runner.invoke(app, ["plan", "enorm", "--scale", "smoke", "--execution", "fast", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "auto, stacked, pool" in r.output
    # --executor ray counts the slots of the cluster at --address: where none answers, a clear error
    args = [
        "plan",
        "enorm",
        "--scale",
        "smoke",
        "--executor",
        "ray",
        "--address",
        "127.0.0.1:9",
        "--out",
        str(tmp_path),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "--address" in r.output and "nothing answers" in r.output
    (tmp_path / "invocation.json").write_text(json.dumps({"study": "nondeterminism", "scale": "smoke"}))
    r = runner.invoke(app, ["plan", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "nondeterminism" in r.output


def test_only_plans_the_subset_run_would_run_and_names_the_keys_it_knows(tmp_path: Path):
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    out = tmp_path / "o"
    subset = len(plan(load_study("enorm"), "smoke", only={"experiment": ["fc_bias"]}))
    data = json.loads(_plan("--workers", "0", "--out", str(out), "--json", "--only", "experiment=fc_bias").stdout)
    assert 0 < subset < 24 and (data["runs"], data["todo"]) == (subset, subset)
    assert [e["experiment"] for e in data["per_experiment"]] == ["fc_bias"]
    # the plan file lists the same runs `restudy run --only experiment=fc_bias` makes
    args = ["run", "enorm", "--scale", "smoke", "--workers", "0", "--out", str(out), "--only", "experiment=fc_bias"]
    assert runner.invoke(app, args, env=WIDE).exit_code == 0
    estimate = json.loads((out / "results.json").read_text())["plan"]["estimate"]
    assert estimate["todo"] == subset and estimate["note"] == ""
    r = runner.invoke(app, ["plan", "enorm", "--scale", "smoke", "--only", "arch=fc", "--out", str(tmp_path / "p")])
    assert r.exit_code == 2 and "arch" in r.output and "experiment" in r.output
