"""Optimizers and learning-rate schedules built from plain values.

Schedules are pure functions ``lr(step, epoch) -> float`` evaluated every optimizer step, so
per-epoch and per-step schedules share one mechanism.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from .errors import RestudyError
from .registry import register

Schedule = Callable[[int, int], float]


@register("optimizer", "sgd")
def sgd(params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0, **_ignored: object) -> torch.optim.Optimizer:
    """SGD with coupled L2 weight decay (PyTorch semantics)."""
    if nesterov and momentum <= 0:
        raise RestudyError("nesterov needs momentum > 0", where="optimizer.nesterov", got=momentum)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


@register("optimizer", "adam")
def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: list[float] = (0.9, 0.999),
         eps: float = 1e-8, weight_decay: float = 0.0, **_ignored: object) -> torch.optim.Optimizer:
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
    return lambda step, epoch: lr * gamma ** epoch


@register("schedule", "cosine")
def cosine(lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0, **_: object) -> Schedule:
    """Per-step cosine decay to 0 after a linear warm-up from 0 over ``warmup_epochs``."""
    total = epochs * steps_per_epoch
    warm = int(round(warmup_epochs * steps_per_epoch))

    def at(step: int, epoch: int) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return at
