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
looked up in the ``view`` registry. Imports pydantic and registry only (no torch, nothing of the engine).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

Provenance = Literal["paper", "code", "authors", "reproduction", "figure", "calibrated", "assumed"]
PROVENANCES: tuple[str, ...] = ("paper", "code", "authors", "reproduction", "figure", "calibrated", "assumed")
PROVENANCE_MEANING: dict[str, str] = {
    "paper": "stated in the original paper",
    "code": "found in the original code",
    "authors": "told by the original authors",
    "reproduction": "taken from a reproduction report, not from the original paper or code",
    "figure": "read off a figure (the source names it)",
    "calibrated": "chosen after looking at outcomes: verdicts that depend on it say so",
    "assumed": "assumed (not published anywhere)",
}
Source = Literal["init", "order", "augment", "dropout", "perturb", "data"]
SOURCES: tuple[str, ...] = ("init", "order", "augment", "dropout", "perturb", "data")
ScaleName = Literal["smoke", "small", "paper"]
SCALES: tuple[str, ...] = ("smoke", "small", "paper")
Scalar = Union[bool, int, float, str, None]
Level = Union[int, float, str, bool]

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class _Frozen(BaseModel):
    # NaN and infinity are refused wherever the schema expects a number (a setting's own value is
    # checked against its declaration when the study is planned).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"must start with a letter and use only letters, digits, '_' or '-'; got {v!r}")
    return v


class Hyper(_Frozen):
    """One hyperparameter: its value and where that value comes from."""

    value: Any
    provenance: Provenance
    source: str = Field("", description="short note: 'Sec. 4.1', 'main.py', 'seed 002 Table 1'")


# A setting's value where a bare value is allowed: a ``Hyper`` (a mapping with value and
# provenance) or a plain value, whose provenance is then "assumed".
Plain = Union[bool, int, float, str, None, list[Any]]
# The union's tags appear in pydantic's error locations; error messages leave them out.
SETTING_TAGS: tuple[str, ...] = ("<with provenance>", "<bare value>")


def _setting_form(v: Any) -> str:
    return SETTING_TAGS[0] if isinstance(v, (dict, Hyper)) else SETTING_TAGS[1]


SettingValue = Annotated[
    Union[Annotated[Hyper, Tag(SETTING_TAGS[0])], Annotated[Plain, Tag(SETTING_TAGS[1])]], Discriminator(_setting_form)
]
Settings = dict[str, SettingValue]


class Paper(_Frozen):
    title: str
    authors: list[str] = []
    venue: str = ""
    year: int | None = None
    url: str = ""
    code: str = ""


class Document(_Frozen):
    """A document that numbers are taken from: the original paper or a reproduction report."""

    id: str
    kind: Literal["original", "reproduction"]
    title: str
    where: str = Field("", description="a path or URL to the document")

    _id = field_validator("id")(_check_id)


class ReportedValue(_Frozen):
    """A number as a document prints it. A bare number (or a quoted one, to keep trailing zeros:
    ``"0.870"``) is shorthand for ``{value: ...}``; ``text`` keeps the printed digits."""

    value: float
    pm: float | None = Field(None, description="the ± given with the value (its SD unless pm_is says se)")
    pm_is: Literal["sd", "se"] = Field("sd", description="whether the ± is the runs' SD or the value's standard error")
    n: int | None = Field(None, ge=1, description="number of runs behind the value")
    text: str = Field("", description="the value as printed (quote it in YAML to keep trailing zeros)")

    @model_validator(mode="before")
    @classmethod
    def _printed(cls, data: Any) -> Any:
        if isinstance(data, (int, float, str)) and not isinstance(data, bool):
            data = {"value": data}
        if isinstance(data, dict) and "value" in data and not data.get("text"):
            v = data["value"]
            if isinstance(v, str):
                text = v.strip()
            elif isinstance(v, int) and not isinstance(v, bool):
                text = str(v)
            elif isinstance(v, float):
                text = repr(v)
            else:
                return data
            data = {**data, "text": text}
            try:
                data["value"] = float(text)
            except ValueError:
                pass  # the float field reports the bad value
        return data

    def decimals(self) -> int:
        """Digits printed after the decimal point (0 for an integer; read from ``text``)."""
        text = (self.text or repr(self.value)).lower().lstrip("+-")
        mantissa, _, exp = text.partition("e")
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return digits - (int(exp) if exp else 0)

    def rounding(self) -> float:
        """Half a unit of the last printed digit: ``0.870`` → 0.0005, ``8.0`` → 0.05, ``40`` → 0.5."""
        return 0.5 * 10.0 ** (-self.decimals())


class Axis(_Frozen):
    """A variant axis. Either named levels, each a map of setting overrides, or one setting swept
    over values (``path`` + ``values``)."""

    levels: dict[str, Settings] | None = None
    path: str | None = None
    values: list[Level] | None = None
    provenance: Provenance = Field("paper", description="where the swept values come from (path form)")
    source: str = ""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # ``method: {baseline: {}, bn: {model.norm: bn}}`` is shorthand for ``{levels: {...}}``.
        if isinstance(data, dict) and not ({"levels", "path", "values", "provenance", "source"} & set(data)):
            return {"levels": data}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> Axis:
        if (self.levels is None) == (self.path is None):
            raise ValueError("give either named levels (a map of level -> overrides) or 'path' and 'values'")
        if self.path is not None and not self.values:
            raise ValueError("an axis with 'path' needs a non-empty 'values' list")
        if self.levels is not None and not self.levels:
            raise ValueError("an axis needs at least one level")
        return self

    def level_names(self) -> list[str]:
        if self.levels is not None:
            return list(self.levels)
        return [_level_str(v) for v in self.values or []]

    def overrides(self, level: str) -> Settings:
        if self.levels is not None:
            return dict(self.levels[level])
        for v in self.values or []:
            if _level_str(v) == level:
                return {
                    self.path: Hyper(value=v, provenance=self.provenance, source=self.source or f"axis value {level}")
                }
        raise KeyError(level)


def _level_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Rule(_Frozen):
    """Settings applied to the variants whose axis levels match ``when`` (a level or a list)."""

    when: dict[str, Level | list[Level]]
    set: Settings

    def matches(self, variant: dict[str, str]) -> bool:
        for axis, want in self.when.items():
            wanted = [_level_str(w) for w in (want if isinstance(want, list) else [want])]
            if variant.get(axis) not in wanted:
                return False
        return True


class Randomness(_Frozen):
    """How seeds are derived and which sources of randomness vary across seed indices.

    ``streams``: ``paired`` keys each source's stream by (study seed, seed index, source), so
    variants with the same seed index share data order and (same shapes) initial weights — common
    random numbers that make paired comparisons sharper; ``independent`` keys it also by experiment
    and variant. Sources not in ``vary`` are held at seed index 0 for every run.
    """

    streams: Literal["paired", "independent"] = "paired"
    vary: list[Source] = list(SOURCES)
    kernels: Literal["deterministic", "nondeterministic"] = "deterministic"


class Experiment(_Frozen):
    id: str
    description: str = ""
    settings: dict[str, Hyper] = {}
    axes: dict[str, Axis] = {}
    rules: list[Rule] = []
    seeds: int = Field(3, ge=1, le=10000)
    randomness: Randomness | None = None

    _id = field_validator("id")(_check_id)


class ScaleExperiment(_Frozen):
    """What a scale changes for one experiment (after the scale's own changes)."""

    settings: Settings = {}
    axes: dict[str, list[Level]] = {}
    rules: list[Rule] = []
    seeds: int | None = Field(None, ge=1, le=10000)
    skip: bool = False


class Scale(_Frozen):
    """What a scale changes relative to the paper protocol (the experiments as declared)."""

    description: str = ""
    dataset: str = Field("", description="the data this scale runs on, as a report names it")
    deviations: list[str] = []
    settings: Settings = Field({}, description="overrides for every experiment; bare values are 'assumed'")
    axes: dict[str, list[Level]] = Field({}, description="restrict axes to these levels")
    rules: list[Rule] = []
    seeds: int | None = Field(None, ge=1, le=10000)
    experiments: dict[str, ScaleExperiment] = {}


class Selector(_Frozen):
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


class CellRef(_Frozen):
    """One cell of a reported table, named by its row and column (numbers are read as text, as the
    table's own rows and columns are)."""

    table: str
    row: str
    column: str

    @field_validator("row", "column", mode="before")
    @classmethod
    def _str(cls, v: Any) -> Any:
        return _level_str(v) if isinstance(v, (int, float, bool)) else v


Metric = Literal["test_acc", "train_acc", "test_loss", "train_loss", "diverged", "wall_s"]


Loc = tuple[Union[str, int], ...]
"""A field path inside a claim, as pydantic writes locations: ``("b", 0, "experiment")``."""


class ClaimBase(_Frozen):
    """The fields every claim has. A claim kind's schema subclasses it with ``kind:
    Literal["<name>"]`` and registers through :func:`restudy.claims.register_claim_kind`; the
    ``claims`` list of a study accepts every registered kind."""

    id: str
    kind: str
    statement: str
    metric: Metric = "test_acc"
    alpha: float = Field(0.05, gt=0, lt=0.5)
    scales: list[ScaleName] = Field(list(SCALES), description="scales at which the claim gets a verdict")
    source: str = Field("", description="where the claim is made: paper section, reproduction report")
    provenance: Provenance | None = Field(
        None, description="where the claim comes from: paper, reproduction, figure (name the figure in 'source'), ..."
    )
    alpha_reason: str = Field("", description="why this alpha (the default 0.05 is the conventional level)")

    _id = field_validator("id")(_check_id)

    def selectors(self) -> list[tuple[Loc, Selector]]:
        """The run sets the claim selects, each with its field path in the claim (checked against
        the study's experiments and axes)."""
        return []

    def problems(self, study: Study) -> list[tuple[Any, ...]]:
        """Other references that do not resolve in ``study``: (field path, message) or (field
        path, message, bad value); the value at the path is shown when none is given."""
        return []


class ModelSet(_Frozen):
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
        from . import registry
        from .errors import RestudyError

        name, _, arg = v.partition(":")
        allowed = f"views: {', '.join(registry.names('view'))} (tta and ensemble+tta take ':<strategy>', e.g. tta:flip)"
        try:
            fn = registry.get("view", name)
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


Claim = ClaimBase
"""The type of a study's claims: an instance of a registered claim kind's schema."""


class TableLayout(_Frozen):
    """How the rows and columns of a reported table map onto an experiment's variant axes."""

    experiment: str
    row_axis: str
    column_axis: str
    where: dict[str, Level | list[Level]] = {}


class VariabilityLayout(_Frozen):
    """Rows of a reported table are model sets; columns are variability metrics
    (``sd_accuracy``, ``sd_cross_entropy``, ``disagreement``, ``correlation``, ``ensemble_gain``) or
    ``reduction_original`` / ``reduction_recalculated`` (variability reduction %, two ways)."""

    rows: dict[str, ModelSet]
    reference: str | None = Field(None, description="row the reductions are computed against")


class SquaredDeviation(_Frozen):
    """A reproduction report's consistency criterion for a table: the squared deviation of each
    run from the reported value, averaged over the runs of a cell, is below ``below`` (values
    multiplied by ``unit`` first, e.g. 0.01 for percentages the report squared as fractions)."""

    below: float = Field(gt=0, description="a cell is 'consistent' when its averaged squared deviation is below this")
    unit: float = Field(1.0, gt=0, description="factor applied to values before squaring (0.01: % as fractions)")
    reason: str = Field(min_length=1, description="where the criterion and its unit come from")


class ReportedTable(_Frozen):
    id: str
    title: str
    document: str = Field(description="id of a document in 'documents'")
    where: str = Field("", description="place in the document, e.g. 'Table 1'")
    kind: Literal["result", "hyperparameter"] = "result"
    metric: Metric | str = "test_acc"
    unit: str = "%"
    scale: ScaleName = Field("paper", description="the scale whose runs are comparable to these numbers")
    dataset: str = ""
    test_size: int | None = Field(None, ge=1, description="test-set size behind the numbers (binomial floor)")
    rows: list[str] = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    values: dict[str, dict[str, ReportedValue | None]]
    layout: TableLayout | VariabilityLayout | None = None
    note: str = Field("", description="a remark the report shows with the table (e.g. where the prose disagrees)")
    squared_deviation: SquaredDeviation | None = Field(
        None, description="a reproduction's averaged-squared-deviation consistency criterion, shown per cell"
    )

    _id = field_validator("id")(_check_id)

    @field_validator("rows", "columns", mode="before")
    @classmethod
    def _strs(cls, v: Any) -> Any:
        return [_level_str(x) for x in v] if isinstance(v, list) else v

    @field_validator("values", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {
                _level_str(r): ({_level_str(c): x for c, x in cols.items()} if isinstance(cols, dict) else cols)
                for r, cols in v.items()
            }
        return v

    @model_validator(mode="after")
    def _cells_in_grid(self) -> ReportedTable:
        errors: list[tuple[Loc, str, Any]] = []
        for r, cols in self.values.items():
            if r not in self.rows:
                errors.append((("values", r), f"row {r!r} is not one of the table's rows: {', '.join(self.rows)}", r))
                continue
            for c in cols:
                if c not in self.columns:
                    errors.append(
                        (
                            ("values", r, c),
                            f"column {c!r} is not one of the table's columns: {', '.join(self.columns)}",
                            c,
                        )
                    )
        _raise_located(errors, "ReportedTable")
        if self.kind == "result" and self.layout is None:
            raise ValueError("a 'result' table needs a 'layout' mapping rows/columns to variant axes")
        return self

    def value(self, row: str, column: str) -> ReportedValue | None:
        return self.values.get(row, {}).get(column)


class Study(_Frozen):
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
    defaults: dict[str, Hyper] = Field({}, description="settings shared by every experiment")
    experiments: list[Experiment] = Field(min_length=1)
    scales: dict[ScaleName, Scale] = {}

    _id = field_validator("id")(_check_id)

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
        from .crossref import reference_problems

        _raise_located(reference_problems(self), "Study")
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
            if _level_str(w) not in levels:
                out.append(
                    (
                        ("where", a),
                        f"axis {a!r} of experiment {sel.experiment!r} has no level "
                        f"{_level_str(w)!r}; allowed: {', '.join(levels)}",
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


def _raise_located(errors: list[tuple[Loc, str, Any]], title: str) -> None:
    """Raise the problems as one ``ValidationError`` whose locations are field paths (so that the
    study file's loader names ``file:line`` of each)."""
    if not errors:
        return
    from pydantic_core import PydanticCustomError, ValidationError

    raise ValidationError.from_exception_data(
        title,
        [{"type": PydanticCustomError("reference", msg), "loc": loc, "input": got} for loc, msg, got in errors],
    )


def use_registered_claim_kinds() -> None:
    """Makes ``Study.claims`` accept exactly the registered claim kinds (a discriminated union on
    ``kind``, so errors and the JSON schema name every kind); loads the built-in kinds first."""
    from . import registry

    schemas = tuple(registry.get("claim", n).schema for n in registry.names("claim"))
    if schemas == _claim_schemas[0]:
        return
    item: Any = schemas[0] if len(schemas) == 1 else Annotated[Union[schemas], Field(discriminator="kind")]
    Study.model_fields["claims"].annotation = list[item] if schemas else list[ClaimBase]
    Study.model_rebuild(force=True)
    _claim_schemas[0] = schemas


_claim_schemas: list[tuple[type[ClaimBase], ...]] = [()]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a study file (with every registered claim kind)."""
    use_registered_claim_kinds()
    return Study.model_json_schema()
