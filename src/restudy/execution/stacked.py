"""Many models at once: K seeds of a tiny ``fc`` net trained as one stacked model.

On a small CPU a tiny model's training step is dominated by Python and dispatcher overhead, not by
arithmetic; stacking K such models into batched matmuls (``torch.baddbmm`` over weights
``[K, in, out]``) runs them 2-3x faster than a loop over models (benchmarks/bench_stacked.py;
its numbers in benchmarks/README.md). Each of the K models keeps everything that makes it a separate run:

* its own initialization: built exactly as a single run builds it (``restudy.training.build.build_member``:
  the ``init`` stream, the one-ULP change), then its weights are copied into slice k of the stack;
* its own data order (one ``randperm`` per epoch from its own order generator; every model takes
  its own mini-batch each step) and its own augmentation stream;
* the same optimizer semantics: SGD (momentum, nesterov, weight decay) and Adam act elementwise, so
  one optimizer over the stacked ``[K, ...]`` parameters with loss ``Σ_k mean-CE_k`` gives every
  model exactly its own update. Cross-parameter couplings (global-norm clipping, LARS) would break
  this; the built-in optimizers have none.

Results therefore equal training the K models one by one up to float32 rounding (the batched and
the single matmul kernels round differently; tests/test_stacked.py states the tolerance measured).

What may be stacked (:func:`stackable`): identical settings across the stack apart from seeds, a
step small enough (``STACK_FLOP_LIMIT``) for stacking to pay off, and none of the settings that
``NOT_STACKED`` declares unsupported: the stack is of ReLU MLPs whose model factory declares its
stacked form (``layer_sizes``, and ``stackable`` for the arguments it stacks: ``fc`` with
``model.norm`` ``none`` or ``bn``, BatchNorm with per-model batch statistics: the K models'
channels are laid side by side, so one ``batch_norm`` call normalises each model over its own
batch), without a method (ENorm hooks into
one model), test-time augmentation, snapshot ensembles, per-group learning rates, per-run metrics,
a partial train-split evaluation (``eval_train``), a streamed data set (ImageNet) or data transforms
whose inputs depend on the seed. Transforms that change labels only are stacked: the
models share the inputs and each trains on its own labels (:func:`member_labels`); ``stop_at_fit``
stops each model on its own (:func:`restudy.training.loop_stacked.train_stacked`).
The training loop itself is :func:`restudy.training.loop_stacked.train_stacked`, next to the single-run loop.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import plugins
from ..errors import RestudyError
from ..planning.runs import RunSpec
from ..spec.settings import RunSettings
from ..storage.artifacts import RUN_FILE, TENSOR_FEATURES
from ..storage.env import host_load, load_average
from ..storage.record import RunRecord, now
from ..storage.safeio import write_json
from ..training.batches import Augment
from ..training.build import (
    Member,
    build_member,
    data_key,
    fit_threshold,
    load_data,
    optimizer_and_schedule,
    prepare,
    seeded_inputs,
    steps_per_epoch,
    thaw,
    transforms_key,
)
from ..training.loop import fill_record
from ..training.loop_stacked import train_stacked
from ..training.optim import Schedule
from ..training.stacked_model import StackedBatchNorm, StackedMLP

__all__ = [
    "NOT_STACKED",
    "STACK_FLOP_LIMIT",
    "Stack",
    "Stackability",
    "StackedBatchNorm",
    "StackedMLP",
    "build_stack",
    "check_group",
    "data_shape",
    "execute_stack",
    "group_key",
    "group_specs",
    "layer_sizes",
    "model_args",
    "stackable",
    "step_flops",
    "structural_reason",
]

# Above a few 1e7 FLOP per training step one model's matmuls already keep a core busy and stacking
# stops paying (measured on a 2-core CPU: 1.0-1.1x for a 3072-512-10 MLP at B=32, 2.1-2.7x at width 64;
# benchmarks/bench_stacked.py: 1.1-1.2x at 5.9e7 FLOP, K=8, 1 thread; the enorm small study,
# 5 seeds per group at 0.9e7-1.1e8 FLOP: 179 s stacked vs 170 s in the pool, measured side by side).
STACK_FLOP_LIMIT = 2e7


# What the stacked path does not support, in one place: (setting, its value in the run,
# unsupported(value), why). A run with such a value trains one by one (the single-run path), with
# the same results. Whether a model has a stacked form is declared by its factory (``stackable``
# and ``layer_sizes``, as restudy.models.fc does).
def _streamed(data: str) -> bool:
    """Whether data set ``data`` is streamed (its factory says so; ``restudy.data.images``)."""
    return data in plugins.names("dataset") and bool(getattr(plugins.get("dataset", data), "streamed", False))


def _no_stacked_form(model: str) -> bool:
    return not callable(getattr(plugins.get("model", model), "layer_sizes", None))


NOT_STACKED: tuple[tuple[str, Callable[[RunSettings], Any], Callable[[Any], bool], str], ...] = (
    (
        "data",
        lambda s: s.engine.data,
        _streamed,
        "a streamed data set is decoded batch by batch, not held as one shared tensor",
    ),
    ("model", lambda s: s.engine.model, _no_stacked_form, "the model's factory declares no stacked form"),
    ("method", lambda s: s.engine.method, lambda v: v != "none", "a method hooks into each model separately"),
    ("tta", lambda s: s.engine.tta, bool, "test-time augmentation is evaluated per model (single-run path)"),
    (
        "eval_train",
        lambda s: s.engine.eval_train,
        lambda v: v != "all",
        "a partial train-split evaluation is in the single-run path",
    ),
    (
        "schedule",
        lambda s: s.engine.schedule,
        lambda v: v == "snapshot",
        "snapshot ensembles keep per-model snapshots (single-run path)",
    ),
    (
        "optimizer.lr_mult_bias_bn",
        lambda s: s.engine.optimizer_lr_mult_bias_bn,
        lambda v: v != 1.0,
        "per-group learning rates (optimizer.lr_mult_bias_bn) are not stacked",
    ),
    ("run_metrics", lambda s: s.engine.run_metrics, bool, "per-run metrics are measured per model (single-run path)"),
    ("save_weights", lambda s: s.engine.save_weights, bool, "weights are saved model by model (single-run path)"),
    ("precision", lambda s: s.engine.precision, lambda v: v != "fp32", "mixed precision runs on the single-run path"),
    (
        "data.val_fraction",
        lambda s: s.engine.data_val_fraction,
        bool,
        "each run holds out its own validation split (the stack shares one training set)",
    ),
    ("compile", lambda s: s.engine.compile, lambda v: v != "off", "compiled models run on the single-run path"),
    (
        "transforms",
        lambda s: seeded_inputs(s),  # what matters is whether the inputs differ from seed to seed
        lambda v: v is True,
        "a data transform whose inputs depend on the seed (the stack shares one input tensor)",
    ),
)


# --------------------------------------------------------------------------- what may be stacked


@dataclass(frozen=True)
class Stackability:
    """Whether a run may be trained in a stack, and why not. Truthy when it may."""

    ok: bool
    reason: str = ""
    flops: float | None = None  # estimated FLOP per training step of one model, when known

    def __bool__(self) -> bool:
        return self.ok


def model_args(settings: RunSettings) -> dict[str, Any]:
    """The model factory's keyword arguments: its own defaults (from its signature), then the
    run's ``model.*`` settings."""
    factory = plugins.get("model", settings.engine.model)
    defaults = {
        name: p.default
        for name, p in inspect.signature(factory).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return {**defaults, **settings.part_args("model")}


def _shown(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def structural_reason(spec: RunSpec) -> str:
    """Why ``spec`` cannot be trained stacked at all ("" when it can); ignores its size."""
    if spec.input_run:
        return f"input_run: it {'starts from' if spec.input_run['take'] == 'weights' else 'learns from'} another run"
    if spec.study_module and spec.engine.transforms:  # its transforms are registered there
        plugins.import_study_module(spec.study_module, spec.study_dir)
    for name, value_of, unsupported, why in NOT_STACKED:
        v = value_of(spec.settings)
        if unsupported(v):
            return f"{name} {_shown(v)!r}: {why}"
    check = getattr(plugins.get("model", spec.engine.model), "stackable", None)
    return check(model_args(spec.settings)) if callable(check) else ""


@functools.lru_cache(maxsize=16)
def _data_shape(name: str, args_items: tuple[tuple[str, Any], ...], module: str | None) -> tuple[tuple[int, ...], int]:
    """Input shape and class count of a data set. Only the shape is kept, not the tensors: the
    driver asks this once per data set and should not hold a copy of CIFAR for the whole study."""
    from ..data import load_dataset

    plugins.load_builtins(plugins.TRAINING_KINDS)
    if module:
        plugins.import_study_module(module)
    data = load_dataset(name, **thaw(args_items))
    return tuple(data.input_shape), int(data.num_classes)


@functools.lru_cache(maxsize=16)
def _transformed_shape(settings_json: str, module: str | None) -> tuple[tuple[int, ...], int]:
    """Input shape and class count after the transforms (e.g. a crop); the same for every seed."""
    plugins.load_builtins()
    if module:
        plugins.import_study_module(module)
    data = load_data(RunSettings(json.loads(settings_json)), 0)
    return tuple(data.input_shape), int(data.num_classes)


def data_shape(spec: RunSpec) -> tuple[tuple[int, ...], int]:
    """``(input_shape, num_classes)`` of the data set ``spec`` trains on (loads it once)."""
    if spec.engine.transforms:
        return _transformed_shape(spec.settings.canonical(), spec.study_module)
    return _data_shape(*data_key(spec.settings), spec.study_module)


def member_labels(specs: Sequence[RunSpec], data: Any) -> tuple[torch.Tensor, list[str]]:
    """The training labels of a stack and each run's data description: labels shared ``[N]``, or
    ``[K, N]`` when the data transforms (drawing from each run's ``data`` stream) give each run its
    own labels. The inputs must be the same for every run (checked)."""
    s = specs[0].settings
    if not s.engine.transforms:
        return data.y_train, [data.description] * len(specs)
    datas = [load_data(spec.settings, spec.seeds.get("data", 0)) for spec in specs]
    if any(not torch.equal(d.x_train, data.x_train) or not torch.equal(d.x_test, data.x_test) for d in datas):
        raise RestudyError("stacked runs must share their inputs", got=list(transforms_key(s)[0]))
    return torch.stack([d.y_train for d in datas]), [d.description for d in datas]


def layer_sizes(settings: RunSettings, input_shape: Sequence[int], num_classes: int) -> list[int]:
    """Widths of the model's activations, input first, as its factory declares them (``fc``:
    [in, width, ..., width, classes])."""
    factory = plugins.get("model", settings.engine.model)
    return list(factory.layer_sizes(model_args(settings), tuple(input_shape), num_classes))


def step_flops(batch_size: int, sizes: Sequence[int]) -> float:
    """Estimated FLOP of one training step of one model: 2·3·batch·Σ in·out (forward, and twice
    that for the backward pass; elementwise work is ignored)."""
    return 6.0 * batch_size * sum(a * b for a, b in zip(sizes, sizes[1:]))


def stackable(spec: RunSpec, input_shape: Sequence[int] | None = None, num_classes: int | None = None) -> Stackability:
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
        flops = step_flops(spec.engine.batch_size, layer_sizes(spec.settings, input_shape, num_classes))
    except (TypeError, ValueError) as e:  # e.g. a non-numeric width: building the model will say so
        return Stackability(False, f"cannot estimate the step size: {e}")
    if flops > STACK_FLOP_LIMIT:
        return Stackability(False, f"about {flops:.2g} FLOP per step > {STACK_FLOP_LIMIT:.0e}", flops)
    return Stackability(True, "", flops)


def group_key(spec: RunSpec) -> str:
    """Runs with equal keys differ only in their seeds, so they may share a stack."""
    return json.dumps(
        {"settings": spec.settings.values, "kernels": spec.kernels, "module": spec.study_module},
        sort_keys=True,
        default=str,
    )


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
        raise RestudyError(
            "a stack's runs must have the same settings and kernels (only seeds differ)", got=[s.key for s in specs]
        )


# --------------------------------------------------------------------------- building and executing a stack


@dataclass
class Stack:
    """The parts a stack of runs trains with, built by :func:`build_stack`."""

    model: StackedMLP
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    orders: list[torch.Generator]
    augments: list[Augment | None]
    perturbations: list[dict[str, Any] | None]  # each run's one-ULP change, None without one


def build_stack(specs: Sequence[RunSpec], data: Any, device: str = "cpu") -> Stack:
    """Each spec's model and streams built exactly as a single run builds them
    (:func:`restudy.training.build.build_member`), the models stacked, and one optimizer and schedule over
    the stack (:func:`restudy.training.build.optimizer_and_schedule`).

    Args:
        specs: runs that differ only in their seeds (see :func:`check_group`).
        data: their data set (a ``restudy.data.Dataset``: shapes and the number of examples).
        device: where the stack lives.
    """
    s = specs[0].settings
    members: list[Member] = [build_member(spec, tuple(data.input_shape), data.num_classes, device) for spec in specs]
    model = StackedMLP.from_models([m.model for m in members]).to(device)
    optimizer, schedule = optimizer_and_schedule(model, s, steps_per_epoch(s, int(data.x_train.shape[0])))
    return Stack(
        model,
        optimizer,
        schedule,
        [m.order for m in members],
        [m.augment for m in members],
        [m.perturbation for m in members],
    )


def execute_stack(
    spec_dicts: Sequence[dict[str, Any]], run_dirs: Sequence[str], threads: int = 1
) -> list[dict[str, Any]]:
    """Run specs that differ only in their seeds as one stack; returns (and writes) their records.

    Like ``worker.execute`` run by run: the same record fields, ``run.json`` written atomically and
    the final test logits saved in each run's directory. Never raises for a problem of the runs: an
    exception fails every run of the stack with the error. ``env`` says ``"execution": "stacked"``
    and the ``stack_size``; the stack's wall, load, train and eval times are split evenly.
    """
    t_start, load = time.perf_counter(), load_average()
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    records = [RunRecord(key=s.key, spec=s.to_dict(), status="failed", started_at=now()) for s in specs]
    outs = [Path(d) for d in run_dirs]
    try:
        _run_stack(specs, records, outs, threads)
    except Exception as e:  # the stack failed; the study goes on
        tb = traceback.format_exc(limit=20)
        for rec in records:
            rec.status, rec.reason, rec.metrics = "failed", f"{type(e).__name__}: {e}", {}
            rec.env.setdefault("traceback", tb)
    wall = time.perf_counter() - t_start
    finished = now()
    for rec, out in zip(records, outs):
        rec.timings.update(wall_s=wall / len(records), stack_wall_s=wall)
        rec.env["host_load"] = host_load(load)
        rec.finished_at = finished
        write_json(out / RUN_FILE, rec.to_dict())
    return [rec.to_dict() for rec in records]


def _run_stack(specs: list[RunSpec], records: list[RunRecord], outs: list[Path], threads: int) -> None:
    """Build, train and record the stack (as ``worker`` does for one run)."""
    from .worker import save_test_tensors

    check_group(specs)
    e = specs[0].engine
    prep = prepare(specs[0], threads, "stacked")
    data, (x_tr, y_tr, x_te, y_te) = prep.data, prep.tensors
    labels, descriptions = member_labels(specs, data)
    y_tr = labels.to(y_tr.device)
    prep.env.update(stack_size=len(specs))
    for rec in records:
        rec.env = dict(prep.env)
    stack = build_stack(specs, data, prep.device)
    for rec, change in zip(records, stack.perturbations):
        if change is not None:
            rec.env["perturbation"] = change
    # No dropout stream: the fc net draws nothing at random while training.
    results = train_stacked(
        stack.model,
        x_tr,
        y_tr,
        x_te,
        y_te,
        optimizer=stack.optimizer,
        schedule=stack.schedule,
        epochs=e.epochs,
        batch_size=e.batch_size,
        orders=stack.orders,
        augments=stack.augments,
        eval_batch_size=e.eval_batch_size,
        label_smoothing=e.label_smoothing,
        stop_at_fit=fit_threshold(specs[0].settings),
        curve_every_steps=e.curve_every_steps,
    )
    n_feat = e.cka_examples
    for k, (rec, out, result) in enumerate(zip(records, outs, results)):
        rec.timings["load_s"] = prep.load_s / len(specs)
        fill_record(rec, result, int(y_te.shape[0]), int(y_tr.shape[-1]), int(data.num_classes))
        if result.test_logits is not None:
            extra = {TENSOR_FEATURES: stack.model.features(k, x_te[:n_feat]).cpu()} if n_feat else {}
            save_test_tensors(rec, out, result.test_logits, y_te, data, extra, [])
        rec.env["dataset"] = descriptions[k]
