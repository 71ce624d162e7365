"""The run record: what one run was, how it ended, what it measured, where and how long.

A record is a JSON-safe dict written as ``runs/<key>/run.json``; ``RunRecord`` gives it a type.
``validate()`` checks a record read from disk against its schema (types, statuses, metric ranges,
the key of its folder) so that a damaged or foreign file is an invalid run, never a silent result.
``row()`` flattens it to what comparisons need.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import StoreError
from .artifacts import variant_id

STATUSES = ("finished", "diverged", "failed")
DONE_STATUSES = ("finished", "diverged")  # never redone on resume; "failed" is retried


def now() -> str:
    """The current UTC time, ISO 8601 to the second: a record's ``started_at`` and ``finished_at``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    key: str
    spec: dict[str, Any]  # RunSpec.to_dict()
    status: str  # one of STATUSES
    reason: str = ""  # why diverged / failed
    metrics: dict[str, float | None] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    step_curve: list[dict[str, Any]] = field(default_factory=list)  # {step, loss, n}; setting curve_every_steps
    timings: dict[str, float] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, str]] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe dict; ``step_curve`` only when recorded (run.json stays as before without it)."""
        d = asdict(self)
        if not d["step_curve"]:
            del d["step_curve"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def row(record: dict[str, Any]) -> dict[str, Any]:
    """The flat view of a record that compare and report use."""
    spec = record["spec"]
    variant = spec.get("variant", {})
    return {
        "key": record["key"],
        "experiment": spec["experiment"],
        "variant": variant,
        "variant_id": variant_id(variant),
        "seed_index": spec["seed_index"],
        "scale": spec.get("scale"),
        "dataset": spec.get("dataset_label"),
        "status": record["status"],
        "reason": record.get("reason", ""),
        "metrics": record.get("metrics", {}),
        "wall_s": record.get("timings", {}).get("wall_s"),
        "train_s": record.get("timings", {}).get("train_s"),
        "env_fingerprint": record.get("env", {}).get("fingerprint"),
        "execution": record.get("env", {}).get("execution"),
        "stack_size": record.get("env", {}).get("stack_size"),
        "host_load": record.get("env", {}).get("host_load"),
        "step_curve": record.get("step_curve", []),
    }


# --- the schema of run.json -----------------------------------------------------------------------

SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"  # a run key or an artifact: one plain file name
COUNT_METRICS = ("epochs_done", "n_test", "n_train", "n_classes", "n_val")
# What every run records (restudy.training.loop: TrainResult.final_metrics; wall_s from its timings;
# fit_step and fit_epoch with stop_at_fit), and the names test-time augmentation and snapshot
# ensembles add (test_acc_tta_<strategy>, test_acc_ensemble, test_acc_ensemble_tta_<strategy>). A
# registered run metric declares the names it adds in its ``metrics`` attribute.
RECORDED_METRICS = (
    "test_acc",
    "test_acc_best",
    "train_acc",
    "test_loss",
    "train_loss",
    "diverged",
    "wall_s",
    "fit_step",
    "fit_epoch",
    *COUNT_METRICS,
)
RECORDED_METRIC_PATTERN = r"^test_acc_(tta_[a-z0-9_]+|ensemble|ensemble_tta_[a-z0-9_]+)$"
ACCURACY_PREFIXES = ("test_acc", "train_acc")  # test_acc, test_acc_tta_<s>, test_acc_ensemble...: percent
LOSS_PREFIXES = ("test_loss", "train_loss")


class _Spec(BaseModel):
    """The run's spec as ``RunSpec.to_dict()`` writes it (fields added later are allowed)."""

    model_config = ConfigDict(strict=True, extra="allow")
    key: str | None = None
    study: str
    scale: str
    experiment: str
    variant: dict[str, str]
    seed_index: int = Field(ge=0)
    settings: dict[str, Any] = Field(default_factory=dict)
    # Below: recorded for people and provenance; their types are checked, their values not.
    provenance: dict[str, Any] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)
    kernels: str | None = None
    vary: list[str] = Field(default_factory=list)
    streams: str | None = None
    study_module: str | None = None
    dataset_label: str | None = ""
    extra: dict[str, Any] = Field(default_factory=dict)


class _Artifact(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    what: str = ""


class _StepRow(BaseModel):
    """One row of ``step_curve``: the mean training loss of the ``n`` steps ending at ``step``."""

    model_config = ConfigDict(strict=True, extra="forbid")
    step: int = Field(ge=1)
    loss: float = Field(ge=0, allow_inf_nan=False)
    n: int = Field(ge=1)


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    key: str = Field(pattern=SAFE_NAME)
    spec: _Spec
    status: Literal[STATUSES]  # type: ignore[valid-type]
    reason: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    curves: list[dict[str, Any]] = Field(default_factory=list)
    step_curve: list[_StepRow] = Field(default_factory=list)  # absent in records from before it existed
    timings: dict[str, float] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    artifacts: dict[str, _Artifact] = Field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""


def validate(d: Any, folder_key: str | None = None, *, where: str | None = None) -> RunRecord:
    """Check a record read from disk; return it typed.

    Checks: the fields and their types (``spec`` with the fields of ``RunSpec``, ``variant`` a
    mapping of strings, ``seed_index`` an integer >= 0), ``status`` in :data:`STATUSES`, every
    metric a finite number in its range or null (accuracies ``test_acc*``/``train_acc*`` in
    [0, 100], losses ``test_loss*``/``train_loss*`` >= 0, ``diverged`` 0 or 1, counts integers
    >= 0, any other metric finite), ``step_curve`` rows ``{step >= 1, loss finite >= 0, n >= 1}``
    (absent in older records), timings finite and >= 0, artifact names plain file names with a
    sha256, the spec's key equal to the record's, and the record's key equal to ``folder_key``
    (the name of the folder it was read from: a run.json copied from another run is refused).

    Args:
        d: the parsed JSON.
        folder_key: the name of the run folder the record came from, if any.
        where: the file, for error messages.

    Raises:
        StoreError: naming the field, the value found and what is allowed.
    """
    if not isinstance(d, dict):
        raise StoreError(
            "a run record must be a JSON object",
            where=where,
            got=_short(type(d).__name__),
            allowed="an object with key, spec, status, metrics, ...",
        )
    try:
        model = _Record.model_validate(d)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field_path = ".".join(str(p) for p in err["loc"])
        got = None if err["type"] == "missing" else _short(err.get("input"))
        raise StoreError(f"field {field_path}: {err['msg']}", where=where, got=got) from None
    for name, value in model.metrics.items():
        _check_metric(name, value, where)
    for name, value in model.timings.items():
        if not (math.isfinite(value) and value >= 0):
            raise StoreError(
                f"field timings.{name}: not a finite duration",
                where=where,
                got=value,
                allowed="a number of seconds >= 0",
            )
    for name in model.artifacts:
        if not re.match(SAFE_NAME, name):
            raise StoreError(
                f"field artifacts: {_short(name)!r} is not a file name of the run folder",
                where=where,
                allowed="letters, digits, '_', '-', '.'",
            )
    if model.spec.key is not None and model.spec.key != model.key:
        raise StoreError(f"field spec.key differs from the record's key {model.key!r}", where=where, got=model.spec.key)
    if folder_key is not None and model.key != folder_key:
        raise StoreError(
            "the record's key is not its folder's (a run.json copied from another run?)",
            where=where,
            got=model.key,
            allowed=folder_key,
        )
    return RunRecord.from_dict(d)


def _check_metric(name: str, value: Any, where: str | None) -> None:
    """Raise unless ``value`` is null or a finite number in the range the metric allows."""
    if value is None:
        return
    if name in COUNT_METRICS:
        ok, allowed = type(value) is int and value >= 0, "an integer >= 0 or null"
    elif name == "diverged":
        ok, allowed = type(value) in (int, float) and value in (0, 1), "0 or 1"
    else:
        ok = type(value) in (int, float) and math.isfinite(value)
        allowed = "a finite number or null"
        if name.startswith(ACCURACY_PREFIXES):
            ok, allowed = ok and 0 <= value <= 100, "a number in [0, 100] (percent) or null"
        elif name.startswith(LOSS_PREFIXES):
            ok, allowed = ok and value >= 0, "a number >= 0 or null"
    if not ok:
        raise StoreError(
            f"field metrics.{name}: out of range or not a number", where=where, got=_short(value), allowed=allowed
        )


def _short(value: Any, n: int = 120) -> Any:
    """``value`` as is if short, else its truncated repr (a record may hold megabytes)."""
    text = repr(value)
    return value if len(text) <= n else f"{text[:n]}… ({len(text)} characters)"
