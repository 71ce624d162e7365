"""Optimizers and learning-rate schedules built from plain values.

Schedules are pure functions ``lr(step, epoch) -> float`` evaluated every optimizer step, so
per-epoch and per-step schedules share one mechanism.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from ..errors import RestudyError
from ..plugins import register

Schedule = Callable[[int, int], float]


def param_groups(model: torch.nn.Module, lr_mult_bias_bn: float = 1.0) -> list[dict]:
    """Parameter groups: with ``lr_mult_bias_bn`` ≠ 1, biases (names containing "bias") and
    BatchNorm scales (names containing "bn" and "weight") get that multiple of the scheduled lr,
    the rest the lr itself — the grouping of Summers & Dinneen's code (``train.py``), name
    quirks included. With 1 (the default) there is one group, as plain ``model.parameters()``."""
    params = list(model.named_parameters())
    if lr_mult_bias_bn == 1.0:
        return [{"params": [p for _, p in params], "lr_mult": 1.0}]
    special = [p for n, p in params if "bias" in n or ("bn" in n and "weight" in n)]
    ids = {id(p) for p in special}
    rest = [p for _, p in params if id(p) not in ids]
    return [
        g for g in ({"params": special, "lr_mult": lr_mult_bias_bn}, {"params": rest, "lr_mult": 1.0}) if g["params"]
    ]


@register("optimizer", "sgd")
def sgd(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    **_ignored: object,
) -> torch.optim.Optimizer:
    """SGD with coupled L2 weight decay (PyTorch semantics)."""
    if nesterov and momentum <= 0:
        raise RestudyError("nesterov needs momentum > 0", where="optimizer.nesterov", got=momentum)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


@register("optimizer", "adam")
def adam(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    betas: list[float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    **_ignored: object,
) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


@register("schedule", "constant")
def constant(lr: float, **_: object) -> Schedule:
    return lambda step, epoch: lr


@register("schedule", "linear")
def linear(lr: float, epochs: int, **_: object) -> Schedule:
    """Linear decay per epoch: lr_e = lr·(E − e)/E (the ENorm code; the last epoch gets lr/E)."""
    return lambda step, epoch: lr * (epochs - epoch) / epochs


@register("schedule", "exponential")
def exponential(lr: float, gamma: float = 1.0, **_: object) -> Schedule:
    """Per-epoch exponential decay: lr_e = lr·gamma^e."""
    return lambda step, epoch: lr * gamma**epoch


def _warmup_cosine(lr: float, step: int, length: int, warmup: float) -> float:
    """The lr ``step`` steps into a warmup-then-cosine segment of ``length`` steps.

    Linear warmup ``lr·step/warmup`` while ``step < warmup`` (both in steps), else
    ``0.5·lr·(1 + cos(π·step/length))``. The cosine is measured from the segment start, not from
    the end of the warmup, so the schedule is slightly discontinuous where the warmup ends: the
    warmup line would reach ``lr`` there, the cosine takes over at ``0.5·lr·(1 + cos(π·warmup/
    length))`` (just below ``lr``), and ``lr`` itself is never used. This is the Summers & Dinneen
    protocol (their ``train.py``), copied on purpose. Clamped to ``[0, lr]`` (as their ``snapshot5``
    schedule is).
    """
    if step < warmup:
        value = lr * step / warmup
    else:
        value = lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / max(1, length))))
    return min(lr, max(0.0, value))


@register("schedule", "cosine")
def cosine(lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0, **_: object) -> Schedule:
    """Per-step cosine decay to 0, after an optional linear warmup from 0 (Summers & Dinneen's ``train.py``).

    With ``e = step / steps_per_epoch`` (a fractional epoch, as the original's per-step LambdaLR):
    ``lr·e/warmup_epochs`` while ``e < warmup_epochs``, then ``0.5·lr·(1 + cos(π·e/epochs))``.
    The cosine runs from epoch 0, not from the end of the warmup, so there is a tiny jump where
    the warmup ends (the warmup line would reach ``lr``; the cosine there is
    ``0.5·lr·(1 + cos(π·warmup_epochs/epochs))``): the paper's protocol, copied on purpose. The
    first step of a warmup gets lr 0. Without warmup this is the plain per-step cosine
    ``0.5·lr·(1 + cos(π·step/(epochs·steps_per_epoch)))``, unchanged from earlier versions.

    Args:
        lr: peak learning rate.
        epochs: the length of the run; the cosine reaches 0 at its end.
        steps_per_epoch: optimizer steps per epoch.
        warmup_epochs: length of the linear warmup in (possibly fractional) epochs.
    """
    total, warm = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch

    def at(step: int, epoch: int) -> float:
        return _warmup_cosine(lr, step, total, warm)

    return at


def snapshot_epochs(epochs: int, cycles: int) -> list[int]:
    """The 1-based epochs that end the cycles of the ``snapshot`` schedule (Summers & Dinneen's ``snapshot5``).

    For 500 epochs and 5 cycles: ``[100, 200, 300, 400, 500]`` (0-indexed 99, 199, ..., 499).

    Raises:
        RestudyError: ``cycles`` is not a positive divisor of ``epochs``.
    """
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1 or epochs % cycles:
        raise RestudyError(
            "the snapshot schedule needs a number of cycles that divides the epochs",
            where="schedule.cycles",
            got=cycles,
            allowed=f"a divisor of epochs = {epochs}",
        )
    length = epochs // cycles
    return [length * (c + 1) for c in range(cycles)]


@register("schedule", "snapshot")
def snapshot(
    lr: float, epochs: int, steps_per_epoch: int, cycles: int = 5, warmup_epochs: float = 0.0, **_: object
) -> Schedule:
    """Cyclic warmup-then-cosine schedule for snapshot ensembles (Summers & Dinneen's ``train.py``, ``snapshot5``).

    The run is split into ``cycles`` equal cycles of ``L = epochs / cycles`` epochs. Each cycle
    restarts the schedule: with ``e = step / steps_per_epoch`` and ``start`` the cycle's first epoch,
    ``lr·(e − start)/warmup_epochs`` during the warmup, then ``0.5·lr·(1 + cos(π·(e − start)/L))``,
    clamped to ``[0, lr]``. As in :func:`cosine`, the cosine is measured from the cycle start
    (the same tiny jump where each cycle's warmup ends). The last step of each cycle gets about
    ``lr·(π/(2·L·steps_per_epoch))²`` (≤ 1e-7·lr at the paper's 100 epochs × 98 steps).

    Args:
        lr: peak learning rate of every cycle.
        epochs: total epochs; must be a multiple of ``cycles``.
        steps_per_epoch: optimizer steps per epoch.
        cycles: number of cycles (= snapshots).
        warmup_epochs: warmup length per cycle, in epochs; must be shorter than a cycle.

    Raises:
        RestudyError: ``cycles`` does not divide ``epochs`` or the warmup fills a whole cycle.
    """
    length = snapshot_epochs(epochs, cycles)[0]
    if warmup_epochs >= length:
        raise RestudyError(
            "the warmup must be shorter than one snapshot cycle",
            where="schedule.warmup_epochs",
            got=warmup_epochs,
            allowed=f"< {length} epochs (epochs / cycles)",
        )

    cycle_steps, warm = length * steps_per_epoch, warmup_epochs * steps_per_epoch

    def at(step: int, epoch: int) -> float:
        cycle = min(step // cycle_steps, cycles - 1)
        return _warmup_cosine(lr, step - cycle * cycle_steps, cycle_steps, warm)

    return at
