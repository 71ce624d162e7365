"""Building a run from its spec: the parts are what the settings and seed streams say, and plug-ins
(augmentations, per-run metrics) registered by name are used."""

from __future__ import annotations

import math

import pytest
import torch

from restudy.errors import RestudyError
from restudy.execution.stacked import stackable
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import RunSpec, plan
from restudy.planning.seeding import generator
from restudy.plugins import register
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.safeio import load_tensors
from restudy.training.batches import make_augment, random_flip
from restudy.training.build import build_run, load_data, optimizer_and_schedule


def _spec(
    *overrides: str, experiment: str = "fc", method: str = "baseline", depth: str = "1", seed_index: int = 0
) -> RunSpec:
    specs = plan(load_study("enorm"), "smoke", seeds=2, overrides=parse_overrides(list(overrides)))
    return next(
        s
        for s in specs
        if s.experiment == experiment and s.variant == {"method": method, "depth": depth} and s.seed_index == seed_index
    )


def _with(spec: RunSpec, **settings) -> RunSpec:
    """``spec`` with settings changed directly (e.g. names only registered by this test module)."""
    d = spec.to_dict()
    d["settings"] = {**d["settings"], **settings}
    return RunSpec.from_dict(d)


def test_optimizer_schedule_and_steps_follow_the_settings():
    spec = _spec("optimizer.momentum=0.9", "optimizer.weight_decay=0.001")
    s, data = spec.settings.values, load_data(spec.settings)
    parts = build_run(spec, data)
    assert isinstance(parts.optimizer, torch.optim.SGD)
    (group,) = parts.optimizer.param_groups
    assert group["momentum"] == 0.9 and group["weight_decay"] == 0.001
    assert group["lr"] == s["optimizer.lr"]  # the linear schedule's lr at step 0
    assert parts.steps_per_epoch == math.ceil(data.x_train.shape[0] / s["batch_size"])
    e = s["epochs"]
    assert [parts.schedule(0, k) for k in range(e)] == [s["optimizer.lr"] * (e - k) / e for k in range(e)]
    assert [id(p) for p in group["params"]] == [id(p) for p in parts.model.parameters()]
    assert parts.hooks == [] and parts.snapshot_epochs == [] and parts.tta.strategies == ()


def test_the_optimizer_starts_at_the_schedules_first_lr():
    spec = _spec("schedule=cosine", "schedule.warmup_epochs=1")
    parts = build_run(spec, load_data(spec.settings))
    assert parts.optimizer.param_groups[0]["lr"] == 0.0 == parts.schedule(0, 0)  # warmup starts at 0
    adam = _spec("optimizer=adam", "optimizer.lr=0.003")
    parts = build_run(adam, load_data(adam.settings))
    assert isinstance(parts.optimizer, torch.optim.Adam) and parts.optimizer.param_groups[0]["lr"] == 0.003


def test_bias_and_batchnorm_groups_get_their_lr_multiple():
    spec = _spec("optimizer.lr_mult_bias_bn=0.5", experiment="fc_bias")
    parts = build_run(spec, load_data(spec.settings))
    groups = parts.optimizer.param_groups
    assert [g["lr_mult"] for g in groups] == [0.5, 1.0]
    lr = spec.settings.values["optimizer.lr"]
    assert [g["lr"] for g in groups] == [0.5 * lr, lr]
    names = {id(p): n for n, p in parts.model.named_parameters()}
    assert all("bias" in names[id(p)] for p in groups[0]["params"])
    assert all("weight" in names[id(p)] for p in groups[1]["params"])
    assert not stackable(spec, (20,), 4)


def test_generators_come_from_the_specs_streams():
    spec = _spec("data=digits", "augment=flip")
    parts = build_run(spec, load_data(spec.settings))
    n = 50
    assert torch.equal(
        torch.randperm(n, generator=parts.order), torch.randperm(n, generator=generator(spec.seeds["order"]))
    )
    x = torch.randn(8, 1, 8, 8)
    assert torch.equal(parts.augment(x), random_flip(x, generator(spec.seeds["augment"])))
    assert build_run(_spec("data=digits"), load_data(spec.settings)).augment is None


def test_same_spec_twice_gives_identical_initial_weights():
    spec = _spec(depth="9")
    data = load_data(spec.settings)
    a, b = build_run(spec, data).model, build_run(spec, data).model
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    other = build_run(_spec(depth="9", seed_index=1), data).model
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), other.parameters()))


def test_one_ulp_perturbation_is_applied_and_recorded():
    spec = next(s for s in plan(load_study("nondeterminism"), "smoke") if s.experiment == "onebit")
    data = load_data(spec.settings)
    parts = build_run(spec, data)
    plain = build_run(_with(spec, perturb="none"), data)
    assert parts.perturbation is not None and plain.perturbation is None
    diffs = sum(int((p != q).sum()) for p, q in zip(parts.model.parameters(), plain.model.parameters()))
    assert diffs == 1


def test_optimizer_and_schedule_serve_any_model():
    spec = _spec()
    model = torch.nn.Linear(3, 2)
    optimizer, schedule = optimizer_and_schedule(model, spec.settings, 7)
    assert optimizer.param_groups[0]["lr"] == schedule(0, 0) == spec.settings.values["optimizer.lr"]


# --------------------------------------------------------------------------- plug-ins


CALLS = {"augment": 0}


@register("augment", "test_negate")
def _negate(generator: torch.Generator, pad: int):
    def augment(x: torch.Tensor) -> torch.Tensor:
        CALLS["augment"] += 1
        return -x

    return augment


@register("run_metric", "test_weight_stats")
def _weight_stats(model, x_train, y_train, x_test, y_test, settings) -> dict[str, float]:
    params = list(model.parameters())
    return {
        "n_params": float(sum(p.numel() for p in params)),
        "n_test_seen": float(x_test.shape[0]),
        "width_setting": float(settings["model.width"]),
    }


@register("run_metric", "test_logits_seen")
def _logits_seen(*, test_logits, y_test, **_) -> dict[str, float]:
    CALLS["logits"] = test_logits.clone()
    return {"logits_rows": float(test_logits.shape[0]), "labels_rows": float(y_test.shape[0])}


@register("run_metric", "test_bad")
def _bad(**_):
    return {"x": "not a number"}


def test_an_augmentation_registered_by_a_module_is_used(tmp_path):
    g = generator(0)
    assert make_augment("test_negate", g, 0)(torch.ones(2)).tolist() == [-1.0, -1.0]
    with pytest.raises(RestudyError, match="unknown augment") as err:
        make_augment("flipp", g, 0)
    assert "flip" in str(err.value)
    spec = _with(_spec("epochs=1"), augment="test_negate")
    before = CALLS["augment"]
    rec = execute(spec.to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    steps = math.ceil(rec["metrics"]["n_train"] / spec.settings.values["batch_size"])
    assert CALLS["augment"] - before == steps


def test_a_registered_run_metric_ends_up_in_the_record(tmp_path):
    spec = _with(_spec("epochs=1"), run_metrics=["test_weight_stats"])
    rec = execute(spec.to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    width = spec.settings.values["model.width"]
    assert rec["metrics"]["n_params"] == float(20 * width + width * width + width * 4)  # fc 20-w-w-4, no bias
    assert rec["metrics"]["n_test_seen"] == rec["metrics"]["n_test"]
    assert rec["metrics"]["width_setting"] == float(width)
    assert "test_acc" in rec["metrics"]
    reason = stackable(spec, (20,), 4).reason
    assert not stackable(spec, (20,), 4) and "per-run metrics" in reason


def test_a_run_metric_that_takes_the_test_logits_gets_the_stored_ones(tmp_path):
    spec = _with(_spec("epochs=1"), run_metrics=["test_weight_stats", "test_logits_seen"])
    rec = execute(spec.to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    assert rec["metrics"]["logits_rows"] == rec["metrics"]["labels_rows"] == rec["metrics"]["n_test"]
    stored = load_tensors(tmp_path / LOGITS_FILE)["logits"]  # the final model's test logits, as saved
    assert torch.equal(CALLS["logits"], stored)
    assert "n_params" in rec["metrics"]  # a metric without the argument runs beside it


def test_bad_or_unknown_run_metrics_fail_the_run_clearly(tmp_path):
    rec = execute(_with(_spec("epochs=1"), run_metrics=["test_bad"]).to_dict(), str(tmp_path / "a"), threads=1)
    assert rec["status"] == "failed" and "run_metrics: test_bad" in rec["reason"]
    rec = execute(_with(_spec("epochs=1"), run_metrics=["no_such"]).to_dict(), str(tmp_path / "b"), threads=1)
    assert rec["status"] == "failed" and "unknown run_metric 'no_such'" in rec["reason"]
    assert rec["curves"] == []  # refused before any training
