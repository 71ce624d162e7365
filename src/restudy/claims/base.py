"""The claim-kind plug-in contract: a kind is one class holding its schema, its evaluator, its
figure and (optionally) how the report writes its evidence, registered by name like a model.

::

    class MedianAbove(ClaimBase):                       # the schema: what a study file writes
        kind: Literal["median_above"]
        select: Selector
        value: float

        def selectors(self):                            # checked against experiments and axes
            return [(("select",), self.select)]

    @register_claim_kind
    class MedianAboveKind(ClaimKind):
        schema = MedianAbove
        rule = "the median over the selected runs must be above the value"

        @staticmethod
        def evaluate(claim, ctx):                       # ctx: restudy.compare.EvaluationContext
            ...
            return ctx.result(claim, verdict, summary, evidence)

        @staticmethod
        def figure(claim, result, path):                # draws from result.evidence only
            ...

The kind's name is the schema's ``kind`` literal. Registering rebuilds the study schema, so study
files (and ``restudy schema``) accept the new kind at once; compare calls its evaluator and the
report its figure and renderer.

Imports spec and the plug-in registry only (no numpy, no matplotlib).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, ClassVar

from .. import plugins
from ..errors import RestudyError
from ..spec.claim_base import ClaimBase

Lines = list[str]
Table = dict[str, Any]
"""``{"headers": [str], "rows": [[str | {"text": str, "cls": str}]]}`` (the report's table)."""


class ClaimKind:
    """Base of a claim kind. Subclasses set ``schema`` (and ``rule``) and override ``evaluate``;
    ``figure`` and ``render`` are optional. Every method is static: it takes the claim first."""

    schema: ClassVar[type[ClaimBase]]
    rule: ClassVar[str] = ""
    """One sentence for the report: how this kind's verdict is reached."""

    @staticmethod
    def evaluate(claim: Any, ctx: Any) -> Any:
        """``(claim, EvaluationContext) -> ClaimResult``; its evidence is all the figure and the
        report get, so it carries the numbers they show (JSON-safe)."""
        raise NotImplementedError

    @staticmethod
    def figure(claim: Any, result: Any, path: Path) -> Path | None:
        """Draws the claim's figure to ``path`` from ``result.evidence`` (and the claim's labels);
        returns ``path``, or None when there is nothing to draw."""
        return None

    @staticmethod
    def render(claim: Any, result: Any) -> tuple[Lines, Table | None] | None:
        """Evidence lines and an optional table for the report; None for the default rendering
        (the summary and the evidence's top-level numbers)."""
        return None


def kind_name(schema: type[ClaimBase]) -> str:
    """The kind a schema declares: the single value of its ``kind: Literal[...]`` field."""
    field = schema.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field is not None else ()
    if len(args) != 1 or typing.get_origin(field.annotation) is not typing.Literal:  # type: ignore[union-attr]
        raise RestudyError(
            "a claim schema needs a field kind: Literal['<name>'] with one name",
            got=f"{schema.__module__}.{schema.__qualname__}",
        )
    return str(args[0])


def register_claim_kind(kind: type[ClaimKind]) -> type[ClaimKind]:
    """Class decorator registering a claim kind under its schema's ``kind`` name."""
    schema = getattr(kind, "schema", None)
    if not (isinstance(schema, type) and issubclass(schema, ClaimBase)):
        raise RestudyError(
            "a claim kind needs 'schema', a subclass of restudy.claims.ClaimBase",
            got=f"{kind.__module__}.{kind.__qualname__}",
        )
    kind.name = kind_name(schema)  # type: ignore[attr-defined]
    plugins.register("claim", kind.name)(kind)  # type: ignore[attr-defined]
    return kind


def claim_kind(name: str) -> type[ClaimKind]:
    """The registered kind ``name`` (an error listing the known kinds otherwise)."""
    return plugins.get("claim", name)  # type: ignore[return-value]


def claim_kinds() -> list[str]:
    """The names of every registered claim kind."""
    return plugins.names("claim")
