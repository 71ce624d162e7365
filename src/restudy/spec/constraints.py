"""The value types an engine setting may take (:class:`Constraint` and its kinds): each says why a
value is not one of its values (with the allowed ones), describes itself for ``restudy show
--settings``, and lists values it refuses (for tests). The settings themselves are declared in
:mod:`restudy.spec.settings`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from ..spec.tta_strategies import tta_names_problem

INF = float("inf")

# A problem with a value: (what is wrong, the allowed values or None).
Problem = tuple[str, "str | list[str] | None"]


class Constraint:
    """What values a setting takes. ``problem`` says why a value is not one (None if it is)."""

    type_name = "value"
    py_type: Any = object

    def problem(self, value: Any) -> Problem | None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def invalid(self) -> list[Any]:
        """Values this constraint refuses (for tests, like scikit-learn's invalid-parameter checks)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Constraint):
    """A finite number (or integer) in an interval, open or closed at each end."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = True
    integer: bool = False

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return "integer" if self.integer else "number"

    @property
    def py_type(self) -> Any:  # type: ignore[override]
        return int if self.integer else float

    def describe(self) -> str:
        left, right = ("(" if self.lo_open else "["), (")" if self.hi_open else "]")
        return f"{left}{_num(self.lo)}, {_num(self.hi)}{right}"

    def problem(self, v: Any) -> Problem | None:
        kind = "an integer" if self.integer else "a number"
        ok_type = isinstance(v, int) if self.integer else isinstance(v, (int, float))
        inside = (
            ok_type
            and not isinstance(v, bool)
            and math.isfinite(v)
            and self.lo <= v <= self.hi
            and not (self.lo_open and v == self.lo)
            and not (self.hi_open and v == self.hi)
        )
        return None if inside else (f"must be {kind} in {self.describe()}", None)

    def invalid(self) -> list[Any]:
        below = self.lo if self.lo_open else self.lo - 1
        out: list[Any] = [below, "1", True, float("nan")]
        if math.isfinite(self.hi):
            out.append(self.hi if self.hi_open else self.hi + 1)
        else:
            out.append(INF)
        if self.integer:
            out.append(self.lo + 0.5)
        return out


def _num(x: float) -> str:
    if x == INF:
        return "inf"
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class Flag(Constraint):
    type_name = "bool"
    py_type = bool

    def problem(self, v: Any) -> Problem | None:
        return None if isinstance(v, bool) else ("must be true or false", None)

    def describe(self) -> str:
        return "true or false"

    def invalid(self) -> list[Any]:
        return ["yes", 1, None]


@dataclass(frozen=True)
class Text(Constraint):
    type_name = "text"
    py_type = str

    def problem(self, v: Any) -> Problem | None:
        return None if isinstance(v, str) and v else ("must be a non-empty name", None)

    def describe(self) -> str:
        return "a non-empty name"

    def invalid(self) -> list[Any]:
        return ["", 3]


@dataclass(frozen=True)
class Choice(Constraint):
    """One of a fixed set of words that are not registered parts (e.g. a memory format)."""

    values: tuple[str, ...]
    type_name = "choice"
    py_type = str

    def problem(self, v: Any) -> Problem | None:
        return None if v in self.values else (f"must be one of {', '.join(self.values)}", None)

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)

    def invalid(self) -> list[Any]:
        return ["no_such_choice", 1, None]


@dataclass(frozen=True)
class PartName(Constraint):
    """The name of a registered part of registry kind ``kind`` (after the study's module registered
    its own). A kind with nothing registered yet is not checked here; building the part reports it."""

    kind: str
    type_name = "name"
    py_type = str

    def known(self) -> list[str]:
        from .. import plugins

        return plugins.names(self.kind)

    def problem(self, v: Any) -> Problem | None:
        if not isinstance(v, str) or not v:
            return f"must be the name of a registered {self.kind}", self.known() or None
        known = self.known()
        if known and v not in known:
            close = difflib.get_close_matches(v, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return f"unknown {self.kind} '{v}'{hint}", known
        return None

    def describe(self) -> str:
        known = self.known()
        return f"a registered {self.kind} name" + (f": {', '.join(known)}" if known else "")

    def invalid(self) -> list[Any]:
        return ["no_such_part", "", 3]


@dataclass(frozen=True)
class PartNames(Constraint):
    """A list of distinct names of registered parts of kind ``kind`` (may be empty)."""

    kind: str
    type_name = "list[name]"
    py_type = tuple

    def problem(self, v: Any) -> Problem | None:
        one = PartName(self.kind)
        if not isinstance(v, list):
            return f"must be a list of {self.kind} names", one.known() or None
        for name in v:
            p = one.problem(name)
            if p:
                return p
        if len(set(v)) != len(v):
            return f"must not name a {self.kind} twice", None
        return None

    def describe(self) -> str:
        known = PartName(self.kind).known()
        return f"a list of registered {self.kind} names" + (f": {', '.join(known)}" if known else "")

    def invalid(self) -> list[Any]:
        return ["not_a_list", ["no_such_part"]]


@dataclass(frozen=True)
class Betas(Constraint):
    type_name = "list[number]"
    py_type = tuple

    def problem(self, v: Any) -> Problem | None:
        ok = (
            isinstance(v, list)
            and len(v) == 2
            and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in v)
        )
        return None if ok else ("must be a list of two numbers in [0, 1)", None)

    def describe(self) -> str:
        return "two numbers in [0, 1)"

    def invalid(self) -> list[Any]:
        return [[0.9], [0.9, 1.0], [0.9, float("nan")], 0.9]


@dataclass(frozen=True)
class Milestones(Constraint):
    """Epochs at which a step schedule decays: a strictly increasing list of positive integers."""

    type_name = "list[integer]"
    py_type = tuple

    def problem(self, v: Any) -> Problem | None:
        ok = (
            isinstance(v, list)
            and len(v) > 0
            and all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in v)
            and all(a < b for a, b in zip(v, v[1:], strict=False))
        )
        return None if ok else ("must be a non-empty, strictly increasing list of epochs (integers >= 1)", None)

    def describe(self) -> str:
        return "strictly increasing epochs, e.g. [100, 150]"

    def invalid(self) -> list[Any]:
        return [[], [150, 100], [0, 10], [1.5], 100, [True]]


@dataclass(frozen=True)
class TTANames(Constraint):
    type_name = "list[name]"
    py_type = tuple

    def problem(self, v: Any) -> Problem | None:
        p = tta_names_problem(v)
        return None if p is None else (p, None)

    def describe(self) -> str:
        return "a list of TTA strategies: flip, cropN or flip_cropN (N = k*k, k >= 2)"

    def invalid(self) -> list[Any]:
        return ["flip", ["crop3"], ["flip", "flip"]]
