"""Test-time augmentation strategy names: the grammar a study file's ``tta`` setting and a model
set's ``tta:<strategy>`` view are checked against, before any run (no torch).

``flip`` (original + mirror), ``cropN`` with ``N = k²`` (k ≥ 2) crops per image at offsets ``0, s,
…, 2·pad`` along each spatial axis, and ``flip_cropN`` (the crops of the image and of its mirror);
:mod:`restudy.training.tta` applies them (Summers & Dinneen, "Nondeterminism and Instability in
Neural Network Optimization", ICML 2021, Sec. 4.4, strategy ``tta``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import RestudyError

# Names a user is most likely to want; any name matching the grammar is accepted.
EXAMPLES = ("flip", "crop25", "crop81", "flip_crop25", "flip_crop81", "crop9", "flip_crop9")
_NAME = re.compile(r"^(?:(?P<flip>flip)|(?P<fc>flip_)?crop(?P<n>[1-9][0-9]*))$")
_GRAMMAR = "flip, cropN or flip_cropN with N = k*k crops (k >= 2), e.g. " + ", ".join(EXAMPLES)


@dataclass(frozen=True)
class TTAStrategy:
    """A parsed strategy name.

    Attributes:
        name: the name as given, e.g. ``"flip_crop25"``.
        flip: whether mirrored views are included (alone for ``flip``, or crops of the mirror).
        per_axis: crop offsets per spatial axis (k in ``cropN``, N = k²); 0 for ``flip``.
    """

    name: str
    flip: bool
    per_axis: int

    def offsets(self, pad: int) -> list[int]:
        """The crop offsets along one axis for padding ``pad``: ``0, s, ..., 2·pad``.

        Raises:
            RestudyError: ``2·pad`` is not a multiple of ``k − 1`` (no whole stride).
        """
        if not self.per_axis:
            return []
        span = 2 * pad
        if pad < 1 or span % (self.per_axis - 1):
            raise RestudyError(
                f"TTA '{self.name}' needs {self.per_axis} offsets per axis in "
                f"0..{span}, which needs 2·pad divisible by {self.per_axis - 1}",
                where="tta.pad",
                got=pad,
            )
        stride = span // (self.per_axis - 1)
        return list(range(0, span + 1, stride))


def parse_strategy(name: str) -> TTAStrategy:
    """Parse a strategy name (see the module docstring for the grammar).

    Raises:
        RestudyError: the name does not follow the grammar.
    """
    problem = strategy_problem(name)
    if problem:
        raise RestudyError(problem, where="tta", got=name, allowed=_GRAMMAR)
    m = _NAME.match(name)
    assert m is not None
    if m.group("flip"):
        return TTAStrategy(name=name, flip=True, per_axis=0)
    return TTAStrategy(name=name, flip=bool(m.group("fc")), per_axis=math.isqrt(int(m.group("n"))))


def strategy_problem(name: Any) -> str | None:
    """Why ``name`` is not a strategy name, or None if it is one."""
    m = _NAME.match(name) if isinstance(name, str) else None
    if m is None:
        return f"unknown TTA strategy {name!r}"
    if m.group("n") is not None:
        n = int(m.group("n"))
        k = math.isqrt(n)
        if k < 2 or k * k != n:
            return f"TTA strategy {name!r}: the number of crops must be a square k*k with k >= 2"
    return None


def tta_names_problem(value: Any) -> str | None:
    """The ``tta`` setting check: a list of distinct strategy names (may be empty)."""
    if not isinstance(value, list):
        return f"must be a list of TTA strategy names ({_GRAMMAR})"
    for name in value:
        problem = strategy_problem(name)
        if problem:
            return f"{problem}; must be one of {_GRAMMAR}"
    if len(set(value)) != len(value):
        return "must not name a TTA strategy twice"
    return None


def num_views(strategy: str, spatial_dims: int = 2) -> int:
    """Views averaged by ``strategy`` (original included): 2, 26, 82, 51, 163 for 2-D images."""
    s = parse_strategy(strategy)
    if not s.per_axis:
        return 2
    return 1 + (2 if s.flip else 1) * s.per_axis**spatial_dims
