"""The training loop, shared by every study: one model (:func:`train`); K stacked ones train in
:func:`restudy.training.loop_stacked.train_stacked`, built from the same pieces.

It knows nothing about studies: it receives a model, tensors, an optimizer, a schedule, a
generator for data order and optional method hooks (e.g. an ENorm cycle after each optimizer step).
A non-finite loss ends the run with status ``diverged``; train and test are evaluated after every
epoch and recorded separately (the train split whole, by default, or its first n examples, or not:
``eval_train``, for data sets too large to evaluate every epoch). With ``stop_at_fit`` (a train
accuracy in %), a run whose whole training set is fit at an epoch's end stops there; the step
count then is its ``fit_step``.
With ``curve_every_steps`` N > 0, the mean training loss over every N optimizer steps is kept as
the run's ``step_curve`` (rows ``{step, loss, n}``, a shorter last window when training ends
mid-window; :class:`StepCurve`), beside the per-epoch ``curves``.

The two loops share, written once here: the lr step (:func:`lr_step`), the divergence check
(:func:`divergence`), the fit check (:func:`check_fit`), the per-step curve (:class:`StepCurve`),
the curve row (:func:`curve_row`, :func:`end_epoch`) and the filling of a run record from a
result (:func:`fill_record`). A feature of training is added in these functions, or in both loops
side by side; what the stacked loop does not support is declared in ``restudy.execution.stacked.NOT_STACKED``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F

from ..errors import RestudyError
from .batches import Augment
from .evaluate import SplitEval, evaluate
from .optim import Schedule

if TYPE_CHECKING:
    from ..storage.record import RunRecord
    from .devices import Amp


class StepHook(Protocol):
    def step(self) -> None: ...


@dataclass
class TrainResult:
    status: str  # "finished" or "diverged"
    reason: str = ""
    curves: list[dict[str, Any]] = field(default_factory=list)
    epochs_done: int = 0
    steps: int = 0
    test_logits: torch.Tensor | None = None
    train_wall_s: float = 0.0
    eval_wall_s: float = 0.0
    # Snapshot ensembles (Summers & Dinneen's accelerated ensembling): test logits (and, if asked, CPU
    # copies of the state_dict) at the end of each requested epoch, in epoch order; shorter if the run
    # diverged.
    snapshot_epochs: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    snapshot_states: list[dict[str, torch.Tensor]] = field(default_factory=list)
    # Time to fit: None when not asked for; else the steps and epochs until the whole training set
    # was fit (both None while it never was).
    fit_tracked: bool = False
    fit_step: int | None = None
    fit_epoch: int | None = None
    # Per-step training loss: {step, loss, n} rows, one per window of N steps (empty when off).
    step_curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def final_metrics(self, n_test: int, n_train: int, n_classes: int | None = None) -> dict[str, Any]:
        """The run's metrics as its record stores them: the last epoch's, per split, and
        ``test_acc_best``, the highest test accuracy over the evaluated epochs (the original code's
        "Best Acc", which some papers report); ``n_classes`` sets chance, 100 / n_classes %."""
        last = self.curves[-1] if self.curves else {}
        fit = {"fit_step": self.fit_step, "fit_epoch": self.fit_epoch} if self.fit_tracked else {}
        return (
            fit
            | {
                "test_acc": last.get("test_acc"),
                "test_acc_best": _best(self.curves, "test_acc"),
                "train_acc": last.get("train_acc"),
                "test_loss": last.get("test_loss"),
                "train_loss": last.get("train_loss"),
                "diverged": 1.0 if self.status == "diverged" else 0.0,
                "epochs_done": self.epochs_done,
                "n_test": n_test,
                "n_train": n_train,
            }
            | ({"n_classes": n_classes} if n_classes else {})
        )


def _best(curves: list[dict[str, Any]], key: str) -> float | None:
    """The highest finite ``key`` over the curve rows (None when no row has one)."""
    values = [r[key] for r in curves if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
    return max(values) if values else None


# --------------------------------------------------------------------------- shared by both loops


def lr_step(optimizer: torch.optim.Optimizer, schedule: Schedule, step: int, epoch: int) -> float:
    """Set every parameter group's lr to ``schedule(step, epoch)`` times the group's ``lr_mult``
    (1 when it has none); returns the scheduled lr."""
    lr = schedule(step, epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)
    return lr


def divergence(loss: float, epoch: int, step: int) -> str:
    """Why a run with this step's ``loss`` diverged, or "" when the loss is finite."""
    if math.isfinite(loss):
        return ""
    return f"non-finite loss ({loss}) at epoch {epoch}, step {step}"


def check_fit(result: TrainResult, threshold: float | None, train_acc: float, steps: int) -> bool:
    """After an evaluated epoch: whether the run is now fit (its train accuracy on the whole
    training set reached ``threshold`` %); records the step and epoch when so. Never for a diverged
    run, or without a threshold."""
    if threshold is None or not result.finished or not train_acc >= threshold:
        return False
    result.fit_step, result.fit_epoch = steps, result.epochs_done
    return True


@dataclass
class StepCurve:
    """The mean training loss over every ``every`` optimizer steps (0: off).

    Each row is ``{"step": s, "loss": mean, "n": k}``: the mean of the losses of the ``k`` steps
    that ended with step ``s`` (1-based, counted over the whole run); ``k`` is ``every`` except in
    a last window cut short by the end of training. The losses are those the loop already has
    (the loss of each optimizer step's batch, before the step), summed in step order.
    """

    every: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    _sum: float = 0.0
    _n: int = 0

    def add(self, loss: float, step: int) -> None:
        """The loss of the step that makes ``step`` steps done."""
        if self.every <= 0:
            return
        self._sum += loss
        self._n += 1
        if self._n == self.every:
            self.close(step)

    def close(self, step: int) -> None:
        """End the current window at ``step`` steps done (nothing when it is empty)."""
        if self._n:
            self.rows.append({"step": step, "loss": self._sum / self._n, "n": self._n})
            self._sum, self._n = 0.0, 0


def curve_row(
    epoch: int,
    lr: float,
    loss_sum: float,
    done_steps: int,
    tr: SplitEval | None,
    te: SplitEval,
    train_s: float,
    eval_s: float,
    train_n: int | None = None,
) -> dict[str, Any]:
    """One epoch's curve row (``epoch`` is 0-based, the row's 1-based); ``train_loss_running`` is
    the mean training loss over the steps done this epoch (NaN when none was). ``tr`` is None when
    the train split is not evaluated; ``train_n`` (the train examples evaluated) is recorded when
    not the whole split was."""
    row = {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss_running": loss_sum / done_steps if done_steps else float("nan"),
        "train_acc": tr.acc if tr is not None else None,
        "train_loss": tr.loss if tr is not None else None,
        "test_acc": te.acc,
        "test_loss": te.loss,
        "train_s": train_s,
        "eval_s": eval_s,
    }
    if train_n is not None:
        row["train_n"] = train_n
    return row


def end_epoch(result: TrainResult, row: dict[str, Any], test_logits: torch.Tensor) -> None:
    """Record an evaluated epoch in ``result``: its curve row, times, test logits and, while the run
    has not diverged, the epoch as done (a diverged run's last epoch is evaluated, not done)."""
    result.curves.append(row)
    result.train_wall_s += row["train_s"]
    result.eval_wall_s += row["eval_s"]
    result.test_logits = test_logits
    result.epochs_done = row["epoch"] if result.finished else row["epoch"] - 1


def fill_record(
    record: RunRecord, result: TrainResult, n_test: int, n_train: int, n_classes: int | None = None
) -> None:
    """Status, reason, curves, train/eval times and final metrics of a trained run, in its record."""
    record.status = result.status
    record.reason = result.reason
    record.curves = result.curves
    record.step_curve = result.step_curve
    record.timings.update(train_s=result.train_wall_s, eval_s=result.eval_wall_s)
    record.metrics = result.final_metrics(n_test, n_train, n_classes)


# --------------------------------------------------------------------------- one model


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Hinton, Vinyals & Dean (2015), §2: ``(1 − alpha)·CE(logits, labels) + alpha·T²·KL(p_T ‖ q_T)``
    with ``p_T``, ``q_T`` the teacher's and the student's softmax at temperature T (T² keeps the
    soft term's gradients on the scale of the hard one's as T changes)."""
    ce = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    t = temperature
    kl = F.kl_div(
        F.log_softmax(logits.float() / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return (1.0 - alpha) * ce + alpha * t * t * kl


def _loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    inputs: torch.Tensor,
    label_smoothing: float,
    teacher: torch.nn.Module | None,
    distill: tuple[float, float],
) -> torch.Tensor:
    """The training loss of one batch: cross-entropy, or with a teacher the distillation loss on
    the teacher's outputs for the same (augmented) inputs."""
    if teacher is None:
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    with torch.no_grad():
        soft = teacher(inputs)
    return distillation_loss(logits, labels, soft, *distill, label_smoothing=label_smoothing)


def train(
    model: torch.nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    epochs: int,
    batch_size: int,
    order: torch.Generator,
    hooks: Sequence[StepHook] = (),
    augment: Augment | None = None,
    eval_batch_size: int = 1024,
    label_smoothing: float = 0.0,
    memory_format: torch.memory_format = torch.contiguous_format,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    snapshot_epochs: Sequence[int] = (),
    keep_snapshot_states: bool = False,
    stop_at_fit: float | None = None,
    curve_every_steps: int = 0,
    eval_train: int | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    amp: Amp | None = None,
    teacher: torch.nn.Module | None = None,
    distill: tuple[float, float] = (1.0, 0.5),
) -> TrainResult:
    """Train ``model`` in place for ``epochs`` epochs and evaluate it after each.

    Args:
        order: generator of the data-order stream (one ``randperm`` per epoch).
        hooks: objects whose ``step()`` runs after every ``optimizer.step()``.
        augment: batch-wise augmentation (draws from its own generator), or None.
        snapshot_epochs: 1-based epochs at whose end the test logits are kept as snapshots
            (the ends of the cycles of a snapshot schedule, as Summers & Dinneen's ``snapshot5``).
        keep_snapshot_states: also keep a CPU copy of the model's ``state_dict`` at each snapshot
            (needed to evaluate each snapshot again later, e.g. with test-time augmentation).
        stop_at_fit: a train accuracy (%): stop after the first epoch at whose end the whole
            training set reaches it, recording ``fit_step``/``fit_epoch`` (None: train all epochs).
        curve_every_steps: keep the mean training loss of every N steps as ``step_curve`` (0: off).
        eval_train: train examples evaluated after each epoch: None all, 0 none, n the first n
            (rows then record ``train_n``); ``stop_at_fit`` needs all.
        forward: the training forward of ``model`` (a compiled one, setting ``compile``); None:
            ``model`` itself. Evaluation always calls ``model``.
        amp: mixed precision of the training step (setting ``precision``); None: fp32.
        teacher: a trained model whose outputs on each (augmented) batch are soft targets
            (knowledge distillation, :func:`distillation_loss`); None: the labels alone.
        distill: (temperature, alpha) of the distillation loss.
    Returns:
        A ``TrainResult``; its ``test_logits`` are the final per-example test logits and its
        ``snapshots`` the test logits at the end of each epoch in ``snapshot_epochs`` (the
        snapshot at the last epoch is the final ``test_logits``).
    """
    wanted = _check_snapshot_epochs(snapshot_epochs, epochs)
    if eval_train is not None and stop_at_fit is not None:
        raise RestudyError("stop_at_fit needs the whole train split evaluated", where="eval_train", got=eval_train)
    if getattr(augment, "at_decode", False):  # a crop of the original images (restudy.data.images)
        x_train, augment = augment.bind(x_train), None  # type: ignore[union-attr]
    n = x_train.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    result = TrainResult(status="finished", fit_tracked=stop_at_fit is not None)
    step_curve = StepCurve(curve_every_steps, result.step_curve)
    fwd = model if forward is None else forward
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        lr = schedule(step, epoch)
        perm = torch.randperm(n, generator=order, device=order.device).to(x_train.device)
        loss_sum, done_steps = 0.0, steps_per_epoch
        # a streamed split decodes the next batch while this one trains (restudy.data.images)
        feed = x_train.batches(perm, batch_size) if hasattr(x_train, "batches") else None
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            xb, yb = x_train[idx] if feed is None else next(feed), y_train[idx]
            if augment is not None:
                xb = augment(xb)
            if xb.dim() == 4:
                xb = xb.contiguous(memory_format=memory_format)
            lr = lr_step(optimizer, schedule, step, epoch)
            if amp is None:
                loss = _loss(fwd(xb), yb, xb, label_smoothing, teacher, distill)
            else:
                with amp.autocast():
                    loss = _loss(fwd(xb), yb, xb, label_smoothing, teacher, distill)
            loss_f = loss.item()  # one sync per step, as cheap as any finiteness check on a tensor
            reason = divergence(loss_f, epoch, step)
            if reason:
                result.status, result.reason, done_steps = "diverged", reason, b
                break
            optimizer.zero_grad(set_to_none=True)
            if amp is None:
                loss.backward()
                optimizer.step()
            else:
                amp.backward_step(loss, optimizer)
            for hook in hooks:
                hook.step()
            loss_sum += loss_f
            step += 1
            step_curve.add(loss_f, step)
        if feed is not None:
            feed.close()  # after a divergence: decode no further batch
        train_s = time.perf_counter() - t0
        # Evaluate both splits with the weights as they are now; never mixed.
        t1 = time.perf_counter()
        tr = _evaluate_train(model, x_train, y_train, eval_train, eval_batch_size, memory_format)
        te, test_logits = evaluate(model, x_test, y_test, "test", eval_batch_size, memory_format)
        train_n = None if eval_train is None else (tr.n if tr is not None else 0)
        row = curve_row(epoch, lr, loss_sum, done_steps, tr, te, train_s, time.perf_counter() - t1, train_n)
        end_epoch(result, row, test_logits)
        if result.finished and epoch + 1 in wanted:
            _keep_snapshot(result, model, epoch + 1, test_logits, keep_snapshot_states)
        if on_epoch is not None:
            on_epoch(row)
        if not result.finished or (tr is not None and check_fit(result, stop_at_fit, tr.acc, step)):
            break
    result.steps = step
    step_curve.close(step)
    return result


def _evaluate_train(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    n: int | None,
    batch_size: int,
    memory_format: torch.memory_format,
) -> SplitEval | None:
    """The train split's metrics: all of it (``n`` None), none (0) or its first ``n`` examples."""
    if n == 0:
        return None
    if n is not None:
        # a streamed split stays streamed: its first n images are decoded batch by batch
        x, y = (x.head(n) if hasattr(x, "head") else x[:n]), y[:n]
    return evaluate(model, x, y, "train", batch_size, memory_format)[0]


def _check_snapshot_epochs(snapshot_epochs: Sequence[int], epochs: int) -> set[int]:
    """The requested snapshot epochs as a set, after checking they lie in ``1..epochs``."""
    wanted = set(snapshot_epochs)
    bad = [e for e in wanted if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= epochs]
    if bad or len(wanted) != len(snapshot_epochs):
        raise RestudyError(
            "snapshot epochs must be distinct epochs of the run",
            where="snapshot_epochs",
            got=list(snapshot_epochs),
            allowed=f"1..{epochs}",
        )
    return wanted


def _keep_snapshot(
    result: TrainResult, model: torch.nn.Module, epoch: int, test_logits: torch.Tensor, keep_state: bool
) -> None:
    """Record the end-of-epoch test logits (and a CPU state_dict copy) as a snapshot."""
    result.snapshot_epochs.append(epoch)
    result.snapshots.append(test_logits)
    if keep_state:
        result.snapshot_states.append({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
