"""The fields every claim has (:class:`ClaimBase`, which each claim kind's schema subclasses) and
what a claim selects: runs (:class:`Selector`), a reported cell (:class:`CellRef`) or a set of
trained models seen through a view of their stored predictions (:class:`ModelSet`).

Imports pydantic, the study file's value types and the plug-in registry (model-set views).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from .experiments import Rule
from .values import SCALES, Frozen, Level, Loc, Provenance, ScaleName, check_id, level_str

if TYPE_CHECKING:
    from .study import Study


class Selector(Frozen):
    """A set of runs: one experiment, optionally restricted to some axis levels."""

    experiment: str
    where: dict[str, Level | list[Level]] = {}

    def matches(self, experiment: str, variant: dict[str, str]) -> bool:
        return experiment == self.experiment and Rule(when=self.where, set={}).matches(variant)

    def label(self) -> str:
        if not self.where:
            return self.experiment
        parts = ", ".join(f"{k}={v}" for k, v in self.where.items())
        return f"{self.experiment}[{parts}]"


class CellRef(Frozen):
    """One cell of a reported table, named by its row and column (numbers are read as text, as the
    table's own rows and columns are)."""

    table: str
    row: str
    column: str

    @field_validator("row", "column", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return level_str(v) if isinstance(v, (int, float, bool)) else v


METRIC_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"


class ClaimBase(Frozen):
    """The fields every claim has. A claim kind's schema subclasses it with ``kind:
    Literal["<name>"]`` and registers through :func:`restudy.claims.register_claim_kind`; the
    ``claims`` list of a study accepts every registered kind."""

    id: str
    kind: str
    statement: str
    metric: str = Field(
        "test_acc",
        pattern=METRIC_NAME,
        description="a metric the runs record (test_acc, train_acc, test_loss, train_loss, diverged, wall_s, "
        "test_acc_best, ...) or one a registered run metric the study lists in run_metrics declares",
    )
    alpha: float = Field(0.05, gt=0, lt=0.5)
    scales: list[ScaleName] = Field(list(SCALES), description="scales at which the claim gets a verdict")
    source: str = Field("", description="where the claim is made: paper section, reproduction report")
    provenance: Provenance | None = Field(
        None, description="where the claim comes from: paper, reproduction, figure (name the figure in 'source'), ..."
    )
    alpha_reason: str = Field("", description="why this alpha (the default 0.05 is the conventional level)")

    _id = field_validator("id")(check_id)

    def selectors(self) -> list[tuple[Loc, Selector]]:
        """The run sets the claim selects, each with its field path in the claim (checked against
        the study's experiments and axes)."""
        return []

    def problems(self, study: Study) -> list[tuple[Any, ...]]:
        """Other references that do not resolve in ``study``: (field path, message) or (field
        path, message, bad value); the value at the path is shown when none is given."""
        return []

    def reads_runs(self) -> bool:
        """Whether the verdict depends on runs; False for a claim about the documents' printed
        numbers alone (their arithmetic), which gets no seed resampling and no seed advice."""
        return True


class ModelSet(Frozen):
    """A set of trained models whose test predictions are compared with each other: the runs of one
    experiment (optionally some axis levels), seen through one ``view`` of their stored predictions.

    Views (the ``view`` registry, :mod:`restudy.compare.views`): ``test`` (final-epoch test
    logits), ``tta:<strategy>`` (test-time augmentation, e.g. ``tta:flip``, ``tta:crop25``),
    ``ensemble`` (the run's snapshot ensemble) and ``ensemble+tta:<strategy>``; a study may
    register more.
    """

    experiment: str
    where: dict[str, Level | list[Level]] = {}
    view: str = Field("test", description="a registered view: test, tta:<strategy>, ensemble, ensemble+tta:<strategy>")
    first: int | None = Field(None, ge=2, description="use only the first N models (by seed index)")
    label: str = ""

    @field_validator("view")
    @classmethod
    def _known_view(cls, v: str) -> str:
        from .. import plugins
        from ..errors import RestudyError

        name, _, arg = v.partition(":")
        allowed = f"views: {', '.join(plugins.names('view'))} (tta and ensemble+tta take ':<strategy>', e.g. tta:flip)"
        try:
            fn = plugins.get("view", name)
        except RestudyError:
            raise ValueError(f"unknown view {name!r}; {allowed}") from None
        try:
            fn(arg)
        except ValueError as e:
            raise ValueError(f"{e}; {allowed}") from None
        return v

    def selector(self) -> Selector:
        return Selector(experiment=self.experiment, where=self.where)

    def name(self) -> str:
        name = self.label or (self.selector().label() + ("" if self.view == "test" else f" ({self.view})"))
        return name + (f", first {self.first}" if self.first and not self.label else "")


def uses_model_sets(claim: ClaimBase) -> bool:
    """Whether a claim compares model sets (a field holding a :class:`ModelSet` or a list of them)."""
    values = [getattr(claim, f) for f in type(claim).model_fields]
    return any(
        isinstance(v, ModelSet) or (isinstance(v, list) and any(isinstance(x, ModelSet) for x in v)) for v in values
    )


Quantifier = Literal["every", "most", "mean", "any", "share"]
QUANTIFIER_HELP = (
    "how the selected cells enter the verdict: every (each cell must pass on its own; the default, "
    "for 'each/all/every' statements), most (more than half of the cells), mean (one test on the mean "
    "over the cells), any (at least one cell) or share ('36 of 60', 'a majority', 'few': the share of "
    "cells that pass, against the band in 'share')"
)


class ShareBand(Frozen):
    """The band a share of cells must fall in, for statements that count cells ("36 out of 60
    values were better", "most of these cases", "few instances"): ``at_least`` and/or ``at_most``
    as fractions of the cells, with the sentence's own count as printed and why the band is what
    it is."""

    at_least: float | None = Field(None, ge=0, le=1, description="the least share of cells that must pass")
    at_most: float | None = Field(None, ge=0, le=1, description="the largest share of cells that may pass")
    printed: str = Field("", description="the count as the source prints it, e.g. '36 of 60'")
    reason: str = Field(min_length=1, description="why this band (what the sentence's words allow)")

    @model_validator(mode="after")
    def _a_band(self) -> ShareBand:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a share band needs at_least, at_most or both (fractions of the cells)")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} is above at_most {self.at_most}")
        return self

    def text(self) -> str:
        parts = [f"{op} {v:.0%}" for op, v in (("≥", self.at_least), ("≤", self.at_most)) if v is not None]
        return " and ".join(p for p in parts if p) + (f" ({self.printed} printed)" if self.printed else "")


class Quantified(Frozen):
    """The fields of a claim over several cells: its ``quantifier`` and, for ``share``, the band
    (the test: :mod:`restudy.compare.quantifiers`)."""

    quantifier: Quantifier = Field("every", description=QUANTIFIER_HELP)
    share: ShareBand | None = Field(
        None, description="with quantifier share: the band the share of passing cells must fall in"
    )

    @model_validator(mode="after")
    def _share_with_band(self) -> Quantified:
        if self.quantifier == "share" and self.share is None:
            raise ValueError("quantifier share needs share: {at_least and/or at_most (fractions), reason}")
        if self.share is not None and self.quantifier != "share":
            raise ValueError(f"share is read only with quantifier: share (this claim says {self.quantifier!r})")
        return self


Claim = ClaimBase
"""The type of a study's claims: an instance of a registered claim kind's schema."""
