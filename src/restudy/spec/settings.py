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

from .constraints import Problem
from .declarations import DECLARATIONS, REQUIRED, SETTINGS, AppliesWhen, Setting  # noqa: F401 (read from here)

PASSTHROUGH_PREFIXES = ("model.", "data.", "method.", "transform.")
PASSTHROUGH_NAMES = ("model.*", "data.*", "method.*", "transform.*")


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
