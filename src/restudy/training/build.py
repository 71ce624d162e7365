"""Building a run from its spec: data, model, optimizer, schedule, generators, augmentation, extras.

The one way a run's parts are made, for the single-run path (``restudy.execution.worker``), the stacked path
(``restudy.execution.stacked``, member by member), the tests and the benchmarks:

* :func:`prepare` -- what every run needs before its model: determinism flags and threads, the
  environment, registries (the study's module too), the data (with its ``transforms`` applied,
  :func:`load_data`) on its device;
* :func:`build_member` -- one model as its run initialises it (the ``init`` stream, device and
  memory format, the one-ULP change of ``perturb``) with its order and augmentation streams;
* :func:`optimizer_and_schedule` -- the optimizer (parameter groups included) and lr schedule of a
  model from the settings; the only place they are constructed;
* :func:`build_run` -- all of a single run's parts (:class:`RunParts`).

Settings are read typed from the run's :class:`restudy.spec.settings.RunSettings`: ``engine`` for
the engine's own (a default is declared once, in settings.py) and ``part_args`` for a part's
keyword arguments.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import plugins
from ..errors import RestudyError
from ..spec.settings import RunSettings

if TYPE_CHECKING:
    import torch

    from ..data import Dataset
    from ..planning.runs import RunSpec
    from .batches import Augment
    from .devices import Amp
    from .loop import StepHook
    from .optim import Schedule


# --------------------------------------------------------------------------- before the model


def device_for(setting: str) -> str:
    """The torch device of setting ``device`` (:func:`restudy.training.devices.resolve_device`)."""
    from .devices import resolve_device

    return resolve_device(setting)[0]


class _Items(tuple):  # type: ignore[type-arg]
    """A dict argument frozen as its sorted items, so that a part's arguments can be a cache key."""


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return _Items(sorted((k, _freeze(x)) for k, x in v.items()))
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def thaw(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Keyword arguments from a key of :func:`data_key` or :func:`transforms_key`: the lists and
    dicts the settings gave, again."""

    def one(v: Any) -> Any:
        if isinstance(v, _Items):
            return {k: one(x) for k, x in v}
        return [one(x) for x in v] if isinstance(v, tuple) else v

    return {k: one(v) for k, v in items}


def data_key(settings: RunSettings) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The data set's name and its ``data.*`` arguments as a hashable key (a cache key)."""
    return settings.engine.data, tuple(sorted((k, _freeze(v)) for k, v in settings.part_args("data").items()))


@functools.lru_cache(maxsize=4)
def _dataset(name: str, args_items: tuple[tuple[str, Any], ...]) -> Dataset:
    from ..data import load_dataset

    return load_dataset(name, **thaw(args_items))


def _load_base(settings: RunSettings) -> Dataset:
    return _dataset(*data_key(settings))


def transforms_key(settings: RunSettings) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """The ``transforms`` names and the ``transform.*`` arguments as a hashable key."""
    names = tuple(settings.engine.transforms)
    return names, tuple(sorted((k, _freeze(v)) for k, v in settings.part_args("transform").items()))


def transform_args(names: tuple[str, ...], args: dict[str, Any]) -> list[dict[str, Any]]:
    """Each transform's keyword arguments: the ``transform.*`` arguments its factory names.

    Raises:
        RestudyError: an argument that no listed transform takes (a typo would otherwise be
            silently ignored).
    """
    import inspect

    per: list[dict[str, Any]] = []
    used: set[str] = set()
    for name in names:
        params = inspect.signature(plugins.get("transform", name)).parameters
        mine = {k: v for k, v in args.items() if k in params and k not in ("data", "generator")}
        used |= set(mine)
        per.append(mine)
    unused = sorted(set(args) - used)
    if unused:
        raise RestudyError(
            "transform arguments that no listed transform takes",
            where="transform." + unused[0],
            got={"transforms": list(names), "unused": unused},
        )
    return per


@functools.lru_cache(maxsize=8)
def _transformed(
    data_items: tuple[str, tuple[tuple[str, Any], ...]],
    t_key: tuple[tuple[str, ...], tuple[tuple[str, Any], ...]],
    seed: int,
) -> Dataset:
    from ..planning.seeding import generator

    data = _dataset(*data_items)
    names, args_items = t_key
    args = thaw(args_items)
    gen = generator(seed, "cpu")  # one CPU stream, drawn by the transforms in order
    for name, kwargs in zip(names, transform_args(names, args)):
        data = plugins.get("transform", name)(data, gen, **kwargs)
    return data


def load_data(settings: RunSettings, data_seed: int = 0) -> Dataset:
    """The run's data set (setting ``data`` and its ``data.*`` arguments), on the CPU, with the
    ``transforms`` applied in order, drawing from one generator seeded with ``data_seed`` (the
    run's ``data`` stream), then ``data.val_fraction`` of the training examples held out as the
    validation split (:func:`restudy.data.dataset.hold_out`, seeded by :func:`split_seed`). Cached
    per process by (data, transforms, seed): the runs of one worker share one in-memory copy.

    A transform is registered as kind ``transform``: ``fn(data, generator, **args) -> Dataset``,
    returning a new data set (test labels untouched) whose ``description`` says what it did. A
    transform whose inputs depend on the seed sets ``fn.seeded_inputs = True`` (such runs are not
    stacked: the stacked models share one input tensor).
    """
    if not settings.engine.transforms:
        if settings.part_args("transform"):
            raise RestudyError(
                "transform arguments without transforms",
                where="transforms",
                got=sorted(settings.part_args("transform")),
                allowed="list the transforms that take them in 'transforms'",
            )
        data = _load_base(settings)
    else:
        data = _transformed(data_key(settings), transforms_key(settings), int(data_seed))
    fraction = settings.engine.data_val_fraction
    if not fraction:
        return data
    from ..data.dataset import hold_out

    return hold_out(data, fraction, split_seed(data_seed))


def split_seed(data_seed: int) -> int:
    """The seed of the validation split's draw: a stream of its own, derived from the run's data
    seed (so it varies across seeds exactly when the data stream does)."""
    import numpy as np

    from ..planning.seeding import stable_int

    return int(np.random.SeedSequence([int(data_seed) & 0xFFFFFFFF, stable_int("val_split")]).generate_state(1)[0])


def seeded_inputs(settings: RunSettings) -> bool:
    """Whether the run's transforms make its training inputs depend on its ``data`` seed."""
    return any(getattr(plugins.get("transform", n), "seeded_inputs", False) for n in settings.engine.transforms)


def train_eval_size(settings: RunSettings) -> int | None:
    """Train examples evaluated after each epoch (setting ``eval_train``): None for the whole split,
    0 for none, else ``eval_train.n`` (the first n)."""
    e = settings.engine
    return None if e.eval_train == "all" else 0 if e.eval_train == "none" else int(e.eval_train_n)


def fit_threshold(settings: RunSettings) -> float | None:
    """The train accuracy (%) at which training stops as fit (``stop_at_fit``), or None."""
    e = settings.engine
    return float(e.stop_at_fit_train_acc) if e.stop_at_fit else None


@dataclass
class Prepared:
    """The prepared environment and data of a run (or of a stack of runs)."""

    env: dict[str, Any]
    device: str
    data: Dataset
    tensors: tuple[torch.Tensor, ...]  # x_train, y_train, x_test, y_test on the device
    load_s: float


def prepare(spec: RunSpec, threads: int, execution: str) -> Prepared:
    """What every run needs before its model: determinism flags and threads applied, the
    environment captured (``execution``: ``single`` or ``stacked``), registries loaded (the study's
    module too), the data on its device."""
    from ..planning.seeding import apply_determinism
    from ..storage import env as env_mod
    from .devices import apply_tf32, resolve_device

    e = spec.engine
    flags = apply_determinism(spec.kernels, threads)  # before anything touches CUDA
    device, notice = resolve_device(e.device)
    env = env_mod.capture(
        threads=threads,
        determinism=flags,
        memory_format=e.memory_format,
        with_packages=False,
        execution=execution,
        device=device,
        gpu_flags=apply_tf32(e.tf32),
    )
    if notice:
        env["device_notice"] = notice
    plugins.load_builtins(plugins.TRAINING_KINDS)
    if spec.study_module:
        plugins.import_study_module(spec.study_module, spec.study_dir)
    t0 = time.perf_counter()
    data = load_data(spec.settings, spec.seeds.get("data", 0))
    tensors = tuple(t.to(device) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    return Prepared(env, device, data, tensors, time.perf_counter() - t0)


# --------------------------------------------------------------------------- one model and its streams


def memory_format(settings: RunSettings) -> torch.memory_format:
    """The layout of 4-D inputs and weights (setting ``memory_format``)."""
    import torch

    return torch.channels_last if settings.engine.memory_format == "channels_last" else torch.contiguous_format


def build_model(
    spec: RunSpec, input_shape: tuple[int, ...], num_classes: int, device: str = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any] | None]:
    """The run's model, initialised as its run does: built under the ``init`` seed stream (the
    global RNG scoped), moved to ``device`` (and, for image inputs, the memory format), then the
    ``perturb`` change applied (Summers & Dinneen's random bit change, after initialization).

    Returns:
        ``(model, perturbation)``: what the one-ULP change did, or None without one.
    """
    from ..planning.seeding import scoped_seed

    s = spec.settings
    with scoped_seed(spec.seeds["init"]):
        model = plugins.create(
            "model", s.engine.model, input_shape=tuple(input_shape), num_classes=num_classes, **s.part_args("model")
        )
    if len(input_shape) == 3:  # images [N, C, H, W]
        model = model.to(device=device, memory_format=memory_format(s))
    else:
        model = model.to(device)
    return model, _perturb(model, spec)


def _perturb(model: torch.nn.Module, spec: RunSpec) -> dict[str, Any] | None:
    """Apply the ``perturb`` setting to the fresh model; what changed, or None (Summers & Dinneen's ``train.py``)."""
    e = spec.engine
    if e.perturb == "none":
        return None
    from ..planning.seeding import generator
    from .perturb import one_ulp_change

    # A CPU generator: the drawn index and direction do not depend on the device.
    return one_ulp_change(model, generator(spec.seeds["perturb"], "cpu"), e.perturb_param)


def streams(spec: RunSpec, device: str) -> tuple[torch.Generator, Augment | None]:
    """The run's data-order generator and its batch augmentation (drawing from the ``augment``
    stream), on the generators' device for ``device``."""
    from ..planning.seeding import generator
    from .batches import make_augment

    e = spec.engine
    gen_device = "cuda" if device == "cuda" else "cpu"
    order = generator(spec.seeds["order"], gen_device)
    augment = make_augment(e.augment, generator(spec.seeds["augment"], gen_device), e.augment_pad)
    return order, augment


@dataclass
class Member:
    """One model of a run with its own streams: what a single run and a stack member share."""

    model: torch.nn.Module
    perturbation: dict[str, Any] | None
    order: torch.Generator
    augment: Augment | None


def build_member(spec: RunSpec, input_shape: tuple[int, ...], num_classes: int, device: str = "cpu") -> Member:
    """The run's model (:func:`build_model`) and streams (:func:`streams`)."""
    model, change = build_model(spec, input_shape, num_classes, device)
    order, augment = streams(spec, device)
    return Member(model, change, order, augment)


# --------------------------------------------------------------------------- optimizer and schedule


def steps_per_epoch(settings: RunSettings, n_train: int) -> int:
    """Optimizer steps per epoch: ``ceil(n_train / batch_size)`` (the last batch may be smaller)."""
    return -(-n_train // settings.engine.batch_size)


def optimizer_and_schedule(
    model: torch.nn.Module, settings: RunSettings, n_steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, Schedule]:
    """The optimizer over ``model``'s parameters and the lr schedule, from the settings.

    A warm-up (``schedule.warmup_epochs``) multiplies any schedule that does not take it itself
    (:func:`restudy.training.optim.with_warmup`). Parameter groups follow
    ``optimizer.lr_mult_bias_bn`` (:func:`restudy.training.optim.param_groups`). The optimizer is
    built with the schedule's lr at step 0 (times each group's ``lr_mult``), the lr the first step
    trains with; the loop sets it again before every step (:func:`restudy.training.loop.lr_step`).
    """
    from .loop import lr_step
    from .optim import handles_warmup, param_groups, with_warmup

    e = settings.engine
    schedule_args = settings.part_args("schedule")
    warmup = schedule_args.pop("warmup_epochs", 0.0)
    start = schedule_args.pop("warmup_start_factor", 0.0)
    own_warmup = handles_warmup(e.schedule)
    if own_warmup:
        schedule_args["warmup_epochs"] = warmup
    schedule = plugins.create(
        "schedule",
        e.schedule,
        lr=e.optimizer_lr,
        epochs=e.epochs,
        steps_per_epoch=n_steps_per_epoch,
        **schedule_args,
    )
    if not own_warmup:
        schedule = with_warmup(schedule, warmup * n_steps_per_epoch, start)
    args = settings.part_args("optimizer")
    args.pop("lr_mult_bias_bn", None)
    args["lr"] = schedule(0, 0)
    groups = param_groups(model, e.optimizer_lr_mult_bias_bn)
    optimizer = plugins.create("optimizer", e.optimizer, params=groups, **args)
    lr_step(optimizer, schedule, 0, 0)
    return optimizer, schedule


# --------------------------------------------------------------------------- extras of a single run


@dataclass(frozen=True)
class TTASetup:
    """The run's test-time augmentation: strategy names, crop pad and per-channel pad value."""

    strategies: tuple[str, ...] = ()
    pad: int = 0
    pad_value: tuple[float, ...] = ()


def tta_setup(settings: RunSettings, data: Dataset) -> TTASetup:
    """Validate the ``tta`` settings against the data before any training (fail fast).

    The pad value is the normalised raw 0 per channel, from ``data.normalization``
    (as Summers & Dinneen's ``evaluate.py`` pads; see
    :func:`restudy.training.tta.pad_value_from_normalization`).

    Raises:
        RestudyError: a strategy needs a stride that ``tta.pad`` does not allow, or the inputs are
            flattened images (views of a flattened image are not defined).
    """
    import torch

    from .tta import pad_value_from_normalization, parse_strategy

    names = tuple(settings.engine.tta)
    if not names:
        return TTASetup()
    if not isinstance(data.x_test, torch.Tensor):
        raise RestudyError(
            "test-time augmentation needs in-memory inputs; this data set is streamed",
            where="tta",
            got={"data": data.name, "tta": list(names)},
        )
    if settings.part_args("data").get("flatten"):
        raise RestudyError(
            "test-time augmentation needs unflattened inputs",
            where="tta",
            got={"data.flatten": True, "tta": list(names)},
        )
    pad = int(settings.engine.tta_pad)
    for name in names:
        parse_strategy(name).offsets(pad)
    shape = tuple(data.input_shape)
    channels = shape[0] if len(shape) >= 2 else 1
    return TTASetup(
        strategies=names, pad=pad, pad_value=tuple(pad_value_from_normalization(data.normalization, channels))
    )


def snapshot_epochs(settings: RunSettings) -> list[int]:
    """The 1-based epochs whose test logits are kept as snapshots: the ends of the cycles of the
    ``snapshot`` schedule (Summers & Dinneen's ``snapshot5``), none for other schedules."""
    from .optim import snapshot_epochs as cycle_ends

    e = settings.engine
    if e.schedule != "snapshot":
        return []
    return cycle_ends(e.epochs, e.schedule_cycles)


def run_metric_names(settings: RunSettings) -> list[str]:
    """The per-run metrics (kind ``run_metric``) a run measures after training (setting ``run_metrics``)."""
    return list(settings.engine.run_metrics)


# --------------------------------------------------------------------------- a whole single run


@dataclass
class RunParts:
    """Everything a single run trains with, built from its spec by :func:`build_run`."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    steps_per_epoch: int
    order: torch.Generator
    augment: Augment | None
    hooks: list[StepHook]
    memory_format: torch.memory_format
    snapshot_epochs: list[int]
    tta: TTASetup
    perturbation: dict[str, Any] | None = None
    run_metrics: dict[str, Callable[..., dict[str, float]]] = field(default_factory=dict)
    # Settings ``compile`` and ``precision``: the training forward (the model itself when not
    # compiled) and the mixed precision of the step (None: fp32).
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    amp: Amp | None = None


def train_options(parts: RunParts, settings: RunSettings) -> dict[str, Any]:
    """The keyword arguments of :func:`restudy.training.loop.train` that a run's parts and settings fix
    (optimizer, schedule, generators, augmentation, evaluation batch, loss, memory format, compiled
    forward, mixed precision): the worker and the cost calibration train with the same ones."""
    return {
        "optimizer": parts.optimizer,
        "schedule": parts.schedule,
        "order": parts.order,
        "hooks": parts.hooks,
        "augment": parts.augment,
        "eval_batch_size": settings.engine.eval_batch_size,
        "label_smoothing": settings.engine.label_smoothing,
        "memory_format": parts.memory_format,
        "forward": parts.forward,
        "amp": parts.amp,
    }


def build_run(spec: RunSpec, data: Dataset, device: str = "cpu") -> RunParts:
    """All parts of ``spec``'s run on ``data`` (its shapes, size and normalisation) on ``device``.

    Checks the TTA settings and the per-run metric names first (before any training), then builds
    the member (:func:`build_member`), optimizer and schedule (:func:`optimizer_and_schedule`) and
    the method's hook, and finally seeds torch's global RNG with the ``dropout`` stream: the only
    global draws left in training are dropout's.
    """
    import torch

    from .devices import amp_for, compiled_forward

    s = spec.settings
    tta = tta_setup(s, data)
    if train_eval_size(s) is not None and fit_threshold(s) is not None:
        raise RestudyError(
            "stop_at_fit needs the whole train split evaluated after each epoch",
            where="eval_train",
            got=s.engine.eval_train,
            allowed=["all"],
        )
    metrics = {name: plugins.get("run_metric", name) for name in run_metric_names(s)}
    member = build_member(spec, tuple(data.input_shape), data.num_classes, device)
    n_steps = steps_per_epoch(s, int(data.x_train.shape[0]))
    optimizer, schedule = optimizer_and_schedule(member.model, s, n_steps)
    hook = plugins.create("method", s.engine.method, model=member.model, optimizer=optimizer, **s.part_args("method"))
    torch.manual_seed(spec.seeds["dropout"])
    return RunParts(
        model=member.model,
        optimizer=optimizer,
        schedule=schedule,
        steps_per_epoch=n_steps,
        order=member.order,
        augment=member.augment,
        hooks=[hook] if hook is not None else [],
        memory_format=memory_format(s),
        snapshot_epochs=snapshot_epochs(s),
        tta=tta,
        perturbation=member.perturbation,
        run_metrics=metrics,
        forward=compiled_forward(member.model, s.engine.compile),
        amp=amp_for(s.engine.precision, device),
    )
