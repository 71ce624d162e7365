"""Snapshot ensembles and the warmup-cosine schedule of Summers & Dinneen's ``train.py`` (``snapshot5``, cosine)."""

from __future__ import annotations

import math

import pytest
import torch

from restudy import plugins
from restudy.errors import RestudyError
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import plan
from restudy.planning.seeding import generator
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.safeio import load_tensors
from restudy.training.evaluate import mean_logits, predict
from restudy.training.loop import train

LR, EPOCHS, SPE, CYCLES, WARMUP = 0.4, 500, 98, 5, 3  # the paper's snapshot5 protocol


def _reference(step: int, lr: float = LR, length: int = EPOCHS // CYCLES, warmup: float = WARMUP) -> float:
    """The original ``snapshot5`` schedule written out with fractional epochs."""
    epoch = step / SPE
    start = min(int(epoch // length), CYCLES - 1) * length
    t = epoch - start
    value = lr * t / warmup if t < warmup else 0.5 * lr * (1 + math.cos(math.pi * t / length))
    return min(lr, max(0.0, value))


@pytest.fixture(scope="module")
def snap():
    return plugins.create(
        "schedule", "snapshot", lr=LR, epochs=EPOCHS, steps_per_epoch=SPE, cycles=CYCLES, warmup_epochs=WARMUP
    )


def test_snapshot_schedule_at_known_steps(snap):
    cycle = 100 * SPE
    for c in range(CYCLES):
        assert snap(c * cycle, 0) == 0.0  # each cycle restarts at 0
        assert snap(c * cycle + 3 * SPE - 1, 0) == pytest.approx(LR * (3 * SPE - 1) / (3 * SPE))
        assert snap(c * cycle + 3 * SPE, 0) == pytest.approx(0.5 * LR * (1 + math.cos(math.pi * 3 / 100)))
        assert snap(c * cycle + 50 * SPE, 0) == pytest.approx(LR / 2)  # mid-cycle
        assert 0.0 < snap((c + 1) * cycle - 1, 0) <= 1e-7 * LR  # the original asserts this
    for step in range(0, EPOCHS * SPE, 337):
        assert snap(step, 0) == pytest.approx(_reference(step), rel=1e-9, abs=1e-15)
        assert 0.0 <= snap(step, 0) <= LR


def test_snapshot_schedule_rejects_bad_cycles():
    with pytest.raises(RestudyError, match="divides"):
        plugins.create("schedule", "snapshot", lr=0.1, epochs=10, steps_per_epoch=3, cycles=3)
    with pytest.raises(RestudyError, match="warmup"):
        plugins.create("schedule", "snapshot", lr=0.1, epochs=10, steps_per_epoch=3, cycles=5, warmup_epochs=2)


def test_cosine_with_warmup_follows_the_paper_including_the_jump():
    sched = plugins.create("schedule", "cosine", lr=LR, epochs=EPOCHS, steps_per_epoch=SPE, warmup_epochs=3)
    assert sched(0, 0) == 0.0
    assert sched(SPE, 1) == pytest.approx(LR / 3)
    end = 3 * SPE
    # The cosine is measured from epoch 0: where the warmup ends it takes over just below LR.
    assert sched(end, 3) == pytest.approx(0.5 * LR * (1 + math.cos(math.pi * 3 / EPOCHS)))
    assert sched(end, 3) < LR and sched(end - 1, 2) < sched(end, 3)
    assert sched(250 * SPE, 250) == pytest.approx(LR / 2)
    assert sched(EPOCHS * SPE - 1, EPOCHS - 1) < 1e-8


def test_cosine_without_warmup_is_unchanged():
    sched = plugins.create("schedule", "cosine", lr=0.1, epochs=7, steps_per_epoch=5)
    for step in range(35):
        assert sched(step, step // 5) == 0.1 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / 35)))


def _tiny():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (48,), generator=g)
    return x[:32], y[:32], x[32:], y[32:]


def test_train_returns_the_requested_snapshots():
    x_tr, y_tr, x_te, y_te = _tiny()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = plugins.create("model", "small_cnn", input_shape=(3, 8, 8), num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = plugins.create("schedule", "snapshot", lr=0.05, epochs=4, steps_per_epoch=4, cycles=2)
    result = train(
        model,
        x_tr,
        y_tr,
        x_te,
        y_te,
        optimizer=opt,
        schedule=sched,
        epochs=4,
        batch_size=8,
        order=generator(1),
        snapshot_epochs=[2, 4],
        keep_snapshot_states=True,
    )
    assert result.snapshot_epochs == [2, 4] and len(result.snapshots) == 2
    assert torch.equal(result.snapshots[-1], result.test_logits)
    assert not torch.equal(result.snapshots[0], result.snapshots[1])
    assert all(v.device.type == "cpu" for v in result.snapshot_states[0].values())
    model.load_state_dict(result.snapshot_states[0])
    assert torch.equal(predict(model, x_te), result.snapshots[0])
    acc = (result.snapshots[0].argmax(1) == y_te).float().mean().item() * 100
    assert acc == pytest.approx(result.curves[1]["test_acc"])


def test_train_rejects_snapshot_epochs_outside_the_run():
    x_tr, y_tr, x_te, y_te = _tiny()
    model = plugins.create("model", "small_cnn", input_shape=(3, 8, 8), num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(RestudyError, match="snapshot"):
        train(
            model,
            x_tr,
            y_tr,
            x_te,
            y_te,
            optimizer=opt,
            schedule=lambda s, e: 0.05,
            epochs=2,
            batch_size=8,
            order=generator(1),
            snapshot_epochs=[3],
        )


def _spec(*overrides: str):
    specs = plan(load_study("enorm"), "smoke", overrides=parse_overrides(list(overrides)))
    return next(
        s
        for s in specs
        if s.experiment == "fc" and s.variant == {"method": "baseline", "depth": "1"} and s.seed_index == 0
    )


def test_schedule_settings_are_kept_only_where_relevant():
    plain = _spec()
    assert not plain.settings.has("schedule.cycles") and not plain.settings.has("schedule.warmup_epochs")
    snap = _spec("schedule=snapshot", "epochs=4", "schedule.cycles=2", "schedule.warmup_epochs=0.5")
    assert snap.settings.values["schedule.cycles"] == 2 and snap.settings.values["schedule.warmup_epochs"] == 0.5


DIGITS = (
    "model=small_cnn",
    "data=digits",
    "data.n_train=256",
    "data.n_test=96",
    "epochs=4",
    "schedule=snapshot",
    "schedule.cycles=2",
    "schedule.warmup_epochs=0.5",
)


def test_worker_stores_snapshots_and_their_mean(tmp_path):
    rec = execute(_spec(*DIGITS).to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    t = load_tensors(tmp_path / LOGITS_FILE)
    assert set(t) == {"logits", "labels", "index", "snapshot_0", "snapshot_1", "ensemble"}
    assert torch.equal(t["snapshot_1"], t["logits"])
    assert torch.equal(t["ensemble"], mean_logits([t["snapshot_0"], t["snapshot_1"]]))
    torch.testing.assert_close(t["ensemble"], (t["snapshot_0"] + t["snapshot_1"]) / 2)
    acc = (t["ensemble"].argmax(1) == t["labels"]).float().mean().item() * 100
    assert rec["metrics"]["test_acc_ensemble"] == pytest.approx(acc)


def test_worker_ensembles_tta_over_snapshot_models(tmp_path):
    rec = execute(_spec(*DIGITS, "tta=[flip, crop9]", "tta.pad=1").to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    t = load_tensors(tmp_path / LOGITS_FILE)
    for name in ("tta_flip", "tta_crop9", "ensemble_tta_flip", "ensemble_tta_crop9"):
        assert t[name].shape == t["logits"].shape
        assert rec["metrics"][f"test_acc_{name}"] is not None
    # A one-cycle run of 2 epochs is exactly the first cycle (same init, order and lr per step):
    # its final model is snapshot 0, so the ensemble TTA is the mean of the two models' TTA.
    one = _spec(
        *DIGITS[:4],
        "epochs=2",
        "schedule=snapshot",
        "schedule.cycles=1",
        "schedule.warmup_epochs=0.5",
        "tta=[flip, crop9]",
        "tta.pad=1",
    )
    execute(one.to_dict(), str(tmp_path / "one"), threads=1)
    u = load_tensors(tmp_path / "one" / LOGITS_FILE)
    assert torch.equal(u["logits"], t["snapshot_0"])
    for name in ("flip", "crop9"):
        assert torch.equal(t[f"ensemble_tta_{name}"], mean_logits([u[f"tta_{name}"], t[f"tta_{name}"]]))
    assert not torch.equal(t["tta_flip"], t["logits"])


def test_worker_fails_fast_on_a_cycle_count_that_does_not_divide_the_epochs(tmp_path):
    rec = execute(_spec(*DIGITS[:-2], "schedule.cycles=3").to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "failed" and "schedule.cycles" in rec["reason"]
