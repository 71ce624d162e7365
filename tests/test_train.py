"""The training loops: one model and K stacked ones share the lr step, the divergence check, the
curve row and the record filling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from restudy import plugins
from restudy.execution.stacked import StackedMLP
from restudy.planning.seeding import generator, scoped_seed
from restudy.storage.record import RunRecord
from restudy.training.loop import TrainResult, curve_row, divergence, fill_record, lr_step, train
from restudy.training.loop_stacked import train_stacked


def _blobs(n: int = 256, dim: int = 10, classes: int = 3, seed: int = 0):
    """Linearly separable Gaussian blobs: a train and a test split."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 4
    y = torch.randint(0, classes, (2 * n,), generator=g)
    x = centers[y] + torch.randn(2 * n, dim, generator=g)
    return x[:n], y[:n], x[n:], y[n:]


def _fc(seed: int, dim: int = 10, classes: int = 3) -> nn.Module:
    with scoped_seed(seed):
        return plugins.create("model", "fc", input_shape=(dim,), num_classes=classes, hidden=1, width=16)


def test_loss_falls_on_separable_data():
    x, y, xt, yt = _blobs()
    model = _fc(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = train(
        model, x, y, xt, yt, optimizer=opt, schedule=lambda s, e: 0.05, epochs=5, batch_size=32, order=generator(1)
    )
    assert result.status == "finished" and result.epochs_done == 5 and len(result.curves) == 5
    assert result.curves[-1]["train_loss"] < result.curves[0]["train_loss"] / 2
    assert result.curves[-1]["test_acc"] > 90
    assert result.steps == 5 * math.ceil(256 / 32)


class _NanAfter(nn.Module):
    """A model whose output becomes NaN from its ``n``-th training forward pass on."""

    def __init__(self, inner: nn.Module, n: int) -> None:
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls > self.n:
                out = out * float("nan")
        return out


def test_a_nan_loss_ends_the_run_as_diverged_with_the_reason():
    x, y, xt, yt = _blobs()
    model = _NanAfter(_fc(0), n=10)  # 8 steps per epoch: the 11th step is step 2 of epoch 1
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = train(
        model, x, y, xt, yt, optimizer=opt, schedule=lambda s, e: 0.05, epochs=4, batch_size=32, order=generator(1)
    )
    assert result.status == "diverged"
    assert result.reason == "non-finite loss (nan) at epoch 1, step 10"
    assert result.epochs_done == 1 and len(result.curves) == 2 and result.steps == 10
    # the diverged epoch's running loss is the mean over the two steps it completed
    assert math.isfinite(result.curves[1]["train_loss_running"])
    assert result.final_metrics(256, 256)["diverged"] == 1.0


def test_divergence_reason():
    assert divergence(0.7, 3, 12) == ""
    assert divergence(float("inf"), 3, 12) == "non-finite loss (inf) at epoch 3, step 12"
    assert divergence(float("nan"), 0, 0) == "non-finite loss (nan) at epoch 0, step 0"


def test_lr_step_honours_each_groups_lr_mult():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [a], "lr_mult": 1.0}, {"params": [b], "lr_mult": 0.25}], lr=1.0)
    lr = lr_step(opt, lambda step, epoch: 0.1 * (step + 1) / (epoch + 1), 3, 1)
    assert lr == pytest.approx(0.2)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.2), pytest.approx(0.05)]
    plain = torch.optim.SGD([a], lr=1.0)  # a group without lr_mult takes the scheduled lr
    assert lr_step(plain, lambda s, e: 0.3, 0, 0) == 0.3 and plain.param_groups[0]["lr"] == 0.3


def test_lr_mult_slows_the_group_in_training():
    x, y, xt, yt = _blobs()
    models = [_fc(0), _fc(0)]
    steps = []
    for model, mult in zip(models, (1.0, 0.0)):
        opt = torch.optim.SGD([{"params": list(model.parameters()), "lr_mult": mult}], lr=123.0)
        train(
            model, x, y, xt, yt, optimizer=opt, schedule=lambda s, e: 0.05, epochs=1, batch_size=32, order=generator(1)
        )
        steps.append(opt.param_groups[0]["lr"])
    assert steps == [0.05, 0.0]
    assert all(torch.equal(p, q) for p, q in zip(models[1].parameters(), _fc(0).parameters()))  # lr 0: unchanged
    assert not all(torch.equal(p, q) for p, q in zip(models[0].parameters(), _fc(0).parameters()))


def test_single_and_stacked_loops_write_the_same_curve_rows():
    x, y, xt, yt = _blobs()
    single = _fc(0)
    one = train(
        single,
        x,
        y,
        xt,
        yt,
        optimizer=torch.optim.SGD(single.parameters(), lr=0.05),
        schedule=lambda s, e: 0.05,
        epochs=2,
        batch_size=32,
        order=generator(1),
    )
    many = _run_stack(every=0, epochs=2)
    assert len(many) == 2
    for result in many:
        assert [set(r) for r in result.curves] == [set(r) for r in one.curves]
        assert [r["epoch"] for r in result.curves] == [1, 2]
    # model 0 of the stack is the single model: the same run up to float rounding
    assert many[0].curves[-1]["test_acc"] == pytest.approx(one.curves[-1]["test_acc"], abs=100 / 256)


def test_curve_row_and_record_filling():
    from restudy.training.evaluate import SplitEval

    tr, te = SplitEval("train", 50.0, 1.2, 10), SplitEval("test", 40.0, 1.5, 5)
    row = curve_row(0, 0.1, 3.0, 2, tr, te, 0.5, 0.25)
    assert row == {
        "epoch": 1,
        "lr": 0.1,
        "train_loss_running": 1.5,
        "train_acc": 50.0,
        "train_loss": 1.2,
        "test_acc": 40.0,
        "test_loss": 1.5,
        "train_s": 0.5,
        "eval_s": 0.25,
    }
    assert math.isnan(curve_row(0, 0.1, 0.0, 0, tr, te, 0.0, 0.0)["train_loss_running"])
    result = TrainResult(
        status="diverged", reason="why", curves=[row], epochs_done=0, train_wall_s=0.5, eval_wall_s=0.25
    )
    record = RunRecord(key="k", spec={}, status="failed")
    fill_record(record, result, n_test=5, n_train=10)
    assert (record.status, record.reason, record.curves) == ("diverged", "why", [row])
    assert record.step_curve == []
    assert record.timings == {"train_s": 0.5, "eval_s": 0.25}
    assert record.metrics["test_acc"] == 40.0 and record.metrics["diverged"] == 1.0
    assert record.metrics["n_test"] == 5 and record.metrics["n_train"] == 10 and record.metrics["epochs_done"] == 0


# --------------------------------------------------------------------------- per-step training loss


def _run_single(every: int, epochs: int = 3, model: nn.Module | None = None) -> TrainResult:
    x, y, xt, yt = _blobs()
    model = model if model is not None else _fc(0)
    return train(
        model,
        x,
        y,
        xt,
        yt,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        schedule=lambda s, e: 0.05,
        epochs=epochs,
        batch_size=32,
        order=generator(1),
        curve_every_steps=every,
    )


def _run_stack(every: int, epochs: int) -> list[TrainResult]:
    """The models of :func:`_run_single` (seed 0, order 1) and a second one (seed 1, order 2),
    trained as one stack."""
    x, y, xt, yt = _blobs()
    stack = StackedMLP.from_models([_fc(0), _fc(1)])
    return train_stacked(
        stack,
        x,
        y,
        xt,
        yt,
        optimizer=torch.optim.SGD(stack.parameters(), lr=0.05),
        schedule=lambda s, e: 0.05,
        epochs=epochs,
        batch_size=32,
        orders=[generator(1), generator(2)],
        curve_every_steps=every,
    )


def test_a_step_curve_with_one_window_per_epoch_is_the_epochs_running_loss():
    result = _run_single(every=8)  # 256 examples / 32 = 8 steps per epoch
    assert [r["step"] for r in result.step_curve] == [8, 16, 24] and {r["n"] for r in result.step_curve} == {8}
    for row, epoch in zip(result.step_curve, result.curves):
        assert row["loss"] == epoch["train_loss_running"]


def test_a_step_curve_has_a_row_per_window_and_a_short_last_one():
    result = _run_single(every=5)  # 24 steps: 4 windows of 5, then one of 4
    assert [r["step"] for r in result.step_curve] == [5, 10, 15, 20, 24]
    assert [r["n"] for r in result.step_curve] == [5, 5, 5, 5, 4]
    assert _run_single(every=0).step_curve == []  # off by default: nothing recorded


def test_a_diverged_runs_step_curve_ends_at_its_last_finite_step():
    result = _run_single(every=4, epochs=4, model=_NanAfter(_fc(0), n=10))
    assert result.status == "diverged" and result.steps == 10
    assert [(r["step"], r["n"]) for r in result.step_curve] == [(4, 4), (8, 4), (10, 2)]
    assert all(math.isfinite(r["loss"]) for r in result.step_curve)


def test_single_and_stacked_loops_give_the_same_step_curve():
    one = _run_single(every=3, epochs=2)
    many = _run_stack(every=3, epochs=2)
    # model 0 of the stack is the single model: the same curve up to float rounding
    got, want = many[0].step_curve, one.step_curve
    assert (
        [(r["step"], r["n"]) for r in got]
        == [(r["step"], r["n"]) for r in want]
        == [(3, 3), (6, 3), (9, 3), (12, 3), (15, 3), (16, 1)]
    )
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-5)
    assert len(many[1].step_curve) == len(got) and many[1].step_curve != got  # its own model and order
