"""Engine settings: every setting's name, default and check, declared once.

A setting is a dotted name. ``model``, ``data`` and ``method`` name registered parts, and
``model.*``, ``data.*``, ``method.*`` are passed to them as keyword arguments (:func:`part_args`);
the other names are the engine's own, declared in ``ENGINE_SETTINGS``.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import StudyError
from .tta import tta_names_problem

PASSTHROUGH_PREFIXES = ("model.", "data.", "method.")


def _in(allowed: tuple[Any, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(map(str, allowed))}"


def _num(lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = True,
         integer: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type:
            return f"must be {kind}"
        left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            return f"must be {kind} in {left}{lo}, {hi}{right}"
        return None
    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _str(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "must be a non-empty name"


def _betas(v: Any) -> str | None:
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in v)
    return None if ok else "must be a list of two numbers in [0, 1)"


INF = float("inf")
# name -> (default, check). ``None`` default means required.
ENGINE_SETTINGS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "model": (None, _str),
    "data": (None, _str),
    "method": ("none", _str),
    "optimizer": ("sgd", _in(("sgd", "adam"))),
    "optimizer.lr": (None, _num(0, INF, lo_open=True)),
    "optimizer.momentum": (0.0, _num(0, 1)),
    "optimizer.nesterov": (False, _bool),
    "optimizer.weight_decay": (0.0, _num(0, INF)),
    "optimizer.betas": ([0.9, 0.999], _betas),
    "optimizer.eps": (1e-8, _num(0, INF, lo_open=True)),
    "optimizer.lr_mult_bias_bn": (1.0, _num(0, INF)),
    "cka_examples": (0, _num(0, 10**6, integer=True)),
    "schedule": ("constant", _in(("constant", "linear", "cosine", "exponential", "snapshot"))),
    "schedule.warmup_epochs": (0.0, _num(0, INF)),
    # Snapshot ensembles: cycles of the cyclic schedule = snapshots (originals.md §4.5).
    "schedule.cycles": (5, _num(1, 100000, integer=True)),
    "schedule.gamma": (1.0, _num(0, 1, lo_open=True, hi_open=False)),
    "epochs": (None, _num(1, 100000, integer=True)),
    "batch_size": (None, _num(1, 10**7, integer=True)),
    "eval_batch_size": (1024, _num(1, 10**7, integer=True)),
    "memory_format": ("contiguous", _in(("contiguous", "channels_last"))),
    "device": ("auto", _in(("auto", "cpu", "cuda"))),
    "label_smoothing": (0.0, _num(0, 1)),
    "augment": ("none", _in(("none", "flip", "crop", "flip_crop"))),
    "augment.pad": (4, _num(0, 64, integer=True)),
    # One-ulp change of one weight after initialization (originals.md §4.3 "Random bit change").
    "perturb": ("none", _in(("none", "one_ulp"))),
    "perturb.param": ("first", _str),
    # Test-time augmentation strategies evaluated on the final model (originals.md §4.6).
    "tta": ([], tta_names_problem),
    "tta.pad": (4, _num(1, 64, integer=True, hi_open=False)),
}


def check_setting(name: str, value: Any, where: str) -> None:
    """Raise a ``StudyError`` naming ``where`` if ``name``/``value`` is not a valid setting."""
    if name.startswith(PASSTHROUGH_PREFIXES):
        if name.count(".") != 1 or not name.split(".", 1)[1]:
            raise StudyError("argument settings look like model.NAME, data.NAME or method.NAME",
                             where=where, got=name)
        return
    if name not in ENGINE_SETTINGS:
        import difflib

        close = difflib.get_close_matches(name, list(ENGINE_SETTINGS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise StudyError(f"unknown setting '{name}'{hint}",
                         where=where, allowed=sorted(ENGINE_SETTINGS) + ["model.*", "data.*", "method.*"])
    problem = ENGINE_SETTINGS[name][1](value)
    if problem:
        sep = "." if where.startswith(("experiments", "defaults", "scales")) else " "
        raise StudyError(problem, where=where if where.endswith(name) else f"{where}{sep}{name}", got=value)


class _NonEmpty:
    """A value set for ``_ONLY_WHEN`` that holds every non-empty value (e.g. a non-empty list)."""

    def __contains__(self, value: Any) -> bool:
        return bool(value)


# Settings that only matter for some choices of another setting: dropped otherwise, so a report
# never lists (as "assumed") a hyperparameter the run did not use.
_ONLY_WHEN = {
    "optimizer.momentum": ("optimizer", ("sgd",)), "optimizer.nesterov": ("optimizer", ("sgd",)),
    "optimizer.betas": ("optimizer", ("adam",)), "optimizer.eps": ("optimizer", ("adam",)),
    "schedule.gamma": ("schedule", ("exponential",)),
    "schedule.warmup_epochs": ("schedule", ("cosine", "snapshot")),
    "schedule.cycles": ("schedule", ("snapshot",)),
    "augment.pad": ("augment", ("crop", "flip_crop")),
    "perturb.param": ("perturb", ("one_ulp",)),
    "tta.pad": ("tta", _NonEmpty()),
}


def relevant(name: str, values: dict[str, Any]) -> bool:
    """Whether setting ``name`` matters given the other settings' ``values`` (see ``_ONLY_WHEN``)."""
    if name not in _ONLY_WHEN:
        return True
    on, allowed = _ONLY_WHEN[name]
    return values[on] in allowed


def part_args(settings: dict[str, Any], part: str) -> dict[str, Any]:
    """The ``part.*`` settings as keyword arguments: ``{"model.width": 64}`` -> ``{"width": 64}``."""
    prefix = part + "."
    return {k[len(prefix):]: v for k, v in settings.items() if k.startswith(prefix)}


def value(settings: dict[str, Any], name: str) -> Any:
    """The resolved value of engine setting ``name``, or its declared default when the plan left it
    out because it does not apply (e.g. ``augment.pad`` without cropping). Never restate a
    default elsewhere: ask this."""
    if name in settings:
        return settings[name]
    if name not in ENGINE_SETTINGS:
        raise KeyError(name)
    return ENGINE_SETTINGS[name][0]
