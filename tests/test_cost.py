"""Cost planning: the schedule simulation, the calibration of a run, plan.json against the actual
time, and the seeds claims need from pilot runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from restudy.errors import RestudyError
from restudy.estimate import calibrate, cost, pilots, planfile
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides


@pytest.fixture(scope="module")
def smoke_specs():
    st = load_study("enorm")
    return st, plan(st, "smoke")


def test_makespan_places_tasks_in_order_on_the_first_free_slot():
    # Two slots: 4 and 1 start at once; 1 ends first and takes 2, then 3 goes to the slot free at 3.
    wall, busy = cost.makespan([(4.0, "d"), (1.0, "d"), (2.0, "d"), (3.0, "d")], 2, 0.0, {})
    assert wall == pytest.approx(6.0) and busy == pytest.approx(10.0)
    # One slot is the sum; a start and a data load are paid once per slot.
    assert cost.makespan([(1.0, "d"), (2.0, "d")], 1, 0.5, {"d": 0.25})[0] == pytest.approx(3.75)
    wall, busy = cost.makespan([(1.0, "d"), (1.0, "d")], 4, 0.5, {"d": 0.25})
    assert wall == pytest.approx(1.75) and busy == pytest.approx(3.5)  # never more slots than tasks
    # The data set a slot's start already loaded is not loaded again.
    assert cost.makespan([(1.0, "d")], 1, 0.5, {"d": 0.25}, startup_data="d")[0] == pytest.approx(1.5)
    assert cost.makespan([], 3, 1.0, {}) == (0.0, 0.0)


def test_load_clock_is_wall_over_cpu_time():
    import time

    clock = cost.LoadClock()
    assert clock.factor == 1.0
    with clock.section():
        time.sleep(0.05)  # waiting uses no CPU: as if the process got almost none of a core
    assert clock.factor > 1.0
    clock = cost.LoadClock(wall=1.0, cpu=2.0)  # several threads: never below 1
    assert clock.factor == 1.0


def test_tasks_follow_the_executor(smoke_specs):
    _, specs = smoke_specs
    tasks, name = cost.tasks_for(specs, 0, 1, "auto")
    assert name == "inline" and [len(t) for t in tasks] == [1] * len(specs)
    tasks, name = cost.tasks_for(specs, 2, 1, "pool")
    assert name == "LocalExecutor" and sorted(s.key for t in tasks for s in t) == sorted(s.key for s in specs)
    tasks, name = cost.tasks_for(specs[:4], 2, 1, "stacked")  # four seeds of one fc net: stacks
    assert name == "StackedExecutor" and sum(len(t) for t in tasks) == 4 and max(len(t) for t in tasks) > 1


def test_calibration_times_steps_and_evaluation_of_a_real_run(smoke_specs):
    _, specs = smoke_specs
    spec = specs[0]
    c = calibrate.calibrate_single(spec, 1)
    n_train = 0
    from restudy.training.build import load_data

    n_train = int(load_data(spec.settings).x_train.shape[0])
    per_epoch = -(-n_train // spec.settings.values["batch_size"])
    assert c.steps == spec.settings.values["epochs"] * per_epoch and c.epochs == spec.settings.values["epochs"]
    assert c.step_s > 0 and c.eval_s > 0 and c.train_s >= c.steps * c.step_s
    group = [s for s in specs if s.variant == spec.variant][:2]
    if len(group) == 2:
        stacked = calibrate.calibrate_stack(group, 1)
        assert stacked.size == 2 and stacked.step_s > 0 and stacked.steps == c.steps


def test_overhead_comes_from_one_real_run(smoke_specs):
    _, specs = smoke_specs
    c = calibrate.calibrate_single(specs[0], 1)
    o = calibrate.measure_overhead(specs[0], 1, c)
    assert o.note == "" and o.task_s >= 0 and o.run_s > 0 and o.of(3) == pytest.approx(o.task_s + 3 * o.run_s)


def test_ray_needs_its_slots(smoke_specs):
    st, specs = smoke_specs
    with pytest.raises(RestudyError, match="--workers"):
        cost.estimate(st, "smoke", specs, executor="ray")
    with pytest.raises(RestudyError, match="unknown executor"):
        cost.estimate(st, "smoke", specs, executor="slurm")


def test_everything_done_costs_nothing(smoke_specs):
    st, specs = smoke_specs
    est = cost.estimate(st, "smoke", specs, done={s.key for s in specs}, workers=0)
    assert (est.runs, est.done, est.todo, est.tasks, est.wall_s, est.core_hours) == (len(specs), len(specs), 0, 0, 0, 0)
    assert est.gpu_hours == 0 and any("already done" in n for n in est.notes)


def _estimate(**kw):
    base = dict(
        study="s", scale="smoke", runs=2, done=0, todo=2, tasks=2, workers=1, threads=1, executor="local",
        execution="inline", device="cpu", gpus=0, wall_s=10.0, wall_s_now=20.0, load_factor=2.0, busy_s=10.0,
        core_hours=0.0, gpu_hours=0.0, overhead_s=0.0, startup_s=0.0, driver_s=0.0, calibration_s=0.0,
    )  # fmt: skip
    return cost.Estimate(**{**base, **kw})


def _spec(key):
    return SimpleNamespace(key=key)


def test_plan_file_is_compared_with_the_runs_of_this_command_only(tmp_path: Path):
    specs = [_spec("a"), _spec("b")]
    planfile.write_plan(tmp_path, _estimate(), specs, done=set())
    saved = json.loads((tmp_path / planfile.PLAN_FILE).read_text())
    assert saved["todo_keys"] == ["a", "b"] and saved["wall_s"] == 10.0
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="seconds")
    records = [{"key": "a", "started_at": soon}, {"key": "b", "started_at": soon}]
    out = planfile.estimate_vs_actual(tmp_path, ["a", "b"], records, 12.0)
    assert out["ratio"] == pytest.approx(1.2) and out["actual_s"] == 12.0 and out["note"] == ""
    assert out["ratio_at_load"] == pytest.approx(0.6)
    # Another plan (a seed more), no runs made by this command, or only some of them: not compared.
    assert "another plan" in planfile.estimate_vs_actual(tmp_path, ["a", "b", "c"], records, 12.0)["note"]
    assert "ran no runs" in planfile.estimate_vs_actual(tmp_path, ["a", "b"], records, None)["note"]
    assert "1 of the 2" in planfile.estimate_vs_actual(tmp_path, ["a", "b"], records[:1], 12.0)["note"]
    old = [{"key": k, "started_at": "2000-01-01T00:00:00+00:00"} for k in "ab"]
    assert "0 of the 2" in planfile.estimate_vs_actual(tmp_path, ["a", "b"], old, 12.0)["note"]
    assert planfile.estimate_vs_actual(tmp_path / "none", ["a"], [], 1.0) is None
    (tmp_path / planfile.PLAN_FILE).write_text("[1]")
    assert "not one restudy plan wrote" in planfile.estimate_vs_actual(tmp_path, ["a"], [], 1.0)["note"]


def test_claim_power_reports_the_evaluators_counts():
    claims = [
        SimpleNamespace(id="a", verdict="inconclusive", seeds_needed=12, scale_note=""),
        SimpleNamespace(id="b", verdict="inconclusive", seeds_needed=None, scale_note=""),
        SimpleNamespace(id="c", verdict="reproduced", seeds_needed=None, scale_note=""),
        SimpleNamespace(id="d", verdict="not_evaluated", seeds_needed=None, scale_note="smoke checks the pipeline"),
    ]
    rows = {r["claim"]: r for r in pilots.claim_power(SimpleNamespace(claims=claims), 5)}
    assert rows["a"]["seeds_needed"] == 12 and "12 seeds per variant" in rows["a"]["says"]
    assert "power 0.8" in rows["a"]["says"]
    assert "no seed count" in rows["b"]["says"]
    assert rows["c"]["says"] == "settled with 5 seeds (reproduced)"
    assert "smoke checks the pipeline" in rows["d"]["says"]


def test_no_pilot_runs_no_power(tmp_path: Path, smoke_specs):
    st, specs = smoke_specs
    assert pilots.pilot_power(st, "smoke", tmp_path, specs) == ([], 0)


def test_per_experiment_shares_a_mixed_stack_run_by_run():
    a1, a2, b1, c1 = (SimpleNamespace(experiment=e) for e in ("a", "a", "b", "c"))
    rows = {r["experiment"]: r for r in cost.per_experiment([a1, a2, b1, c1], [[a1, a2, b1]], [3.0])}
    want = {"runs": 2, "done": 0, "todo": 2, "tasks": 1, "run_s": 2.0, "stacked_runs": 2, "per_run_s": 1.0}
    assert rows["a"] == {"experiment": "a", **want}
    assert rows["b"]["run_s"] == 1.0 and rows["b"]["tasks"] == 1
    assert rows["c"]["done"] == 1 and rows["c"]["todo"] == 0 and rows["c"]["per_run_s"] is None


def test_runs_that_stop_at_the_fit_are_counted_at_the_epochs_their_pilots_took(tmp_path: Path):
    from restudy import plugins
    from restudy.execution.runner import run_study

    plugins.import_study_module("restudy.studies.rethinking_generalization")
    st = load_study("rethinking-generalization")
    # true labels, a wide MLP and a larger lr: the training set is fit long before epoch 60
    ov = parse_overrides(["epochs=60", "model.width=256", "optimizer.lr=0.1"])
    specs = plan(st, "smoke", experiments=["corruption"], overrides=ov, only={"p": ["0.0"]})
    pilot = [s for s in specs if s.seed_index == 0]
    run_study(st, "smoke", tmp_path, specs=pilot, workers=0)
    took = pilots.fit_epochs(tmp_path, specs)
    assert set(took) == {(s.experiment, s.variant_id) for s in pilot}
    assert all(1 <= e < 60 for e in took.values())
    upper = cost.estimate(st, "smoke", specs, workers=0)
    closer = cost.estimate(st, "smoke", specs, workers=0, fit_epochs=took)
    assert closer.wall_s < upper.wall_s
    assert any("its one group counted at the epochs their pilot runs took" in n for n in closer.notes)
    assert any("upper bound" in n for n in upper.notes)
