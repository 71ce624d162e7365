"""Optimizers and learning-rate schedules built from plain values.

Schedules are pure functions ``lr(step, epoch) -> float`` evaluated every optimizer step, so
per-epoch and per-step schedules share one mechanism. Each built-in one equals its
``torch.optim.lr_scheduler`` namesake on the same steps (tests/test_optim.py): ``step`` (StepLR),
``multistep`` (MultiStepLR), ``exponential`` (ExponentialLR), ``onecycle`` (OneCycleLR, the lr only),
and a warm-up (:func:`with_warmup`, LinearLR chained with the schedule) composes with any of them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable

import torch

from ..errors import RestudyError
from ..plugins import get, register

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


def _adam_family(cls: type[torch.optim.Optimizer], doc: str) -> Callable[..., torch.optim.Optimizer]:
    """A factory of Adam or AdamW (the same arguments; they differ in how weight decay acts)."""

    def factory(
        params: Iterable[torch.nn.Parameter],
        lr: float,
        betas: list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        **_ignored: object,
    ) -> torch.optim.Optimizer:
        return cls(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    factory.__doc__ = doc
    return factory


adam = register("optimizer", "adam")(
    _adam_family(torch.optim.Adam, "Adam with coupled L2 weight decay (PyTorch semantics).")
)
adamw = register("optimizer", "adamw")(
    _adam_family(
        torch.optim.AdamW,
        """Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019; ``torch.optim.AdamW``).

    ``weight_decay`` defaults to 0 here, as every restudy optimizer's does; PyTorch's AdamW
    defaults to 0.01, so a paper that says "AdamW" without a value has an unstated setting.""",
    )
)


@register("optimizer", "rmsprop")
def rmsprop(
    params: Iterable[torch.nn.Parameter],
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    momentum: float = 0.0,
    centered: bool = False,
    weight_decay: float = 0.0,
    **_ignored: object,
) -> torch.optim.Optimizer:
    """RMSprop with coupled L2 weight decay (``torch.optim.RMSprop``: eps added outside the square
    root; TensorFlow's RMSprop adds it inside, so a paper trained there used a different eps)."""
    return torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, eps=eps, momentum=momentum, centered=centered, weight_decay=weight_decay
    )


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


@register("schedule", "step")
def step_decay(lr: float, step_size: int, gamma: float, **_: object) -> Schedule:
    """Decay by ``gamma`` every ``step_size`` epochs: lr_e = lr·gamma^⌊e/step_size⌋ (StepLR stepped per epoch)."""
    return lambda step, epoch: lr * gamma ** (epoch // step_size)


@register("schedule", "multistep")
def multistep(lr: float, milestones: list[int], gamma: float, **_: object) -> Schedule:
    """Decay by ``gamma`` once ``m`` epochs are done, for each milestone ``m``: lr_e = lr·gamma^#{m ≤ e}
    for the 0-based epoch e (MultiStepLR stepped per epoch; the usual "÷10 at epochs 100 and 150" of
    He et al., 2016, Sec. 4.2, is ``milestones: [100, 150], gamma: 0.1``)."""
    marks = sorted(milestones)
    return lambda step, epoch: lr * gamma ** sum(1 for m in marks if m <= epoch)


@register("schedule", "onecycle")
def onecycle(
    lr: float,
    epochs: int,
    steps_per_epoch: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    **_: object,
) -> Schedule:
    """The one-cycle policy (Smith & Topin, 2018), as ``torch.optim.lr_scheduler.OneCycleLR`` with
    ``anneal_strategy='cos'`` and two phases: from ``lr/div_factor`` up to ``lr`` over the first
    ``pct_start`` of the steps, then down to ``lr/(div_factor·final_div_factor)`` at the last step,
    each by a half cosine. Only the lr: OneCycleLR also cycles momentum by default
    (``cycle_momentum=True``), which a restudy schedule does not; a study that needs it says so."""
    total = epochs * steps_per_epoch
    first, low = lr / div_factor, lr / (div_factor * final_div_factor)
    peak_at, last = float(pct_start * total) - 1, total - 1

    def anneal(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * min(1.0, max(0.0, pct))) + 1)

    def at(step: int, epoch: int) -> float:
        if step <= peak_at:
            return anneal(first, lr, step / peak_at) if peak_at > 0 else lr
        return anneal(lr, low, (step - peak_at) / (last - peak_at)) if last > peak_at else low

    return at


def handles_warmup(name: str) -> bool:
    """Whether the registered schedule ``name`` takes ``warmup_epochs`` itself (cosine, snapshot);
    any other gets :func:`with_warmup` around it."""
    return "warmup_epochs" in inspect.signature(get("schedule", name)).parameters


def with_warmup(schedule: Schedule, warmup_steps: float, start_factor: float = 0.0) -> Schedule:
    """``schedule`` times a linear warm-up factor from ``start_factor`` to 1 over ``warmup_steps``
    optimizer steps: ``start + (1 − start)·step/warmup_steps`` before it, 1 after (LinearLR with
    ``total_iters = warmup_steps``, chained with the schedule: Goyal et al., 2017, Sec. 2.2's
    gradual warm-up is ``start_factor`` 1/k over 5 epochs). No warm-up: the schedule itself."""
    if warmup_steps <= 0:
        return schedule

    def at(step: int, epoch: int) -> float:
        factor = 1.0 if step >= warmup_steps else start_factor + (1.0 - start_factor) * step / warmup_steps
        return factor * schedule(step, epoch)

    return at


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
