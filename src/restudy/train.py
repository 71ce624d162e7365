"""The training loop, shared by every study.

It knows nothing about studies: it receives a model, tensors, an optimizer, a schedule, a
generator for data order and optional method hooks (e.g. an ENorm cycle after each optimizer step).
A non-finite loss ends the run with status ``diverged``; train and test are evaluated after every
epoch and recorded separately.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.nn.functional as F

from .evaluate import evaluate


class StepHook(Protocol):
    def step(self) -> None: ...


@dataclass
class TrainResult:
    status: str                      # "finished" or "diverged"
    reason: str = ""
    curves: list[dict[str, Any]] = field(default_factory=list)
    epochs_done: int = 0
    steps: int = 0
    test_logits: torch.Tensor | None = None
    train_wall_s: float = 0.0
    eval_wall_s: float = 0.0


def train(model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
          x_test: torch.Tensor, y_test: torch.Tensor, *,
          optimizer: torch.optim.Optimizer, schedule: Callable[[int, int], float], epochs: int,
          batch_size: int, order: torch.Generator, hooks: Sequence[StepHook] = (),
          augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
          eval_batch_size: int = 1024, label_smoothing: float = 0.0,
          memory_format: torch.memory_format = torch.contiguous_format,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``model`` in place for ``epochs`` epochs and evaluate it after each.

    Args:
        order: generator of the data-order stream (one ``randperm`` per epoch).
        hooks: objects whose ``step()`` runs after every ``optimizer.step()``.
        augment: batch-wise augmentation (draws from its own generator), or None.
    Returns:
        A ``TrainResult``; its ``test_logits`` are the final per-example test logits.
    """
    n = x_train.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    result = TrainResult(status="finished")
    step = 0
    test_logits = None
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        lr = schedule(step, epoch)
        perm = torch.randperm(n, generator=order, device=order.device).to(x_train.device)
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if augment is not None:
                xb = augment(xb)
            if xb.dim() == 4:
                xb = xb.contiguous(memory_format=memory_format)
            lr = schedule(step, epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
            loss_f = loss.item()  # one sync per step, as cheap as any finiteness check on a tensor
            if not math.isfinite(loss_f):
                result.status = "diverged"
                result.reason = f"non-finite loss ({loss_f}) at epoch {epoch}, step {step}"
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for hook in hooks:
                hook.step()
            loss_sum += loss_f
            step += 1
        train_s = time.perf_counter() - t0
        result.train_wall_s += train_s
        # Evaluate both splits with the weights as they are now; never mixed.
        t1 = time.perf_counter()
        tr, _ = evaluate(model, x_train, y_train, "train", eval_batch_size, memory_format)
        te, test_logits = evaluate(model, x_test, y_test, "test", eval_batch_size, memory_format)
        eval_s = time.perf_counter() - t1
        result.eval_wall_s += eval_s
        done_steps = steps_per_epoch if result.status == "finished" else (b if steps_per_epoch else 0)
        row = {"epoch": epoch + 1, "lr": lr,
               "train_loss_running": loss_sum / done_steps if done_steps else float("nan"),
               "train_acc": tr.acc, "train_loss": tr.loss, "test_acc": te.acc, "test_loss": te.loss,
               "train_s": train_s, "eval_s": eval_s}
        result.curves.append(row)
        result.epochs_done = epoch + 1 if result.status == "finished" else epoch
        if on_epoch is not None:
            on_epoch(row)
        if result.status != "finished":
            break
    result.steps = step
    result.test_logits = test_logits
    return result
