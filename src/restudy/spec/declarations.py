"""The engine's settings, each declared once: name, value type (:mod:`restudy.spec.constraints`),
default and why, when it applies, and whether it enters a run's key at its default. Read them
through :mod:`restudy.spec.settings` (checks, the typed view of a run's settings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    Text,
    TTANames,
)


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
    # Released weights (as the [Re] Network Deconvolution report released its weights and
    # inference-only scripts): `restudy export` / `validate`.
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
