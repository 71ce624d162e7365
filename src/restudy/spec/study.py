"""The study schema: a paper, its claims, its reported tables and the experiments that produce them.

A study is data. Every hyperparameter carries its value *and* where it comes from (``provenance``:
stated in the paper, found in the code, told by the authors, taken from a reproduction report,
read off a figure, calibrated after looking at outcomes, or assumed) with a short source note.
Reported values keep the text they were printed with (``0.870`` is not ``0.87``): the rounding
slack of a comparison comes from the printed digits.
Experiments are flat maps of dotted setting names (``optimizer.lr``, ``model.hidden``) to such
hyperparameters, swept over named variant axes, run at one of three scales.

Claims are plug-ins: each kind's schema subclasses :class:`ClaimBase` and registers in the ``claim``
registry (:mod:`restudy.claims`); ``Study.claims`` accepts every registered kind. Model-set views are
looked up among the ``view`` plug-ins. Imports pydantic and the plug-in registry only (no torch, nothing of
the engine).
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, field_validator, model_validator

from .. import plugins
from .claim_base import ClaimBase, Selector
from .coverage import CoveredClaim, coverage_problems
from .crossref import reference_problems
from .experiments import Experiment, Randomness, Scale
from .reported import Document, Paper, ReportedTable
from .values import Frozen, Hyper, Loc, ScaleName, check_id, level_str, raise_located


class Study(Frozen):
    """A paper's reproduction, declared."""

    id: str
    title: str
    paper: Paper
    module: str | None = Field(None, description="Python module registering the study's models/layers")
    seed: int = Field(0, ge=0, lt=2**63, description="root seed every run's streams derive from")
    randomness: Randomness = Randomness()
    documents: list[Document] = []
    claims: list[ClaimBase] = Field([], description="claims of any registered kind (restudy.claims)")
    tables: list[ReportedTable] = []
    coverage: list[CoveredClaim] = Field(
        [], description="every claim the documents make, with the study claims that test it or why none can"
    )
    defaults: dict[str, Hyper] = Field({}, description="settings shared by every experiment")
    experiments: list[Experiment] = Field(min_length=1)
    scales: dict[ScaleName, Scale] = {}

    _id = field_validator("id")(check_id)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Study:
        """Validates a study (its claims against every registered claim kind)."""
        use_registered_claim_kinds()
        return super().model_validate(obj, *args, **kwargs)

    def __init__(self, **data: Any) -> None:
        use_registered_claim_kinds()
        super().__init__(**data)

    @model_validator(mode="after")
    def _cross_references(self) -> Study:
        raise_located(reference_problems(self) + coverage_problems(self), "Study")
        _check_claim_references(self)
        return self

    def experiment(self, id: str) -> Experiment:
        for e in self.experiments:
            if e.id == id:
                return e
        raise KeyError(id)

    def table(self, id: str) -> ReportedTable:
        for t in self.tables:
            if t.id == id:
                return t
        raise KeyError(id)


def selector_problems(study: Study, sel: Selector) -> list[tuple[Loc, str, Any]]:
    """What a selector names that the study lacks: its experiment, an axis of it or a level
    (field path in the selector, message, the bad value)."""
    exps = {e.id: e for e in study.experiments}
    if sel.experiment not in exps:
        return [(("experiment",), f"unknown experiment {sel.experiment!r}; known: {sorted(exps)}", sel.experiment)]
    axes = exps[sel.experiment].axes
    out: list[tuple[Loc, str, Any]] = []
    for a, want in sel.where.items():
        if a not in axes:
            out.append((("where", a), f"experiment {sel.experiment!r} has no axis {a!r}; axes: {sorted(axes)}", a))
            continue
        levels = axes[a].level_names()
        for w in want if isinstance(want, list) else [want]:
            if level_str(w) not in levels:
                out.append(
                    (
                        ("where", a),
                        f"axis {a!r} of experiment {sel.experiment!r} has no level "
                        f"{level_str(w)!r}; allowed: {', '.join(levels)}",
                        w,
                    )
                )
    return out


def _check_claim_references(study: Study) -> None:
    """Every claim's selectors and other references resolve; errors carry ``claims[i].field``."""
    from pydantic_core import PydanticCustomError, ValidationError

    errors = []
    for i, c in enumerate(study.claims):
        found = [(loc + p[0], *p[1:]) for loc, sel in c.selectors() for p in selector_problems(study, sel)]
        for problem in found + list(c.problems(study)):
            loc, msg = problem[0], problem[1]
            got = problem[2] if len(problem) > 2 else _at(c, loc)
            errors.append(
                {"type": PydanticCustomError("claim_reference", msg), "loc": ("claims", i, *loc), "input": got}
            )
    if errors:
        raise ValidationError.from_exception_data("Study", errors)


def _at(obj: Any, loc: Loc) -> Any:
    """The value at a field path of a model (None where the path ends early)."""
    for p in loc:
        if isinstance(obj, BaseModel):
            obj = getattr(obj, str(p), None)
        elif isinstance(obj, (list, tuple, dict)):
            obj = obj[p] if (p in obj if isinstance(obj, dict) else isinstance(p, int) and p < len(obj)) else None
        else:
            return None
    return obj.model_dump() if isinstance(obj, BaseModel) else obj


def use_registered_claim_kinds() -> None:
    """Makes ``Study.claims`` accept exactly the registered claim kinds (a discriminated union on
    ``kind``, so errors and the JSON schema name every kind); loads the built-in kinds first.

    Cheap when nothing changed: the union is rebuilt once per change of the registry (its
    :func:`restudy.plugins.generation`), not per study."""
    plugins.load_builtins("claim")
    if _claims_built_at[0] == plugins.generation():
        return
    schemas = tuple(plugins.get("claim", n).schema for n in plugins.names("claim"))
    if schemas != _claim_schemas[0]:
        item: Any = schemas[0] if len(schemas) == 1 else Annotated[Union[schemas], Field(discriminator="kind")]
        Study.model_fields["claims"].annotation = list[item] if schemas else list[ClaimBase]
        Study.model_rebuild(force=True)
        _claim_schemas[0] = schemas
    _claims_built_at[0] = plugins.generation()


_claim_schemas: list[tuple[type[ClaimBase], ...]] = [()]
_claims_built_at = [-1]  # the registry generation the union was built for


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a study file (with every registered claim kind)."""
    use_registered_claim_kinds()
    return Study.model_json_schema()
