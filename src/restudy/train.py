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

from .errors import RestudyError
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

    def final_metrics(self, n_test: int, n_train: int) -> dict[str, Any]:
        """The run's metrics as its record stores them: the last epoch's, per split."""
        last = self.curves[-1] if self.curves else {}
        return {
            "test_acc": last.get("test_acc"), "train_acc": last.get("train_acc"),
            "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
            "diverged": 1.0 if self.status == "diverged" else 0.0,
            "epochs_done": self.epochs_done, "n_test": n_test, "n_train": n_train,
        }
    # Snapshot ensembles (originals.md §4.5): test logits (and, if asked, CPU copies of the
    # state_dict) at the end of each requested epoch, in epoch order; shorter if the run diverged.
    snapshot_epochs: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    snapshot_states: list[dict[str, torch.Tensor]] = field(default_factory=list)


def train(model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
          x_test: torch.Tensor, y_test: torch.Tensor, *,
          optimizer: torch.optim.Optimizer, schedule: Callable[[int, int], float], epochs: int,
          batch_size: int, order: torch.Generator, hooks: Sequence[StepHook] = (),
          augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
          eval_batch_size: int = 1024, label_smoothing: float = 0.0,
          memory_format: torch.memory_format = torch.contiguous_format,
          on_epoch: Callable[[dict[str, Any]], None] | None = None,
          snapshot_epochs: Sequence[int] = (), keep_snapshot_states: bool = False) -> TrainResult:
    """Train ``model`` in place for ``epochs`` epochs and evaluate it after each.

    Args:
        order: generator of the data-order stream (one ``randperm`` per epoch).
        hooks: objects whose ``step()`` runs after every ``optimizer.step()``.
        augment: batch-wise augmentation (draws from its own generator), or None.
        snapshot_epochs: 1-based epochs at whose end the test logits are kept as snapshots
            (the ends of the cycles of a snapshot schedule, originals.md §4.5).
        keep_snapshot_states: also keep a CPU copy of the model's ``state_dict`` at each snapshot
            (needed to evaluate each snapshot again later, e.g. with test-time augmentation).
    Returns:
        A ``TrainResult``; its ``test_logits`` are the final per-example test logits and its
        ``snapshots`` the test logits at the end of each epoch in ``snapshot_epochs`` (the
        snapshot at the last epoch is the final ``test_logits``).
    """
    wanted = _check_snapshot_epochs(snapshot_epochs, epochs)
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
                group["lr"] = lr * group.get("lr_mult", 1.0)
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
        if result.status == "finished" and epoch + 1 in wanted:
            _keep_snapshot(result, model, epoch + 1, test_logits, keep_snapshot_states)
        if on_epoch is not None:
            on_epoch(row)
        if result.status != "finished":
            break
    result.steps = step
    result.test_logits = test_logits
    return result


def _check_snapshot_epochs(snapshot_epochs: Sequence[int], epochs: int) -> set[int]:
    """The requested snapshot epochs as a set, after checking they lie in ``1..epochs``."""
    wanted = set(snapshot_epochs)
    bad = [e for e in wanted if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= epochs]
    if bad or len(wanted) != len(snapshot_epochs):
        raise RestudyError("snapshot epochs must be distinct epochs of the run", where="snapshot_epochs",
                           got=list(snapshot_epochs), allowed=f"1..{epochs}")
    return wanted


def _keep_snapshot(result: TrainResult, model: torch.nn.Module, epoch: int,
                   test_logits: torch.Tensor, keep_state: bool) -> None:
    """Record the end-of-epoch test logits (and a CPU state_dict copy) as a snapshot."""
    result.snapshot_epochs.append(epoch)
    result.snapshots.append(test_logits)
    if keep_state:
        result.snapshot_states.append(
            {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
