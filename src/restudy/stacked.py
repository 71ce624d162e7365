"""Many models at once: K seeds of a tiny ``fc`` net trained as one stacked model.

On a small CPU a tiny model's training step is dominated by Python and dispatcher overhead, not by
arithmetic; stacking K such models into batched matmuls (``torch.baddbmm`` over weights
``[K, in, out]``) runs them 2-3x faster than a loop over models (shared/research/perf.md §4;
benchmarks/bench_stacked.py). Each of the K models keeps everything that makes it a separate run:

* its own initialization: built exactly as a single run builds it (``scoped_seed(seeds["init"])`` +
  ``registry.create("model", ...)``), then its weights are copied into slice k of the stack;
* its own data order (one ``randperm`` per epoch from its own order generator; every model takes
  its own mini-batch each step) and its own augmentation stream;
* the same optimizer semantics: SGD (momentum, nesterov, weight decay) and Adam act elementwise, so
  one optimizer over the stacked ``[K, ...]`` parameters with loss ``Σ_k mean-CE_k`` gives every
  model exactly its own update. Cross-parameter couplings (global-norm clipping, LARS) would break
  this; the built-in optimizers have none.

Results therefore equal training the K models one by one up to float32 rounding (the batched and
the single matmul kernels round differently; tests/test_stacked.py states the tolerance measured).

What may be stacked (:func:`stackable`): the ``fc`` model with ``model.norm`` ``none`` or ``bn``
(BatchNorm with per-model batch statistics: the K models' channels are laid side by side, so one
``batch_norm`` call normalises each model over its own batch), no method (a method such as ENorm
hooks into one model), identical settings across the stack apart from seeds, and a step small
enough (``STACK_FLOP_LIMIT``) for stacking to pay off.
"""

from __future__ import annotations

import functools
import json
import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import registry
from .errors import RestudyError
from .evaluate import SplitEval, metrics_from_logits
from .plan import RunSpec
from .record import RunRecord
from .safeio import save_tensors, write_json
from .train import TrainResult
from .artifacts import LOGITS_FILE, RUN_FILE
from .worker import _args, _freeze, _now, prepare

__all__ = ["STACK_FLOP_LIMIT", "Stackability", "StackedBatchNorm", "StackedMLP", "build_stack", "check_group",
           "data_shape", "execute_stack", "group_key", "group_specs", "layer_sizes", "per_model_loss", "stackable",
           "step_flops", "structural_reason", "train_stacked", "zero_optimizer_slice"]

# Above a few 1e7 FLOP per training step one model's matmuls already keep a core busy and stacking
# stops paying (perf.md §4: 1.0-1.1x for a 3072-512-10 MLP at B=32, 2.1-2.7x at width 64;
# benchmarks/bench_stacked.py: 1.1-1.2x at 5.9e7 FLOP, K=8, 1 thread; the enorm small study,
# 5 seeds per group at 0.9e7-1.1e8 FLOP: 179 s stacked vs 170 s in the pool, measured side by side).
STACK_FLOP_LIMIT = 2e7
STACKABLE_MODELS = ("fc",)
STACKABLE_NORMS = ("none", "bn")

Augment = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- what may be stacked


@dataclass(frozen=True)
class Stackability:
    """Whether a run may be trained in a stack, and why not. Truthy when it may."""

    ok: bool
    reason: str = ""
    flops: float | None = None     # estimated FLOP per training step of one model, when known

    def __bool__(self) -> bool:
        return self.ok


def structural_reason(spec: RunSpec) -> str:
    """Why ``spec`` cannot be trained stacked at all ("" when it can); ignores its size."""
    s = spec.settings
    if s.get("model") not in STACKABLE_MODELS:
        return f"model '{s.get('model')}' is not stackable (only {', '.join(STACKABLE_MODELS)})"
    norm = s.get("model.norm", "none")
    if norm not in STACKABLE_NORMS:
        return f"model.norm '{norm}' is not stackable"
    if s.get("method", "none") != "none":
        return f"method '{s.get('method')}' hooks into each model separately"
    if s.get("tta"):
        return "test-time augmentation is evaluated per model (single-run path)"
    if s.get("schedule") == "snapshot":
        return "snapshot ensembles keep per-model snapshots (single-run path)"
    if s.get("optimizer.lr_mult_bias_bn", 1.0) != 1.0:
        return "per-group learning rates (optimizer.lr_mult_bias_bn) are not stacked"
    return ""


@functools.lru_cache(maxsize=16)
def _data_shape(name: str, args_items: tuple[tuple[str, Any], ...],
                module: str | None) -> tuple[tuple[int, ...], int]:
    """Input shape and class count of a data set. Only the shape is kept, not the tensors: the
    driver asks this once per data set and should not hold a copy of CIFAR for the whole study."""
    from .data import load_dataset

    registry.load_builtins()
    if module:
        registry.import_study_module(module)
    data = load_dataset(name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in args_items})
    return tuple(data.input_shape), int(data.num_classes)


def data_shape(spec: RunSpec) -> tuple[tuple[int, ...], int]:
    """``(input_shape, num_classes)`` of the data set ``spec`` trains on (loads it once)."""
    s = spec.settings
    items = tuple(sorted((k, _freeze(v)) for k, v in _args(s, "data").items()))
    return _data_shape(s["data"], items, spec.study_module)


def layer_sizes(settings: dict[str, Any], input_shape: Sequence[int], num_classes: int) -> list[int]:
    """Widths of the ``fc`` net's activations, input first: [in, width, ..., width, classes]."""
    hidden = int(settings.get("model.hidden", 1))
    width = int(settings.get("model.width", 500))
    return [math.prod(input_shape)] + [width] * (hidden + 1) + [num_classes]


def step_flops(batch_size: int, sizes: Sequence[int]) -> float:
    """Estimated FLOP of one training step of one model: 2·3·batch·Σ in·out (forward, and twice
    that for the backward pass; elementwise work is ignored)."""
    return 6.0 * batch_size * sum(a * b for a, b in zip(sizes, sizes[1:]))


def stackable(spec: RunSpec, input_shape: Sequence[int] | None = None,
              num_classes: int | None = None) -> Stackability:
    """Whether ``spec`` may be trained in a stack with other seeds of the same settings.

    Args:
        spec: the run.
        input_shape, num_classes: the data set's; looked up (by loading it once) when not given.

    Returns:
        A truthy :class:`Stackability` when it may; otherwise a falsy one with the reason.
    """
    reason = structural_reason(spec)
    if reason:
        return Stackability(False, reason)
    if input_shape is None or num_classes is None:
        try:
            input_shape, num_classes = data_shape(spec)
        except Exception as e:  # the pool path will report the data problem run by run
            return Stackability(False, f"cannot determine the input size: {type(e).__name__}: {e}")
    try:
        flops = step_flops(spec.settings["batch_size"], layer_sizes(spec.settings, input_shape, num_classes))
    except (TypeError, ValueError) as e:  # e.g. a non-numeric width: building the model will say so
        return Stackability(False, f"cannot estimate the step size: {e}")
    if flops > STACK_FLOP_LIMIT:
        return Stackability(False, f"about {flops:.2g} FLOP per step > {STACK_FLOP_LIMIT:.0e}", flops)
    return Stackability(True, "", flops)


def group_key(spec: RunSpec) -> str:
    """Runs with equal keys differ only in their seeds, so they may share a stack."""
    return json.dumps({"settings": spec.settings, "kernels": spec.kernels, "module": spec.study_module},
                      sort_keys=True, default=str)


def group_specs(specs: Sequence[RunSpec]) -> list[list[int]]:
    """Indices of ``specs`` grouped by :func:`group_key`, groups in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(specs):
        groups.setdefault(group_key(s), []).append(i)
    return list(groups.values())


def check_group(specs: Sequence[RunSpec]) -> None:
    """Raise a ``RestudyError`` unless ``specs`` may be trained as one stack (size aside)."""
    if not specs:
        raise RestudyError("a stack needs at least one run")
    reason = structural_reason(specs[0])
    if reason:
        raise RestudyError(f"not stackable: {reason}", where=specs[0].key)
    keys = {group_key(s) for s in specs}
    if len(keys) != 1:
        raise RestudyError("a stack's runs must have the same settings and kernels (only seeds differ)",
                           got=[s.key for s in specs])


# --------------------------------------------------------------------------- the stacked model


class StackedBatchNorm(nn.Module):
    """K ``BatchNorm1d(width)`` side by side, each with its own batch statistics.

    The input ``[K, B, W]`` is laid out as ``[B, K·W]``: one ``batch_norm`` call then normalises
    each (model, channel) column over that model's own batch, exactly as K separate layers would.
    """

    def __init__(self, norms: Sequence[nn.BatchNorm1d]) -> None:
        super().__init__()
        first = norms[0]
        if not (first.affine and first.track_running_stats) or first.momentum is None:
            raise RestudyError("only affine BatchNorm1d with running statistics and a fixed momentum "
                               "can be stacked", where="model.norm")
        self.momentum = float(first.momentum)
        self.eps = float(first.eps)
        self.weight = nn.Parameter(torch.stack([n.weight.detach() for n in norms]).clone())
        self.bias = nn.Parameter(torch.stack([n.bias.detach() for n in norms]).clone())
        self.register_buffer("running_mean", torch.stack([n.running_mean for n in norms]).clone())
        self.register_buffer("running_var", torch.stack([n.running_var for n in norms]).clone())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        k, b, w = h.shape
        flat = h.transpose(0, 1).reshape(b, k * w)
        # view(-1) of the buffers: batch_norm updates the running statistics in place.
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1),
                           self.weight.view(-1), self.bias.view(-1), self.training, self.momentum, self.eps)
        return out.view(b, k, w).transpose(0, 1)

    def eval_one(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Model ``k``'s layer in eval mode (running statistics) on ``[B, W]``."""
        return F.batch_norm(h, self.running_mean[k], self.running_var[k], self.weight[k], self.bias[k],
                            False, 0.0, self.eps)


def _fc_layout(model: nn.Module) -> list[tuple[nn.Linear, nn.BatchNorm1d | None]]:
    """(Linear, BatchNorm or None) per layer of an ``fc`` net: Flatten, (Linear [BN] ReLU)*, Linear.

    Raises:
        RestudyError: the module does not have that layout.
    """
    mods = list(model.children())
    bad = RestudyError("model is not an fc net (Flatten, Linear [BatchNorm1d] ReLU ..., Linear)",
                       where="model", got=[type(m).__name__ for m in mods])
    if not mods or not isinstance(mods[0], nn.Flatten):
        raise bad
    layers: list[tuple[nn.Linear, nn.BatchNorm1d | None]] = []
    i = 1
    while i < len(mods):
        if not isinstance(mods[i], nn.Linear):
            raise bad
        lin, i = mods[i], i + 1
        norm = mods[i] if i < len(mods) and isinstance(mods[i], nn.BatchNorm1d) else None
        i += norm is not None
        if i < len(mods):  # a hidden layer ends with its ReLU
            if not isinstance(mods[i], nn.ReLU):
                raise bad
            i += 1
        elif norm is not None:
            raise bad
        layers.append((lin, norm))
    return layers


class StackedMLP(nn.Module):
    """K ``fc`` nets of one architecture as batched matmuls.

    Attributes:
        weights: per layer, ``[K, in, out]`` (the transposed ``nn.Linear`` weights).
        biases: per layer, ``[K, 1, out]``; empty when the nets have no bias.
        norms: per hidden layer, a :class:`StackedBatchNorm`; empty without BatchNorm.
    Input: ``[K, B, features]``; output: logits ``[K, B, classes]``.
    """

    def __init__(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] = (),
                 norms: Sequence[StackedBatchNorm] = ()) -> None:
        super().__init__()
        if (biases and len(biases) != len(weights)) or (norms and len(norms) != len(weights) - 1):
            raise RestudyError("one bias per layer and one norm per hidden layer, or none",
                               got=(len(weights), len(biases), len(norms)))
        self.weights = nn.ParameterList([nn.Parameter(w) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(b) for b in biases])
        self.norms = nn.ModuleList(norms)

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> "StackedMLP":
        """Stack (copies of) the weights of K ``fc`` nets of the same architecture."""
        layouts = [_fc_layout(m) for m in models]
        shapes = {tuple((tuple(lin.weight.shape), lin.bias is not None, bn is not None) for lin, bn in lay)
                  for lay in layouts}
        if len(shapes) != 1:
            raise RestudyError("the stacked nets differ in architecture", got=sorted(shapes))
        n_layers = len(layouts[0])
        weights = [torch.stack([lay[i][0].weight.detach().t() for lay in layouts]).contiguous()
                   for i in range(n_layers)]
        biases = ([torch.stack([lay[i][0].bias.detach()[None, :] for lay in layouts]).clone()
                   for i in range(n_layers)] if layouts[0][0][0].bias is not None else [])
        norms = ([StackedBatchNorm([lay[i][1] for lay in layouts]) for i in range(n_layers - 1)]
                 if layouts[0][0][1] is not None else [])
        return cls(weights, biases, norms)

    @property
    def size(self) -> int:
        """K, the number of stacked models."""
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        h = x
        for i, w in enumerate(self.weights):
            h = torch.baddbmm(self.biases[i], h, w) if self.biases else torch.bmm(h, w)
            if i < last:
                h = torch.relu(self.norms[i](h) if self.norms else h)
        return h

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``[K, N, classes]`` of every model for every row of ``x``, as in eval mode
        (BatchNorm uses its running statistics), whatever the module's mode.

        One model at a time with plain matmuls: at evaluation's large batches the per-op overhead
        that stacking saves is small, and one model's activations stay in cache while a stack's
        ``[K, batch, width]`` ones do not (measured 2x faster than the stacked forward).
        """
        flat = x.reshape(x.shape[0], -1)
        return torch.stack([torch.cat([self._forward_one(k, flat[i:i + batch_size])
                                       for i in range(0, flat.shape[0], batch_size)])
                            for k in range(self.size)]).float()

    @torch.no_grad()
    def features(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Model ``k``'s penultimate features (the input of its last layer), as
        :func:`restudy.worker.penultimate_features` gives for the single-run path."""
        return self._forward_one(k, x.reshape(x.shape[0], -1), penultimate=True).float()

    def _forward_one(self, k: int, h: torch.Tensor, penultimate: bool = False) -> torch.Tensor:
        """Model ``k`` alone on ``[B, in]`` (BatchNorm with running statistics: eval only)."""
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            if penultimate and i == last:
                return h
            h = torch.addmm(self.biases[i][k, 0], h, w[k]) if self.biases else h @ w[k]
            if i < last:
                h = torch.relu(self.norms[i].eval_one(k, h) if self.norms else h)
        return h

    def _slices(self) -> list[torch.Tensor]:
        """Every parameter and buffer; all have the model index as their first dimension."""
        return list(self.parameters()) + list(self.buffers())

    @torch.no_grad()
    def slice_state(self, k: int) -> list[torch.Tensor]:
        """A copy of model ``k``'s parameters and buffers (in :meth:`_slices` order)."""
        return [t[k].clone() for t in self._slices()]

    @torch.no_grad()
    def load_slice(self, k: int, state: Sequence[torch.Tensor]) -> None:
        """Write a :meth:`slice_state` back into model ``k``."""
        for t, s in zip(self._slices(), state):
            t[k].copy_(s)

    @torch.no_grad()
    def zero_slice(self, k: int) -> None:
        """Set model ``k``'s parameters and buffers to zero."""
        for t in self._slices():
            t[k].zero_()

    def linear_weights(self, k: int) -> list[torch.Tensor]:
        """Model ``k``'s weights in ``nn.Linear`` layout ``[out, in]`` (views)."""
        return [w[k].t() for w in self.weights]


def per_model_loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy of each model over its own batch: ``[K]`` from logits ``[K, B, C]``."""
    k, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none",
                         label_smoothing=label_smoothing)
    return ce.view(k, b).mean(1)


@torch.no_grad()
def zero_optimizer_slice(optimizer: torch.optim.Optimizer, k: int) -> None:
    """Zero model ``k``'s slice of every per-element optimizer state (momentum, Adam moments)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for v in optimizer.state.get(p, {}).values():
                if isinstance(v, torch.Tensor) and v.shape == p.shape:
                    v[k].zero_()


# --------------------------------------------------------------------------- training


@dataclass
class _Member:
    """Book-keeping of one stacked model, mirroring the locals of ``restudy.train.train``."""

    result: TrainResult = field(default_factory=lambda: TrainResult(status="finished"))
    active: bool = True
    lr: float = 0.0
    loss_sum: float = 0.0
    done_steps: int = 0
    snapshot: list[torch.Tensor] | None = None   # weights when it diverged, for its last evaluation


@dataclass
class _Loop:
    """What every epoch of :func:`train_stacked` needs."""

    model: StackedMLP
    optimizer: torch.optim.Optimizer
    schedule: Callable[[int, int], float]
    batch_size: int
    orders: Sequence[torch.Generator]
    augments: Sequence[Augment | None]
    label_smoothing: float
    members: list[_Member]


def train_stacked(model: StackedMLP, x_train: torch.Tensor, y_train: torch.Tensor,
                  x_test: torch.Tensor, y_test: torch.Tensor, *,
                  optimizer: torch.optim.Optimizer, schedule: Callable[[int, int], float], epochs: int,
                  batch_size: int, orders: Sequence[torch.Generator],
                  augments: Sequence[Augment | None] | None = None, eval_batch_size: int = 1024,
                  label_smoothing: float = 0.0) -> list[TrainResult]:
    """Train the K models of ``model`` in place, step for step as ``restudy.train.train`` would
    train each one alone, and evaluate them after each epoch.

    Divergence is per model: when model k's loss is non-finite it is marked ``diverged`` with
    ``train()``'s reason, excluded from the loss from that step on, its weights at that moment kept
    for its end-of-epoch evaluation (as ``train()`` evaluates a diverged run once more), and its
    live slice and optimizer state are then set to zero. A zero slice whose loss is excluded gets an
    exactly zero gradient, so SGD (weight decay, momentum) and Adam leave it at zero: it stays
    inert and finite while the others go on. The loop ends when every model has diverged.

    Timing: the stack's time of an epoch (training, evaluation) is split evenly among the models
    that took part in that epoch, so the runs' times add up to the stack's.

    Args:
        model: the K stacked models.
        x_train, y_train, x_test, y_test: the data, shared by all models (inputs are flattened).
        optimizer: one optimizer over ``model.parameters()``; it must act elementwise.
        schedule: ``lr(step, epoch)``, evaluated every step.
        orders: K generators of the data-order streams (one ``randperm`` per epoch each).
        augments: K batch augmentations (each with its own generator), or None.
    Returns:
        One ``TrainResult`` per model, as ``train()`` would have returned it.
    """
    k = model.size
    augments = list(augments) if augments is not None else [None] * k
    if len(orders) != k or len(augments) != k:
        raise RestudyError("one order generator and one augmentation per stacked model",
                           got=(k, len(orders), len(augments)))
    loop = _Loop(model, optimizer, schedule, batch_size, orders, augments, label_smoothing,
                 [_Member() for _ in range(k)])
    step = 0
    for epoch in range(epochs):
        taking_part = [i for i, m in enumerate(loop.members) if m.active]
        if not taking_part:
            break
        t0 = time.perf_counter()
        model.train()
        step = _train_epoch(loop, x_train, y_train, epoch, step)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        evals = _evaluate(loop, taking_part, x_train, y_train, x_test, y_test, eval_batch_size)
        eval_s = time.perf_counter() - t1
        for i in taking_part:
            _record_epoch(loop.members[i], epoch, evals[i], train_s / len(taking_part),
                          eval_s / len(taking_part), step)
    return [m.result for m in loop.members]


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
        idx = perms[:, b * loop.batch_size:(b + 1) * loop.batch_size]
        xb, yb = _batch(loop, x, y, idx)
        lr = loop.schedule(step, epoch)
        for group in loop.optimizer.param_groups:
            group["lr"] = lr
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
        step += 1
    return step


def _permutations(loop: _Loop, n: int, device: torch.device) -> torch.Tensor:
    """``[K, n]``: this epoch's order of each model; a fixed order for models that ended (their
    order stream is not drawn from again, as a run that ended draws nothing more)."""
    rows = [torch.randperm(n, generator=g, device=g.device).to(device) if m.active
            else torch.arange(n, device=device) for g, m in zip(loop.orders, loop.members)]
    return torch.stack(rows)


def _batch(loop: _Loop, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's own mini-batch: inputs ``[K, b, features]``, labels ``[K, b]``."""
    k, b = idx.shape
    if all(a is None for a in loop.augments):
        return x.reshape(x.shape[0], -1)[idx], y[idx]
    rows = []
    for i in range(k):  # augmentations draw from per-model generators, one model at a time
        xi = x[idx[i]]
        augment = loop.augments[i]
        if augment is not None and loop.members[i].active:
            xi = augment(xi)
        rows.append(xi.reshape(b, -1))
    return torch.stack(rows), y[idx]


def _check_divergence(loop: _Loop, values: list[float], lr: float, epoch: int, step: int,
                      b: int) -> list[int]:
    """Mark the active models whose loss is non-finite as diverged; returns their indices."""
    newly = []
    for i, m in enumerate(loop.members):
        if not m.active:
            continue
        m.lr = lr
        if not math.isfinite(values[i]):
            m.active = False
            m.done_steps = b
            m.result.status = "diverged"
            m.result.reason = f"non-finite loss ({values[i]}) at epoch {epoch}, step {step}"
            m.result.steps = step
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


def _evaluate(loop: _Loop, which: list[int], x_train: torch.Tensor, y_train: torch.Tensor,
              x_test: torch.Tensor, y_test: torch.Tensor, batch_size: int
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
    return {i: (metrics_from_logits(train_logits[i], y_train, "train"),
                metrics_from_logits(test_logits[i], y_test, "test"), test_logits[i].clone())
            for i in which}


def _record_epoch(m: _Member, epoch: int, evals: tuple[SplitEval, SplitEval, torch.Tensor],
                  train_s: float, eval_s: float, step: int) -> None:
    """Append the epoch's curve row to the model's result, with ``train()``'s keys and meaning."""
    tr, te, logits = evals
    r = m.result
    r.curves.append({"epoch": epoch + 1, "lr": m.lr,
                     "train_loss_running": m.loss_sum / m.done_steps if m.done_steps else float("nan"),
                     "train_acc": tr.acc, "train_loss": tr.loss, "test_acc": te.acc, "test_loss": te.loss,
                     "train_s": train_s, "eval_s": eval_s})
    r.train_wall_s += train_s
    r.eval_wall_s += eval_s
    r.test_logits = logits
    r.epochs_done = epoch + 1 if m.active else epoch
    if m.active:
        r.steps = step


# --------------------------------------------------------------------------- executing a stack


def execute_stack(spec_dicts: Sequence[dict[str, Any]], run_dirs: Sequence[str],
                  threads: int = 1) -> list[dict[str, Any]]:
    """Run specs that differ only in their seeds as one stack; returns (and writes) their records.

    Like ``worker.execute`` run by run: the same record fields, ``run.json`` written atomically and
    the final test logits saved in each run's directory. Never raises for a problem of the runs: an
    exception fails every run of the stack with the error. ``env`` says ``"execution": "stacked"``
    and the ``stack_size``; the stack's wall, load, train and eval times are split evenly.
    """
    t_start = time.perf_counter()
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    records = [RunRecord(key=s.key, spec=s.to_dict(), status="failed", started_at=_now()) for s in specs]
    outs = [Path(d) for d in run_dirs]
    try:
        _run_stack(specs, records, outs, threads)
    except Exception as e:  # the stack failed; the study goes on
        tb = traceback.format_exc(limit=20)
        for rec in records:
            rec.status, rec.reason, rec.metrics = "failed", f"{type(e).__name__}: {e}", {}
            rec.env.setdefault("traceback", tb)
    wall = time.perf_counter() - t_start
    finished = _now()
    for rec, out in zip(records, outs):
        rec.timings.update(wall_s=wall / len(records), stack_wall_s=wall)
        rec.finished_at = finished
        write_json(out / RUN_FILE, rec.to_dict())
    return [rec.to_dict() for rec in records]


def _run_stack(specs: list[RunSpec], records: list[RunRecord], outs: list[Path], threads: int) -> None:
    """Build, train and record the stack (mirrors ``worker._run`` for K runs)."""
    from .batches import make_augment
    from .seeding import generator

    check_group(specs)
    s = specs[0].settings
    env, device, data, (x_tr, y_tr, x_te, y_te), load_s = prepare(specs[0], threads, "stacked")
    load_s /= len(specs)
    env.update(stack_size=len(specs))
    for rec in records:
        rec.env = dict(env)

    model, perturbations = build_stack(specs, tuple(data.input_shape), data.num_classes, device)
    for rec, change in zip(records, perturbations):
        if change is not None:
            rec.env["perturbation"] = change
    opt_args = _args(s, "optimizer")
    opt_args.pop("lr_mult_bias_bn", None)  # 1.0 here: structural_reason refuses anything else
    optimizer = registry.create("optimizer", s["optimizer"], params=model.parameters(), **opt_args)
    steps_per_epoch = -(-x_tr.shape[0] // s["batch_size"])
    schedule = registry.create("schedule", s["schedule"], lr=s["optimizer.lr"], epochs=s["epochs"],
                               steps_per_epoch=steps_per_epoch, **_args(s, "schedule"))
    gen_device = "cuda" if device == "cuda" else "cpu"
    orders = [generator(sp.seeds["order"], gen_device) for sp in specs]
    augments = [make_augment(s["augment"], generator(sp.seeds["augment"], gen_device), s.get("augment.pad", 0))
                for sp in specs]
    # No dropout stream: the fc net draws nothing at random while training.
    results = train_stacked(model, x_tr, y_tr, x_te, y_te, optimizer=optimizer, schedule=schedule,
                            epochs=s["epochs"], batch_size=s["batch_size"], orders=orders, augments=augments,
                            eval_batch_size=s["eval_batch_size"], label_smoothing=s["label_smoothing"])
    n_feat = s.get("cka_examples", 0)
    for k, (rec, out, result) in enumerate(zip(records, outs, results)):
        rec.timings["load_s"] = load_s
        extra = {"features": model.features(k, x_te[:n_feat]).cpu()} if n_feat else {}
        _fill_record(rec, result, out, y_te, data, extra)


def build_stack(specs: Sequence[RunSpec], input_shape: tuple[int, ...], num_classes: int,
                device: str = "cpu") -> tuple[StackedMLP, list[dict[str, Any] | None]]:
    """Each spec's model built exactly as a single run builds it (one-ULP change included), then
    stacked. Returns the stack and each run's perturbation record (None without one)."""
    from .seeding import scoped_seed
    from .worker import _perturb

    models, changes = [], []
    for spec in specs:
        with scoped_seed(spec.seeds["init"]):
            model = registry.create("model", spec.settings["model"], input_shape=input_shape,
                                    num_classes=num_classes, **_args(spec.settings, "model"))
        changes.append(_perturb(model, spec))
        models.append(model)
    return StackedMLP.from_models(models).to(device), changes


def _fill_record(record: RunRecord, result: TrainResult, out: Path, y_test: torch.Tensor, data: Any,
                 extra: dict[str, torch.Tensor] | None = None) -> None:
    """Status, curves, metrics, timings and the logits artifact, as ``worker._run`` records them."""
    record.status = result.status
    record.reason = result.reason
    record.curves = result.curves
    record.timings.update(train_s=result.train_wall_s, eval_s=result.eval_wall_s)
    record.metrics = result.final_metrics(int(y_test.shape[0]), int(data.y_train.shape[0]))
    if result.test_logits is not None:
        sha = save_tensors(out / LOGITS_FILE, {"logits": result.test_logits, "labels": y_test,
                                               "index": data.idx_test, **(extra or {})})
        what = "final-epoch test logits, labels, example index"
        if extra and "features" in extra:
            what += f"; penultimate features of the first {extra['features'].shape[0]} test examples (for CKA)"
        record.artifacts[LOGITS_FILE] = {"sha256": sha, "what": what}
    record.env["dataset"] = data.description
