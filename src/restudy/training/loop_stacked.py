"""The stacked training loop: K tiny models trained as one batched model (:func:`train_stacked`),
each on its own data order, augmentation and labels, stopping on its own when it diverges or fits.

It is the single-run loop of :mod:`restudy.training.loop` for a stack, built from the same shared pieces
(lr step, divergence check, fit check, per-step curve, curve row, record filling); what it does not
support is declared in ``restudy.execution.stacked.NOT_STACKED``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ..errors import RestudyError
from .batches import Augment
from .evaluate import SplitEval, metrics_from_logits
from .loop import StepCurve, TrainResult, check_fit, curve_row, divergence, end_epoch, lr_step
from .optim import Schedule


class StackedModel(Protocol):
    """What :func:`train_stacked` needs of a stack of K models (``restudy.training.stacked_model.StackedMLP``):
    logits ``[K, B, C]`` from inputs ``[K, B, features]``, every parameter and buffer with the
    model index as its first dimension."""

    size: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
    def train(self, mode: bool = True) -> Any: ...
    def parameters(self) -> Any: ...
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor: ...
    def slice_state(self, k: int) -> list[torch.Tensor]: ...
    def load_slice(self, k: int, state: Sequence[torch.Tensor]) -> None: ...
    def zero_slice(self, k: int) -> None: ...


def per_model_loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of each model over its own batch: ``[K]`` from logits ``[K, B, C]``."""
    k, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none", label_smoothing=label_smoothing)
    return ce.view(k, b).mean(1)


@torch.no_grad()
def zero_optimizer_slice(optimizer: torch.optim.Optimizer, k: int) -> None:
    """Zero model ``k``'s slice of every per-element optimizer state (momentum, Adam moments)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for v in optimizer.state.get(p, {}).values():
                if isinstance(v, torch.Tensor) and v.shape == p.shape:
                    v[k].zero_()


@dataclass
class _Member:
    """Book-keeping of one stacked model, mirroring the locals of :func:`train`."""

    result: TrainResult = field(default_factory=lambda: TrainResult(status="finished"))
    active: bool = True
    lr: float = 0.0
    loss_sum: float = 0.0
    done_steps: int = 0
    snapshot: list[torch.Tensor] | None = None  # weights when it diverged, for its last evaluation
    fitted: list[torch.Tensor] | None = None  # weights when it was fit (restored after training)
    step_curve: StepCurve = field(default_factory=StepCurve)


@dataclass
class _Loop:
    """What every epoch of :func:`train_stacked` needs."""

    model: StackedModel
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    batch_size: int
    orders: Sequence[torch.Generator]
    augments: Sequence[Augment | None]
    label_smoothing: float
    members: list[_Member]


def train_stacked(
    model: StackedModel,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    epochs: int,
    batch_size: int,
    orders: Sequence[torch.Generator],
    augments: Sequence[Augment | None] | None = None,
    eval_batch_size: int = 1024,
    label_smoothing: float = 0.0,
    stop_at_fit: float | None = None,
    curve_every_steps: int = 0,
) -> list[TrainResult]:
    """Train the K models of ``model`` in place, step for step as :func:`train` would train each
    one alone, and evaluate them after each epoch.

    Divergence is per model: when model k's loss is non-finite it is marked ``diverged`` with
    ``train()``'s reason, excluded from the loss from that step on, its weights at that moment kept
    for its end-of-epoch evaluation (as ``train()`` evaluates a diverged run once more), and its
    live slice and optimizer state are then set to zero. A zero slice whose loss is excluded gets an
    exactly zero gradient, so SGD (weight decay, momentum) and Adam leave it at zero: it stays
    inert and finite while the others go on. The loop ends when every model has diverged.

    With ``stop_at_fit``, a model whose training set is fit at an epoch's end stops there as
    ``train()`` stops: its weights are kept, its slice set to zero (inert, like a diverged one) and
    restored when the loop ends.

    Timing: the stack's time of an epoch (training, evaluation) is split evenly among the models
    that took part in that epoch, so the runs' times add up to the stack's.

    Args:
        model: the K stacked models.
        x_train, y_train, x_test, y_test: the data, shared by all models (inputs are flattened);
            ``y_train`` may be ``[K, N]``: each model's own training labels (e.g. its own random
            labels), the inputs still shared.
        optimizer: one optimizer over ``model.parameters()``; it must act elementwise.
        schedule: ``lr(step, epoch)``, evaluated every step.
        orders: K generators of the data-order streams (one ``randperm`` per epoch each).
        augments: K batch augmentations (each with its own generator), or None.
        curve_every_steps: each model's ``step_curve`` as :func:`train` keeps it (0: off).
    Returns:
        One ``TrainResult`` per model, as ``train()`` would have returned it.
    """
    k = model.size
    augments = list(augments) if augments is not None else [None] * k
    if len(orders) != k or len(augments) != k:
        raise RestudyError(
            "one order generator and one augmentation per stacked model", got=(k, len(orders), len(augments))
        )
    members = [_Member(TrainResult(status="finished", fit_tracked=stop_at_fit is not None)) for _ in range(k)]
    for m in members:
        m.step_curve = StepCurve(curve_every_steps, m.result.step_curve)
    loop = _Loop(model, optimizer, schedule, batch_size, orders, augments, label_smoothing, members)
    step = 0
    for epoch in range(epochs):
        taking_part = [i for i, m in enumerate(loop.members) if m.active]
        if not taking_part:
            break
        t0 = time.perf_counter()
        model.train()
        step = _train_epoch(loop, x_train, y_train, epoch, step)
        train_s = (time.perf_counter() - t0) / len(taking_part)
        t1 = time.perf_counter()
        evals = _evaluate_stack(loop, taking_part, x_train, y_train, x_test, y_test, eval_batch_size)
        eval_s = (time.perf_counter() - t1) / len(taking_part)
        for i in taking_part:
            m = loop.members[i]
            tr, te, logits = evals[i]
            end_epoch(m.result, curve_row(epoch, m.lr, m.loss_sum, m.done_steps, tr, te, train_s, eval_s), logits)
            if m.active:
                m.result.steps = step
                if check_fit(m.result, stop_at_fit, tr.acc, step):
                    _stop_fitted(loop, i)
    for i, m in enumerate(loop.members):
        if m.fitted is not None:
            model.load_slice(i, m.fitted)
        m.step_curve.close(m.result.steps)  # a model's steps end where it stopped or diverged
    return [m.result for m in loop.members]


def _stop_fitted(loop: _Loop, i: int) -> None:
    """Model ``i`` is fit: keep its weights, then make its slice inert (zero, no optimizer state)."""
    m = loop.members[i]
    m.active = False
    m.fitted = loop.model.slice_state(i)
    loop.model.zero_slice(i)
    zero_optimizer_slice(loop.optimizer, i)


def _train_epoch(loop: _Loop, x: torch.Tensor, y: torch.Tensor, epoch: int, step: int) -> int:
    """One epoch of every active model; returns the step counter after it."""
    n = x.shape[0]
    steps_per_epoch = math.ceil(n / loop.batch_size)
    lr = loop.schedule(step, epoch)
    for m in loop.members:
        if m.active:
            m.lr, m.loss_sum, m.done_steps = lr, 0.0, steps_per_epoch
    perms = _permutations(loop, n, x.device)
    for b in range(steps_per_epoch):
        idx = perms[:, b * loop.batch_size : (b + 1) * loop.batch_size]
        xb, yb = _batch(loop, x, y, idx)
        lr = lr_step(loop.optimizer, loop.schedule, step, epoch)
        losses = per_model_loss(loop.model(xb), yb, loop.label_smoothing)
        values = losses.tolist()  # one sync per step, as train()'s loss.item()
        newly = _check_divergence(loop, values, lr, epoch, step, b)
        active = [i for i, m in enumerate(loop.members) if m.active]
        if not active:
            break
        _optimizer_step(loop, losses, active)
        for i in newly:  # after the step: their parameters were saved by the forward pass
            loop.model.zero_slice(i)
            zero_optimizer_slice(loop.optimizer, i)
        for i in active:
            loop.members[i].loss_sum += values[i]
            loop.members[i].step_curve.add(values[i], step + 1)
        step += 1
    return step


def _permutations(loop: _Loop, n: int, device: torch.device) -> torch.Tensor:
    """``[K, n]``: this epoch's order of each model; a fixed order for models that ended (their
    order stream is not drawn from again, as a run that ended draws nothing more)."""
    rows = [
        torch.randperm(n, generator=g, device=g.device).to(device) if m.active else torch.arange(n, device=device)
        for g, m in zip(loop.orders, loop.members)
    ]
    return torch.stack(rows)


def _batch(loop: _Loop, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's own mini-batch: inputs ``[K, b, features]``, labels ``[K, b]``."""
    k, b = idx.shape
    yb = torch.gather(y, 1, idx) if y.dim() == 2 else y[idx]  # [K, N]: each model's own labels
    if all(a is None for a in loop.augments):
        return x.reshape(x.shape[0], -1)[idx], yb
    rows = []
    for i in range(k):  # augmentations draw from per-model generators, one model at a time
        xi = x[idx[i]]
        augment = loop.augments[i]
        if augment is not None and loop.members[i].active:
            xi = augment(xi)
        rows.append(xi.reshape(b, -1))
    return torch.stack(rows), yb


def _check_divergence(loop: _Loop, values: list[float], lr: float, epoch: int, step: int, b: int) -> list[int]:
    """Mark the active models whose loss is non-finite as diverged; returns their indices."""
    newly = []
    for i, m in enumerate(loop.members):
        if not m.active:
            continue
        m.lr = lr
        reason = divergence(values[i], epoch, step)
        if reason:
            m.active = False
            m.done_steps = b
            m.result.status, m.result.reason, m.result.steps = "diverged", reason, step
            m.snapshot = loop.model.slice_state(i)
            newly.append(i)
    return newly


def _optimizer_step(loop: _Loop, losses: torch.Tensor, active: list[int]) -> None:
    """Backward pass of Σ mean-CE over the active models, then one optimizer step for all."""
    if len(active) == len(loop.members):
        total = losses.sum()
    else:  # indexing gives the excluded models an exactly zero gradient (a NaN·0 mask would not)
        total = losses[torch.tensor(active, device=losses.device)].sum()
    loop.optimizer.zero_grad(set_to_none=True)
    total.backward()
    loop.optimizer.step()


def _evaluate_stack(
    loop: _Loop,
    which: list[int],
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    batch_size: int,
) -> dict[int, tuple[SplitEval, SplitEval, torch.Tensor]]:
    """Train and test metrics (and test logits) of models ``which``, each split on its own.

    A model that diverged during this epoch is evaluated with its weights from that moment, then
    zeroed again.
    """
    model = loop.model
    restored = [i for i in which if loop.members[i].snapshot is not None]
    for i in restored:
        model.load_slice(i, loop.members[i].snapshot)
    train_logits = model.predict(x_train, batch_size)
    test_logits = model.predict(x_test, batch_size)
    for i in restored:
        model.zero_slice(i)
        loop.members[i].snapshot = None
    return {
        i: (
            metrics_from_logits(train_logits[i], y_train[i] if y_train.dim() == 2 else y_train, "train"),
            metrics_from_logits(test_logits[i], y_test, "test"),
            test_logits[i].clone(),
        )
        for i in which
    }
