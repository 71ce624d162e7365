"""The study schema: a paper, its claims, its reported tables and the experiments that produce them.

A study is data. Every hyperparameter carries its value *and* where it comes from (``provenance``:
stated in the paper, found in the code, told by the authors, or assumed) with a short source note.
Experiments are flat maps of dotted setting names (``optimizer.lr``, ``model.hidden``) to such
hyperparameters, swept over named variant axes, run at one of three scales.

Imports pydantic and the file-format names of ``artifacts`` only (no torch, nothing of the engine).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from .artifacts import VIEW_PATTERN

Provenance = Literal["paper", "code", "authors", "assumed"]
PROVENANCES: tuple[str, ...] = ("paper", "code", "authors", "assumed")
Source = Literal["init", "order", "augment", "dropout", "perturb"]
SOURCES: tuple[str, ...] = ("init", "order", "augment", "dropout", "perturb")
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


SettingValue = Annotated[Union[Annotated[Hyper, Tag(SETTING_TAGS[0])], Annotated[Plain, Tag(SETTING_TAGS[1])]],
                         Discriminator(_setting_form)]
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
    value: float
    pm: float | None = Field(None, description="the ± given with the value (its SD unless stated)")
    n: int | None = Field(None, ge=1, description="number of runs behind the value")


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
    def _one_form(self) -> "Axis":
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
                return {self.path: Hyper(value=v, provenance=self.provenance,
                                         source=self.source or f"axis value {level}")}
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
    table: str
    row: str
    column: str


Metric = Literal["test_acc", "train_acc", "test_loss", "train_loss", "diverged", "wall_s"]


class _ClaimBase(_Frozen):
    id: str
    statement: str
    metric: Metric = "test_acc"
    alpha: float = Field(0.05, gt=0, lt=0.5)
    scales: list[ScaleName] = Field(list(SCALES), description="scales at which the claim gets a verdict")
    source: str = Field("", description="where the claim is made: paper section, reproduction report")

    _id = field_validator("id")(_check_id)


class NumericClaim(_ClaimBase):
    """Reported table cells are reproduced: each reported value lies in the CI of the reproduced mean
    (or within ``tolerance`` relative error when one is given)."""

    kind: Literal["numeric"]
    cells: list[CellRef] = Field(min_length=1)
    tolerance: float | None = Field(None, ge=0, description="relative error accepted besides the CI")
    scales: list[ScaleName] = ["paper"]


class BeatsClaim(_ClaimBase):
    """Runs selected by ``a`` score higher than those of every ``b`` (paired over shared seeds and
    the axes both leave free); ``margin`` in metric units."""

    kind: Literal["a_beats_b"]
    a: Selector
    b: list[Selector] = Field(min_length=1)
    margin: float = 0.0
    higher_is_better: bool = True

    @field_validator("b", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class TrendClaim(_ClaimBase):
    """The metric of ``select`` (or its paired difference to ``baseline``) rises or falls along the
    numeric axis ``over``."""

    kind: Literal["trend"]
    select: Selector
    over: str
    direction: Literal["increasing", "decreasing"]
    baseline: Selector | None = None


class ThresholdClaim(_ClaimBase):
    """The mean of the metric over the selected runs is above/below ``value`` (for ``diverged``,
    the rate of diverged runs, with an exact binomial interval)."""

    kind: Literal["threshold"]
    select: Selector
    op: Literal[">=", "<="]
    value: float


VARIABILITY_METRICS: tuple[str, ...] = ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation",
                                        "ensemble_gain")


class ModelSet(_Frozen):
    """A set of trained models whose test predictions are compared with each other: the runs of one
    experiment (optionally some axis levels), seen through one ``view`` of their stored predictions.

    Views: ``test`` (final-epoch test logits), ``tta:<strategy>`` (test-time augmentation, e.g.
    ``tta:flip``, ``tta:crop25``), ``ensemble`` (the run's snapshot ensemble) and
    ``ensemble+tta:<strategy>``.
    """

    experiment: str
    where: dict[str, Level | list[Level]] = {}
    view: str = Field("test", pattern=VIEW_PATTERN)
    first: int | None = Field(None, ge=2, description="use only the first N models (by seed index)")
    label: str = ""

    def selector(self) -> Selector:
        return Selector(experiment=self.experiment, where=self.where)

    def name(self) -> str:
        name = self.label or (self.selector().label() + ("" if self.view == "test" else f" ({self.view})"))
        return name + (f", first {self.first}" if self.first and not self.label else "")


class VariabilityClaim(_ClaimBase):
    """Run-to-run variability of model sets, measured on their stored test predictions
    (``restudy.metrics.variability``), compared with a reference set or with zero.

    ``comparable``: every metric of every group lies within ``band`` × the reference's value (its
    bootstrap CI inside the band: reproduced; outside: not reproduced). ``lower``: every metric of
    every group shows less variability than the reference. ``zero``: every metric shows no
    variability at all (bit-identical models)."""

    kind: Literal["variability"]
    groups: list[ModelSet] = Field(min_length=1)
    reference: ModelSet | None = None
    relation: Literal["comparable", "lower", "zero"]
    metrics: list[Literal["sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"]] = \
        list(VARIABILITY_METRICS)
    band: tuple[float, float] = (0.5, 2.0)

    @model_validator(mode="after")
    def _needs_reference(self) -> "VariabilityClaim":
        if self.relation != "zero" and self.reference is None:
            raise ValueError(f"relation '{self.relation}' needs a 'reference' model set")
        if not 0 < self.band[0] <= 1 <= self.band[1]:
            raise ValueError("band must be (low, high) with 0 < low <= 1 <= high")
        return self


Claim = Annotated[Union[NumericClaim, BeatsClaim, TrendClaim, ThresholdClaim, VariabilityClaim],
                  Field(discriminator="kind")]


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
    values: dict[str, dict[str, float | ReportedValue | None]]
    layout: TableLayout | VariabilityLayout | None = None

    _id = field_validator("id")(_check_id)

    @field_validator("rows", "columns", mode="before")
    @classmethod
    def _strs(cls, v: Any) -> Any:
        return [_level_str(x) for x in v] if isinstance(v, list) else v

    @field_validator("values", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {_level_str(r): ({_level_str(c): x for c, x in cols.items()} if isinstance(cols, dict) else cols)
                    for r, cols in v.items()}
        return v

    @model_validator(mode="after")
    def _cells_in_grid(self) -> "ReportedTable":
        for r, cols in self.values.items():
            if r not in self.rows:
                raise ValueError(f"values has row {r!r} not in rows {self.rows}")
            for c in cols:
                if c not in self.columns:
                    raise ValueError(f"values[{r!r}] has column {c!r} not in columns {self.columns}")
        if self.kind == "result" and self.layout is None:
            raise ValueError("a 'result' table needs a 'layout' mapping rows/columns to variant axes")
        return self

    def value(self, row: str, column: str) -> ReportedValue | None:
        v = self.values.get(row, {}).get(column)
        if v is None or isinstance(v, ReportedValue):
            return v
        return ReportedValue(value=float(v))


class Study(_Frozen):
    """A paper's reproduction, declared."""

    id: str
    title: str
    paper: Paper
    module: str | None = Field(None, description="Python module registering the study's models/layers")
    seed: int = Field(0, ge=0, lt=2**63, description="root seed every run's streams derive from")
    randomness: Randomness = Randomness()
    documents: list[Document] = []
    claims: list[Claim] = []
    tables: list[ReportedTable] = []
    defaults: dict[str, Hyper] = Field({}, description="settings shared by every experiment")
    experiments: list[Experiment] = Field(min_length=1)
    scales: dict[ScaleName, Scale] = {}

    _id = field_validator("id")(_check_id)

    @model_validator(mode="after")
    def _cross_references(self) -> "Study":
        exps = {e.id: e for e in self.experiments}
        if len(exps) != len(self.experiments):
            raise ValueError("experiment ids must be unique")
        docs = {d.id for d in self.documents}
        tables = {t.id: t for t in self.tables}
        for t in self.tables:
            if t.document not in docs:
                raise ValueError(f"tables[{t.id}].document: unknown document {t.document!r}; known: {sorted(docs)}")
            if isinstance(t.layout, TableLayout):
                _check_selector_axes(exps, t.layout.experiment, [t.layout.row_axis, t.layout.column_axis,
                                                                 *t.layout.where], f"tables[{t.id}].layout")
            elif isinstance(t.layout, VariabilityLayout):
                for name, ms in t.layout.rows.items():
                    _check_selector_axes(exps, ms.experiment, list(ms.where), f"tables[{t.id}].layout.rows.{name}")
        for c in self.claims:
            where = f"claims[{c.id}]"
            if isinstance(c, NumericClaim):
                for ref in c.cells:
                    t = tables.get(ref.table)
                    if t is None:
                        raise ValueError(f"{where}.cells: unknown table {ref.table!r}; known: {sorted(tables)}")
                    if ref.row not in t.rows or ref.column not in t.columns:
                        raise ValueError(f"{where}.cells: no cell ({ref.row!r}, {ref.column!r}) in table {t.id}")
            for sel in _claim_selectors(c):
                _check_selector_axes(exps, sel.experiment, list(sel.where), where)
            if isinstance(c, TrendClaim):
                _check_selector_axes(exps, c.select.experiment, [c.over], where + ".over")
        for name, sc in self.scales.items():
            for eid in sc.experiments:
                if eid not in exps:
                    raise ValueError(f"scales.{name}.experiments: unknown experiment {eid!r}; known: {sorted(exps)}")
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


def _claim_selectors(c: Any) -> list[Selector]:
    if isinstance(c, BeatsClaim):
        return [c.a, *c.b]
    if isinstance(c, TrendClaim):
        return [c.select] + ([c.baseline] if c.baseline else [])
    if isinstance(c, ThresholdClaim):
        return [c.select]
    if isinstance(c, VariabilityClaim):
        return [g.selector() for g in c.groups] + ([c.reference.selector()] if c.reference else [])
    return []


def _check_selector_axes(exps: dict[str, Experiment], eid: str, axes: list[str], where: str) -> None:
    if eid not in exps:
        raise ValueError(f"{where}: unknown experiment {eid!r}; known: {sorted(exps)}")
    known = set(exps[eid].axes)
    for a in axes:
        if a not in known:
            raise ValueError(f"{where}: experiment {eid!r} has no axis {a!r}; axes: {sorted(known)}")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a study file."""
    return Study.model_json_schema()
