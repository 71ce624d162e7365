"""Optimizers, parameter groups and learning-rate schedules built from plain values."""

from __future__ import annotations

import math

import pytest
import torch

from restudy.plugins import create


def test_bias_and_bn_scales_get_the_lr_multiplier_like_the_original():
    from restudy.training.optim import param_groups, sgd

    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    groups = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    slow = {names[id(p)] for p in groups[0]["params"]}
    assert groups[0]["lr_mult"] == 0.1 and groups[1]["lr_mult"] == 1.0
    assert "fc.bias" in slow and "bn1.weight" in slow and "layers.0.bn2.weight" in slow
    assert "layers.2.shortcut.body.1.weight" not in slow  # no "bn" in its name: full lr (quirk kept)
    assert "conv1.weight" not in slow
    assert len(param_groups(m, 1.0)) == 1
    opt = sgd(groups, lr=0.4, momentum=0.9)
    assert len(opt.param_groups) == 2


def test_the_training_loop_applies_each_group_lr_multiplier():
    from restudy.planning.seeding import generator
    from restudy.training.loop import train
    from restudy.training.optim import constant, param_groups, sgd

    m = create("model", "fc", input_shape=(4,), num_classes=3, hidden=1, width=8, bias=True)
    opt = sgd(param_groups(m, 0.1), lr=0.5)
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    train(m, x, y, x, y, optimizer=opt, schedule=constant(lr=0.5), epochs=1, batch_size=16, order=generator(0))
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]


def test_schedules_give_the_protocols_learning_rates():
    from restudy.training.optim import constant, cosine, exponential, linear

    assert constant(lr=0.1)(7, 3) == 0.1
    lin = linear(lr=0.1, epochs=4)
    assert [lin(0, e) for e in range(4)] == pytest.approx([0.1, 0.075, 0.05, 0.025])  # the last epoch gets lr/E
    assert exponential(lr=1.0, gamma=0.95)(0, 2) == pytest.approx(0.95**2)
    cos = cosine(lr=0.2, epochs=2, steps_per_epoch=10)
    assert cos(0, 0) == pytest.approx(0.2) and cos(10, 1) == pytest.approx(0.1) and cos(20, 2) == pytest.approx(0.0)
    warm = cosine(lr=0.2, epochs=2, steps_per_epoch=10, warmup_epochs=1)
    assert warm(0, 0) == 0.0 and warm(5, 0) == pytest.approx(0.1)  # linear warmup from 0
    assert warm(10, 1) == pytest.approx(0.5 * 0.2 * (1 + math.cos(math.pi / 2)))  # the cosine from epoch 0


def test_snapshot_schedule_restarts_every_cycle_and_rejects_a_bad_cycle_count():
    from restudy.errors import RestudyError
    from restudy.training.optim import snapshot, snapshot_epochs

    assert snapshot_epochs(500, 5) == [100, 200, 300, 400, 500]
    sched = snapshot(lr=0.4, epochs=4, steps_per_epoch=5, cycles=2)
    assert sched(0, 0) == pytest.approx(0.4) and sched(10, 2) == pytest.approx(0.4)  # each cycle restarts
    assert sched(9, 1) < 0.01
    with pytest.raises(RestudyError, match="divides the epochs"):
        snapshot_epochs(10, 3)
    with pytest.raises(RestudyError, match="shorter than one snapshot cycle"):
        snapshot(lr=0.4, epochs=4, steps_per_epoch=5, cycles=2, warmup_epochs=2)


def test_sgd_refuses_nesterov_without_momentum():
    from restudy.errors import RestudyError
    from restudy.training.optim import sgd

    with pytest.raises(RestudyError, match="nesterov needs momentum"):
        sgd([torch.nn.Parameter(torch.zeros(2))], lr=0.1, nesterov=True)
