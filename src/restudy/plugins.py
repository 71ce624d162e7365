"""The plug-in registry: name -> factory for every part a study may add or choose by name.

Kinds: datasets, data transforms (applied once to a loaded data set before training), models,
methods, optimizers, schedules and batch augmentations (what a run is built from); per-run metrics
(measured on the trained model); claim kinds and model-set views (how compare judges and reads
runs).

A built-in or user study contributes parts by decorating factories::

    @register("model", "fc")
    def fc(input_shape, num_classes, hidden=1, width=500): ...

and the engine builds them with ``create("model", "fc", **kwargs)``. An unknown name is an error that
lists the known names and the closest match. A study's own code registers through
:mod:`restudy.api`; tests that register parts do it inside :func:`scoped`, which restores the
registry on exit. Every change bumps :func:`generation`, so that what is derived from the registry
(the study schema's union of claim kinds) is rebuilt once per change, not on every use.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .errors import RestudyError

KINDS = ("dataset", "transform", "model", "method", "optimizer", "schedule", "augment", "run_metric", "claim", "view")
# What a run is built and measured with (a worker process loads only these: claim kinds and views
# belong to the driver's comparison and would import scipy and pydantic models for nothing).
TRAINING_KINDS = ("dataset", "transform", "model", "method", "optimizer", "schedule", "augment", "run_metric")

_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {kind: {} for kind in KINDS}
# Modules that register the built-in parts of each kind; imported lazily on the kind's first
# lookup, so that e.g. reading a study file (claim kinds) never imports torch (models).
_TRAINING_MODULES = ("restudy.data", "restudy.models", "restudy.methods", "restudy.training.optim")
BUILTIN_MODULES: dict[str, tuple[str, ...]] = {kind: _TRAINING_MODULES for kind in KINDS}
BUILTIN_MODULES["claim"] = (
    "restudy.claims.numeric",
    "restudy.claims.a_beats_b",
    "restudy.claims.trend",
    "restudy.claims.threshold",
    "restudy.claims.variability",
)
BUILTIN_MODULES["view"] = ("restudy.compare.views",)
BUILTIN_MODULES["augment"] = ("restudy.training.batches", "restudy.data.images")  # images: decode-time crops
BUILTIN_MODULES["run_metric"] = (*_TRAINING_MODULES, "restudy.training.evaluate")  # evaluate: top5
BUILTIN_MODULES["transform"] = ()  # no built-in transforms: a study's module registers its own
_loaded: set[str] = set()
_generation = [0]  # bumped by every change of _REGISTRY


def generation() -> int:
    """A number that changes whenever a registration is added or undone."""
    return _generation[0]


@contextlib.contextmanager
def scoped() -> Iterator[None]:
    """Registrations made inside the block are undone on exit (restudy's own included, which are
    loaded first so that they stay): for tests that register parts of their own."""
    load_builtins()
    saved = {kind: dict(table) for kind, table in _REGISTRY.items()}
    try:
        yield
    finally:
        for kind, table in saved.items():
            if _REGISTRY[kind] != table:
                _REGISTRY[kind] = table
                _generation[0] += 1


def register(kind: str, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``fn`` under ``name`` for ``kind``."""
    if kind not in _REGISTRY:
        raise RestudyError("unknown registry kind", got=kind, allowed=KINDS)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        existing = _REGISTRY[kind].get(name)
        if (
            existing is not None
            and existing is not fn
            and (
                getattr(existing, "__qualname__", None) != getattr(fn, "__qualname__", None)
                or getattr(existing, "__module__", None) != getattr(fn, "__module__", None)
            )
        ):
            raise RestudyError(f"{kind} '{name}' is registered twice", got=f"{fn.__module__}.{fn.__qualname__}")
        if existing is not fn:
            _REGISTRY[kind][name] = fn
            _generation[0] += 1
        return fn

    return deco


def load_builtins(kind: str | tuple[str, ...] | None = None) -> None:
    """Import the modules that register restudy's own parts of ``kind`` (a kind, a tuple of kinds,
    or every kind when None); idempotent."""
    for k in KINDS if kind is None else ((kind,) if isinstance(kind, str) else kind):
        for mod in BUILTIN_MODULES[k]:
            if mod not in _loaded:
                _loaded.add(mod)
                importlib.import_module(mod)


def import_study_module(module: str, search_path: str | None = None) -> None:
    """Import a study's own module (its models, layers, transforms register on import).

    ``search_path``: a folder to import it from (the study file's folder), put first on
    ``sys.path`` of this process; worker processes started afterwards inherit it.
    """
    if search_path and search_path not in sys.path:
        sys.path.insert(0, search_path)
    try:
        importlib.import_module(module)
    except (ImportError, SyntaxError) as e:
        where = f"module (looked in {search_path} and on sys.path)" if search_path else "module"
        raise RestudyError(f"cannot import the study module: {e}", where=where, got=module) from e


def names(kind: str) -> list[str]:
    load_builtins(kind)
    return sorted(_REGISTRY[kind])


def get(kind: str, name: str) -> Callable[..., Any]:
    """The factory registered as ``name``; a clear error listing known names otherwise."""
    load_builtins(kind)
    table = _REGISTRY[kind]
    if name not in table:
        known = sorted(table)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise RestudyError(f"unknown {kind} '{name}'{hint}", allowed=known or "(none registered)")
    return table[name]


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Build the part registered as ``name`` with keyword arguments ``kwargs``."""
    fn = get(kind, name)
    try:
        return fn(**kwargs)
    except TypeError as e:
        raise RestudyError(f"bad arguments for {kind} '{name}': {e}", got=sorted(kwargs)) from e
