"""Engine settings: every setting declared once (name, type, default, constraint, when it applies, help).

A setting is a dotted name. ``model``, ``data`` and ``method`` name registered parts, and
``model.*``, ``data.*``, ``method.*`` are passed to them as keyword arguments (:func:`part_args`);
``transforms`` lists registered data transforms and each takes the ``transform.*`` arguments its
factory names;
the other names are the engine's own, each declared once in :data:`DECLARATIONS`. Names of parts
(``model``, ``data``, ``method``, ``optimizer``, ``schedule``, ``augment``, ``run_metrics``) are
checked against the registry (:mod:`restudy.plugins`), never against a second list.

:func:`check` validates one value. A run carries its resolved settings as one
:class:`RunSettings`: the engine settings typed (``settings.engine.optimizer_lr``, declared defaults
where a setting does not apply), each part's keyword arguments (``settings.part_args("model")``)
and where every value came from (``settings.provenance``), together. Code outside this module reads
settings through it, never by name in a dict.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .constraints import (
    INF,
    Betas,
    Choice,
    Constraint,
    Flag,
    Milestones,
    Number,
    PartName,
    PartNames,
    Problem,
    Text,
    TTANames,
)

PASSTHROUGH_PREFIXES = ("model.", "data.", "method.", "transform.")
PASSTHROUGH_NAMES = ("model.*", "data.*", "method.*", "transform.*")


class _Required:
    """The default of a setting every study must set (``model``, ``epochs``, ...)."""

    def __repr__(self) -> str:
        return "required"


REQUIRED: Any = _Required()


# --- declarations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppliesWhen:
    """A setting matters only when setting ``on`` has one of ``values`` (None: any non-empty value)."""

    on: str
    values: tuple[str, ...] | None = None

    def holds(self, settings: Mapping[str, Any]) -> bool:
        v = settings[self.on] if self.on in settings else SETTINGS[self.on].default
        return bool(v) if self.values is None else v in self.values

    def describe(self) -> str:
        if self.values is None:
            return f"{self.on} is not empty"
        return f"{self.on} is " + " or ".join(self.values)


@dataclass(frozen=True)
class Setting:
    """One engine setting, declared once."""

    name: str
    constraint: Constraint
    help: str
    default: Any = REQUIRED
    applies_when: AppliesWhen | None = None
    reason: str = ""  # why the default is what it is, where it is a choice
    # False for a setting added after runs were stored whose default changes nothing they did: at
    # its default it is left out of a run's settings, hence out of its key, and runs stored before
    # it existed are still found on resume.
    # Or an AppliesWhen: keyed at its default only where that holds (a setting that gained uses).
    keyed_at_default: bool | AppliesWhen = True

    @property
    def type_name(self) -> str:
        return self.constraint.type_name

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def attr(self) -> str:
        """The attribute name in the typed view: ``optimizer.lr`` -> ``optimizer_lr``."""
        return self.name.replace(".", "_")


def _when(on: str, *values: str) -> AppliesWhen:
    return AppliesWhen(on, values or None)


DECLARATIONS: tuple[Setting, ...] = (
    Setting("model", PartName("model"), "the registered model to train"),
    Setting("data", PartName("dataset"), "the registered data set to train and test on"),
    # Data transforms (randomization tests, preprocessing): applied once to the loaded data set, in
    # order, drawing from the run's ``data`` seed stream; arguments are the ``transform.*`` settings.
    Setting(
        "transforms",
        PartNames("transform"),
        "registered data transforms applied once, in order, to the loaded data set (seeded by the data stream)",
        default=[],
        reason="the data as loaded",
    ),
    Setting(
        "method",
        PartName("method"),
        "a training-time method hooked after every optimizer step",
        default="none",
        reason="plain training",
    ),
    Setting("optimizer", PartName("optimizer"), "the registered optimizer", default="sgd"),
    Setting("optimizer.lr", Number(0, INF, lo_open=True), "initial (or peak) learning rate"),
    Setting(
        "optimizer.momentum",
        Number(0, 1),
        "momentum (SGD, RMSprop)",
        default=0.0,
        applies_when=_when("optimizer", "sgd", "rmsprop"),
        reason="no momentum, torch.optim's default",
    ),
    Setting(
        "optimizer.nesterov", Flag(), "Nesterov momentum for SGD", default=False, applies_when=_when("optimizer", "sgd")
    ),
    Setting(
        "optimizer.weight_decay",
        Number(0, INF),
        "weight decay: coupled L2 (sgd, adam, rmsprop), decoupled for adamw (as in torch.optim)",
        default=0.0,
        reason="no weight decay (note: torch.optim.AdamW's own default is 0.01)",
    ),
    Setting(
        "optimizer.betas",
        Betas(),
        "Adam's and AdamW's moment decay rates",
        default=[0.9, 0.999],
        applies_when=_when("optimizer", "adam", "adamw"),
        reason="torch.optim.Adam's defaults",
    ),
    Setting(
        "optimizer.eps",
        Number(0, INF, lo_open=True),
        "the denominator's term (Adam, AdamW, RMSprop)",
        default=1e-8,
        applies_when=_when("optimizer", "adam", "adamw", "rmsprop"),
        reason="torch.optim's default",
    ),
    Setting(
        "optimizer.alpha",
        Number(0, 1, lo_open=True, hi_open=False),
        "RMSprop's smoothing constant",
        default=0.99,
        applies_when=_when("optimizer", "rmsprop"),
        reason="torch.optim.RMSprop's default",
    ),
    Setting(
        "optimizer.centered",
        Flag(),
        "RMSprop normalizes by the gradient's estimated variance",
        default=False,
        applies_when=_when("optimizer", "rmsprop"),
        reason="torch.optim.RMSprop's default",
    ),
    Setting(
        "optimizer.lr_mult_bias_bn",
        Number(0, INF),
        "learning-rate factor for biases and normalization scales",
        default=1.0,
        reason="one learning rate for all parameters",
    ),
    Setting(
        "cka_examples",
        Number(0, 10**6, integer=True),
        "test examples whose penultimate features are stored for CKA (0: none)",
        default=0,
        reason="features are stored only when asked for: they take disk space",
    ),
    Setting("schedule", PartName("schedule"), "the registered learning-rate schedule", default="constant"),
    # Warm-up: with cosine and snapshot the Summers & Dinneen protocol (their train.py, see
    # restudy.training.optim.cosine); with any other schedule a linear ramp that multiplies it
    # (torch.optim.lr_scheduler.LinearLR chained with the schedule).
    Setting(
        "schedule.warmup_epochs",
        Number(0, INF),
        "epochs of linear warm-up (any schedule; fractional epochs count in steps)",
        default=0.0,
        keyed_at_default=_when("schedule", "cosine", "snapshot"),
        reason="no warm-up",
    ),
    Setting(
        "schedule.warmup_start_factor",
        Number(0, 1),
        "the warm-up's first factor of the lr (LinearLR's start_factor; 0 starts from lr 0)",
        default=0.0,
        applies_when=_when("schedule", "constant", "linear", "exponential", "step", "multistep", "onecycle"),
        keyed_at_default=False,
        reason="a warm-up from lr 0",
    ),
    # Snapshot ensembles: cycles of the cyclic schedule = snapshots (Summers & Dinneen, ICML 2021, accelerated
    # ensembling; their code's train.py, lr_schedule='snapshot5').
    Setting(
        "schedule.cycles",
        Number(1, 100000, integer=True),
        "cycles of the snapshot schedule (one snapshot per cycle)",
        default=5,
        applies_when=_when("schedule", "snapshot"),
        reason="the original's 'snapshot5'",
    ),
    Setting(
        "schedule.gamma",
        Number(0, 1, lo_open=True, hi_open=False),
        "decay factor: per epoch (exponential), at each milestone (multistep), every step_size epochs (step)",
        applies_when=_when("schedule", "exponential", "step", "multistep"),
    ),
    Setting(
        "schedule.milestones",
        Milestones(),
        "the epochs at whose start the lr is multiplied by gamma (MultiStepLR's milestones, in epochs)",
        applies_when=_when("schedule", "multistep"),
    ),
    Setting(
        "schedule.step_size",
        Number(1, 100000, integer=True),
        "epochs between two decays by gamma (StepLR's step_size, in epochs)",
        applies_when=_when("schedule", "step"),
    ),
    Setting(
        "schedule.pct_start",
        Number(0, 1, lo_open=True, hi_open=True),
        "share of the steps spent raising the lr (OneCycleLR's pct_start)",
        default=0.3,
        applies_when=_when("schedule", "onecycle"),
        reason="torch.optim.lr_scheduler.OneCycleLR's default",
    ),
    Setting(
        "schedule.div_factor",
        Number(1, INF),
        "the one-cycle's first lr is lr / div_factor (OneCycleLR's div_factor)",
        default=25.0,
        applies_when=_when("schedule", "onecycle"),
        reason="torch.optim.lr_scheduler.OneCycleLR's default",
    ),
    Setting(
        "schedule.final_div_factor",
        Number(1, INF),
        "the one-cycle's last lr is lr / (div_factor * final_div_factor) (OneCycleLR's final_div_factor)",
        default=1e4,
        applies_when=_when("schedule", "onecycle"),
        reason="torch.optim.lr_scheduler.OneCycleLR's default",
    ),
    Setting("epochs", Number(1, 100000, integer=True), "training epochs"),
    # Time to fit (Zhang et al., ICLR 2017, Sec. 2.1, Fig. 1b): the step at which the whole training set is fit.
    Setting(
        "stop_at_fit",
        Flag(),
        "stop when the whole training set is fit (train accuracy at an epoch's end reaches "
        "stop_at_fit.train_acc) and record that step as metric fit_step",
        default=False,
        reason="train for the given epochs",
    ),
    Setting(
        "stop_at_fit.train_acc",
        Number(0, 100, lo_open=True, hi_open=False),
        "train accuracy (%) on the whole training set at which it counts as fit",
        default=100.0,
        applies_when=_when("stop_at_fit"),
        reason="fit means every training example classified as labelled",
    ),
    # Training loss per step (Zhang et al., ICLR 2017, Fig. 1a): the record's step_curve.
    Setting(
        "curve_every_steps",
        Number(0, 10**9, integer=True),
        "record the mean training loss over every N optimizer steps as the run's step_curve (0: off)",
        default=0,
        reason="per-epoch curves only",
    ),
    # Train-split evaluation after each epoch: a streamed data set (ImageNet, 1.28M images) cannot
    # afford a full pass per epoch; its train accuracy is then that of the first n examples.
    Setting(
        "eval_train",
        Choice(("all", "subset", "none")),
        "train examples evaluated after each epoch: all, the first eval_train.n (curve rows record train_n), "
        "or none (train metrics null)",
        default="all",
        reason="train accuracy on the whole training set, as fit and generalisation gaps need",
        keyed_at_default=False,
    ),
    Setting(
        "eval_train.n",
        Number(1, 10**9, integer=True),
        "train examples evaluated after each epoch when eval_train is subset",
        default=10000,
        applies_when=_when("eval_train", "subset"),
        reason="a binomial standard error of at most 0.5 accuracy points, at under 1% of ImageNet's train split",
    ),
    Setting("batch_size", Number(1, 10**7, integer=True), "training batch size"),
    Setting(
        "eval_batch_size",
        Number(1, 10**7, integer=True),
        "evaluation batch size (does not change results)",
        default=1024,
    ),
    Setting(
        "memory_format",
        Choice(("contiguous", "channels_last")),
        "memory layout of 4-D activations (speed only)",
        default="contiguous",
    ),
    Setting(
        "device",
        Choice(("auto", "cpu", "cuda")),
        "where a run trains (auto: cuda when available, else the CPU, noted in the run's record; "
        "cuda without CUDA is an error)",
        default="auto",
        reason="the fastest device present",
    ),
    Setting(
        "precision",
        Choice(("fp32", "bf16", "fp16")),
        "arithmetic of the training step: fp32, or autocast to bf16 or fp16 (fp16 with loss scaling); "
        "evaluation stays fp32",
        default="fp32",
        reason="full precision: results bit-identical on the same CPU and software",
        keyed_at_default=False,
    ),
    Setting(
        "compile",
        Choice(("off", "default", "reduce-overhead")),
        "torch.compile the model's forward with this mode, once per model structure per worker "
        "process and reused by its later runs (speed; compiled kernels round differently)",
        default="off",
        reason="eager: no compile time and no C compiler needed",
        keyed_at_default=False,
    ),
    Setting(
        "tf32",
        Flag(),
        "TF32 for float32 matmuls and convolutions on CUDA (speed; 10-bit mantissa products)",
        default=False,
        applies_when=_when("device", "auto", "cuda"),
        reason="full float32 on every GPU, so results do not depend on whether it has TF32 units",
        keyed_at_default=False,
    ),
    Setting("label_smoothing", Number(0, 1), "label smoothing of the cross-entropy loss", default=0.0),
    Setting("augment", PartName("augment"), "the registered batch augmentation of training inputs", default="none"),
    Setting(
        "augment.pad",
        Number(0, 64, integer=True),
        "padding of random crops",
        default=4,
        applies_when=_when("augment", "crop", "flip_crop"),
        reason="the CIFAR convention (RandomCrop(32, 4))",
    ),
    # One-ulp change of one weight after initialization (Summers & Dinneen, ICML 2021, "random bit change";
    # their code's train.py).
    Setting(
        "perturb",
        Choice(("none", "one_ulp")),
        "a change of the initial weights (one_ulp: one float ULP of one weight)",
        default="none",
    ),
    Setting(
        "perturb.param",
        Text(),
        "the parameter the one-ULP change hits ('first': the first weight tensor, or a parameter name)",
        default="first",
        applies_when=_when("perturb", "one_ulp"),
    ),
    # Test-time augmentation strategies evaluated on the final model (Summers & Dinneen, ICML 2021; their code's
    # evaluate.py, strategy 'tta').
    Setting("tta", TTANames(), "test-time augmentation strategies evaluated on the final model", default=[]),
    Setting(
        "tta.pad",
        Number(1, 64, integer=True, hi_open=False),
        "padding of TTA crops",
        default=4,
        applies_when=_when("tta"),
        reason="the original's crop25/crop81 on 32x32 images (Summers & Dinneen's evaluate.py)",
    ),
    Setting("run_metrics", PartNames("run_metric"), "per-run metrics measured on the trained model", default=[]),
    # Released weights (seed 000's weights and inference-only scripts): `restudy export` / `validate`.
    # An engine setting under data.*: it is not passed to the data set's factory.
    Setting(
        "data.val_fraction",
        Number(0, 1),
        "share of the training examples held out as a validation split (for post-hoc steps such as "
        "temperature scaling, read by run metrics as x_val and y_val); drawn from the run's data seed",
        default=0.0,
        keyed_at_default=False,
        reason="no validation split: every training example trains",
    ),
    # Runs that feed runs (the experiment's input_run): set by planning, never by a study file.
    Setting(
        "input_run.take",
        Choice(("none", "weights", "outputs")),
        "what a run takes from its experiment's input_run (set from the experiment, not by hand)",
        default="none",
        keyed_at_default=False,
        reason="no input run",
    ),
    # Knowledge distillation (Hinton, Vinyals & Dean, 2015, §2): loss = (1 − alpha)·CE(labels) +
    # alpha·T²·KL(teacher_T ‖ student_T), both softmaxes at temperature T.
    Setting(
        "distill.temperature",
        Number(0, INF, lo_open=True),
        "softmax temperature of the teacher's and the student's outputs in the distillation term",
        default=1.0,
        applies_when=_when("input_run.take", "outputs"),
        reason="no softening: the teacher's probabilities as they are",
    ),
    Setting(
        "distill.alpha",
        Number(0, 1, hi_open=False),
        "weight of the distillation term (the labels' cross-entropy gets 1 − alpha)",
        default=0.5,
        applies_when=_when("input_run.take", "outputs"),
        reason="the two terms weighted equally",
    ),
    # Listed in a run's settings (and its key) only when on: turning it off changes no run.
    Setting(
        "save_weights",
        Flag(),
        "keep the final model's weights as model.safetensors in the run folder (for restudy export)",
        default=False,
        reason="disk: a paper-scale CIFAR network is 10-200 MB per run, hundreds of runs per study",
        keyed_at_default=False,
    ),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in DECLARATIONS}


# --- checking ------------------------------------------------------------------------------------


def is_passthrough(name: str) -> bool:
    """Whether ``name`` is a part argument (``model.width``) rather than an engine setting (one
    declared under a part's prefix, such as ``data.val_fraction``, is the engine's)."""
    return name.startswith(PASSTHROUGH_PREFIXES) and name not in SETTINGS


def check(name: str, value: Any) -> Problem | None:
    """Why ``name: value`` is not a valid setting (message, allowed values), or None if it is.

    Part names are checked against the registry, so import the study's module first.
    """
    if is_passthrough(name):
        if name.count(".") != 1 or not name.split(".", 1)[1]:
            return "part arguments look like model.NAME, data.NAME, method.NAME or transform.NAME", None
        return None
    decl = SETTINGS.get(name)
    if decl is None:
        close = difflib.get_close_matches(name, list(SETTINGS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown setting '{name}'{hint}", sorted(SETTINGS) + list(PASSTHROUGH_NAMES)
    return decl.constraint.problem(value)


def relevant(name: str, values: Mapping[str, Any]) -> bool:
    """Whether setting ``name`` matters given the settings' ``values`` (its ``applies_when``, and its
    own value where it is not keyed at its default): settings that do not apply are dropped from a
    run, so a report never lists (as "assumed") a hyperparameter the run did not use."""
    decl = SETTINGS.get(name)
    if decl is None:
        return True
    keyed = decl.keyed_at_default
    keyed = keyed if isinstance(keyed, bool) else keyed.holds(values)
    if not keyed and values.get(name, decl.default) == decl.default:
        return False
    return decl.applies_when is None or decl.applies_when.holds(values)


def part_args(settings: Mapping[str, Any], part: str) -> dict[str, Any]:
    """The ``part.*`` settings as keyword arguments: ``{"model.width": 64}`` -> ``{"width": 64}``
    (the engine's own settings under a part-argument prefix, such as ``data.val_fraction``,
    excluded; ``optimizer.*`` and ``schedule.*`` are engine settings passed to their part)."""
    prefix = part + "."
    own = (lambda k: k in SETTINGS) if prefix.startswith(PASSTHROUGH_PREFIXES) else (lambda k: False)
    return {k[len(prefix) :]: v for k, v in settings.items() if k.startswith(prefix) and not own(k)}


def value(settings: Mapping[str, Any], name: str) -> Any:
    """The resolved value of engine setting ``name``, or its declared default when the plan left it
    out because it does not apply (e.g. ``augment.pad`` without cropping). Never restate a
    default elsewhere: ask this."""
    if name in settings:
        return settings[name]
    if name not in SETTINGS:
        raise KeyError(name)
    default = SETTINGS[name].default
    if default is REQUIRED:
        raise KeyError(f"required setting '{name}' is not set")
    return default


# --- typed view ----------------------------------------------------------------------------------


def _frozen(v: Any) -> Any:
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


Engine = dataclasses.make_dataclass(
    "Engine",
    [(s.attr, s.constraint.py_type) for s in DECLARATIONS],
    frozen=True,
    namespace={
        "__doc__": "The engine settings of one run as attributes (``optimizer.lr`` -> "
        "``optimizer_lr``; lists as tuples); defaults where a setting does not apply."
    },
)
Engine.__module__ = __name__


def typed(settings: Mapping[str, Any]) -> Any:
    """The engine settings of resolved ``settings`` as a frozen :class:`Engine` (a required setting
    they lack, as a stored record of another version may, is None)."""
    return Engine(
        **{
            s.attr: _frozen(None if s.required and s.name not in settings else value(settings, s.name))
            for s in DECLARATIONS
        }
    )


Provenance = dict[str, str]  # {"provenance": "paper", "source": "Sec. 4.1"}


@dataclass(frozen=True)
class RunSettings:
    """The resolved settings of one run, each value with its provenance.

    ``values`` is the flat map of dotted names a run's key hashes and its ``run.json`` stores;
    ``provenance`` says, per name, where the value came from (``{"provenance", "source"}``).
    Read them typed: :attr:`engine` for the engine's own settings, :meth:`part_args` for what a
    registered part (model, data, method, transform, optimizer, schedule) is called with.
    """

    values: dict[str, Any]
    provenance: dict[str, Provenance] = field(default_factory=dict)

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> RunSettings | None:
        """The settings a stored run record (``run.json`` as a dict) holds; None when it holds none."""
        spec = record.get("spec") or {}
        values = spec.get("settings") if isinstance(spec, Mapping) else None
        if not isinstance(values, Mapping) or not values:
            return None
        return cls(dict(values), dict(spec.get("provenance") or {}))

    @functools.cached_property
    def engine(self) -> Any:
        """The engine settings as a frozen :class:`Engine` (``engine.optimizer_lr``; lists as tuples)."""
        return typed(self.values)

    def part_args(self, part: str) -> dict[str, Any]:
        """The ``part.*`` values as keyword arguments: ``model.width: 64`` -> ``{"width": 64}``."""
        return part_args(self.values, part)

    def has(self, name: str) -> bool:
        """Whether the run sets ``name`` itself (settings that do not apply are left out)."""
        return name in self.values

    def named(self, name: str) -> Any:
        """The value of a setting named at run time (``--only KEY=VALUE``, a part argument a
        check names); its declared default when the run leaves it out. Engine code reads
        :attr:`engine` instead."""
        if is_passthrough(name):
            return self.values.get(name)
        return value(self.values, name)

    def of_parts(self, *parts: str) -> dict[str, Any]:
        """The values naming ``parts`` and their arguments: ``of_parts("model")`` -> ``{"model": "fc",
        "model.width": 64}`` (to say which settings a part was built from)."""
        return {k: v for k, v in self.values.items() if any(k == p or k.startswith(p + ".") for p in parts)}

    def with_values(self, changes: Mapping[str, Any], source: str) -> RunSettings:
        """These settings with ``changes`` applied, each marked assumed from ``source``."""
        mark = {"provenance": "assumed", "source": source}
        return RunSettings({**self.values, **changes}, {**self.provenance, **{k: mark for k in changes}})

    def without_part_args(self, part: str) -> RunSettings:
        """These settings without the ``part.*`` arguments (when the part itself is switched)."""
        keep = {k: v for k, v in self.values.items() if not k.startswith(part + ".")}
        return RunSettings(keep, {k: v for k, v in self.provenance.items() if k in keep})

    def table(self) -> dict[str, dict[str, Any]]:
        """Per name, the value with where it came from: ``{name: {value, provenance, source}}``."""
        return {k: {"value": v, **self.provenance.get(k, {})} for k, v in self.values.items()}

    def canonical(self) -> str:
        """The values as canonical JSON: equal for runs with equal settings (a cache or group key)."""
        return json.dumps(self.values, sort_keys=True, default=str)

    def to_dict(self) -> dict[str, Any]:
        """A copy of the flat values (as ``run.json`` stores them and run metrics receive them)."""
        return dict(self.values)


def declaration_row(decl: Setting) -> dict[str, str]:
    """One declaration as text columns: name, type, default, constraint, applies when, help, reason."""
    default = "(required)" if decl.required else _show(decl.default)
    return {
        "name": decl.name,
        "type": decl.type_name,
        "default": default,
        "constraint": decl.constraint.describe(),
        "applies when": decl.applies_when.describe() if decl.applies_when else "always",
        "help": decl.help,
        "default's reason": decl.reason,
    }


def _show(v: Any) -> str:
    import json

    return json.dumps(v)
