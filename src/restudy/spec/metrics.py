"""What a metric's values mean: which way is better and the unit they are written in, for the
metrics every run records and for those a registered run metric declares.

A run metric declares the names it adds in its ``metrics`` attribute: a list of names (each then
higher-is-better and unitless), or a mapping from name to :class:`MetricInfo`::

    @register("run_metric", "calibration")
    def calibration(model, x_test, y_test, **_): ...
    calibration.metrics = {"ece": MetricInfo(higher_is_better=False, unit="%", label="expected calibration error")}

Claims then compare in the metric's own direction (an ``a_beats_b`` on ``ece`` means a lower ECE)
and reports write differences in its unit (accuracies in % differ in pp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import plugins


@dataclass(frozen=True)
class MetricInfo:
    """One metric's direction and unit.

    Attributes:
        higher_is_better: larger values are better (accuracies) rather than worse (losses, errors, time).
        unit: the unit its values are written in: ``"%"`` (differences then in pp), ``"s"``, or
            ``""`` for a plain number.
        label: how a reader names it ("expected calibration error"); the metric's name when empty.
    """

    higher_is_better: bool = True
    unit: str = ""
    label: str = ""


BUILT_IN: dict[str, MetricInfo] = {
    "test_acc": MetricInfo(True, "%", "test accuracy"),
    "test_acc_best": MetricInfo(True, "%", "best test accuracy over epochs"),
    "train_acc": MetricInfo(True, "%", "training accuracy"),
    "test_loss": MetricInfo(False, "", "test loss"),
    "train_loss": MetricInfo(False, "", "training loss"),
    "diverged": MetricInfo(False, "", "divergence (1 if the loss became NaN)"),
    "wall_s": MetricInfo(False, "s", "training time"),
    "fit_step": MetricInfo(False, "", "steps to fit the training set"),
    "fit_epoch": MetricInfo(False, "", "epochs to fit the training set"),
}
ACCURACY_PREFIXES = ("test_acc", "train_acc")  # test_acc_tta_<s>, test_acc_ensemble, test_acc_top5: %


def declared(names: Any) -> dict[str, MetricInfo]:
    """A run metric's ``metrics`` attribute as ``{name: MetricInfo}``: a list of names gets the
    default information (higher is better, no unit), a mapping its own (a ``MetricInfo`` or a dict
    of its fields)."""
    if names is None:
        return {}
    if isinstance(names, Mapping):
        return {str(k): v if isinstance(v, MetricInfo) else MetricInfo(**dict(v)) for k, v in names.items()}
    return {str(n): MetricInfo() for n in names}


def metric_info(name: str) -> MetricInfo:
    """The direction and unit of metric ``name``: a built-in one's, an accuracy's (any name starting
    with test_acc or train_acc: higher is better, in %), the one a registered run metric declares,
    else higher-is-better and unitless."""
    if name in BUILT_IN:
        return BUILT_IN[name]
    if name.startswith(ACCURACY_PREFIXES):
        return MetricInfo(True, "%", name.replace("_", " "))
    for kind_name in plugins.names("run_metric"):
        info = declared(getattr(plugins.get("run_metric", kind_name), "metrics", None)).get(name)
        if info is not None:
            return info
    return MetricInfo()


def higher_is_better(name: str) -> bool:
    """Whether larger values of metric ``name`` are better (:func:`metric_info`)."""
    return metric_info(name).higher_is_better


def difference_unit(name: str) -> str:
    """The unit a difference of ``name`` is written in, with its leading space: `` pp`` for a
    metric in %, `` s`` for seconds, nothing for a plain number."""
    u = metric_info(name).unit
    return " pp" if u == "%" else (f" {u}" if u else "")


def value_unit(name: str) -> str:
    """The unit a value of ``name`` is written in: ``%`` (no space) for a percentage, `` s`` for
    seconds, nothing for a plain number."""
    u = metric_info(name).unit
    return "%" if u == "%" else (f" {u}" if u else "")
