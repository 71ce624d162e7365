"""What runs: experiments, their variant axes and rules, their randomness, and the scales that
change them (a scale's settings, axes, rules and per-experiment blocks).

Imports pydantic and the study file's value types only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .values import SOURCES, Frozen, Hyper, Level, Provenance, Settings, Source, check_id, level_str


class Axis(Frozen):
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
        return [level_str(v) for v in self.values or []]

    def overrides(self, level: str) -> Settings:
        if self.levels is not None:
            return dict(self.levels[level])
        for v in self.values or []:
            if level_str(v) == level:
                return {
                    self.path: Hyper(value=v, provenance=self.provenance, source=self.source or f"axis value {level}")
                }
        raise KeyError(level)


class Rule(Frozen):
    """Settings applied to the variants whose axis levels match ``when`` (a level or a list)."""

    when: dict[str, Level | list[Level]]
    set: Settings

    def matches(self, variant: dict[str, str]) -> bool:
        for axis, want in self.when.items():
            wanted = [level_str(w) for w in (want if isinstance(want, list) else [want])]
            if variant.get(axis) not in wanted:
                return False
        return True


class Randomness(Frozen):
    """How seeds are derived and which sources of randomness vary across seed indices.

    ``streams``: ``paired`` keys each source's stream by (study seed, seed index, source), so
    variants with the same seed index share data order and (same shapes) initial weights — common
    random numbers that make paired comparisons sharper; ``independent`` keys it also by experiment
    and variant. Sources not in ``vary`` are held at seed index 0 for every run.
    """

    streams: Literal["paired", "independent"] = "paired"
    vary: list[Source] = list(SOURCES)
    kernels: Literal["deterministic", "nondeterministic"] = "deterministic"


class InputRun(Frozen):
    """Each run of an experiment starts from, or learns from, the run of another experiment with the
    same seed index: ``take: weights`` starts from its final weights (pretrain → fine-tune, same
    model), ``take: outputs`` trains on its outputs as soft targets besides the labels (teacher →
    student distillation, Hinton et al., 2015, §2: settings ``distill.temperature`` and
    ``distill.alpha``). The other run is the variant of ``experiment`` that ``where`` selects, the
    axes both experiments have taking the student's own level. Its runs keep their weights
    (``save_weights``), and a changed input run gives its readers new keys: they run again."""

    experiment: str
    where: dict[str, Level] = {}
    take: Literal["weights", "outputs"]
    provenance: Provenance = "assumed"
    source: str = ""

    @field_validator("where", mode="before")
    @classmethod
    def _levels(cls, v: Any) -> Any:
        return {k: level_str(x) for k, x in v.items()} if isinstance(v, dict) else v


class Experiment(Frozen):
    id: str
    description: str = ""
    settings: dict[str, Hyper] = {}
    axes: dict[str, Axis] = {}
    rules: list[Rule] = []
    seeds: int = Field(3, ge=1, le=10000)
    randomness: Randomness | None = None
    input_run: InputRun | None = Field(
        None, description="each run starts from (weights) or learns from (outputs) a run of another experiment"
    )

    _id = field_validator("id")(check_id)


class ScaleExperiment(Frozen):
    """What a scale changes for one experiment (after the scale's own changes)."""

    settings: Settings = {}
    axes: dict[str, list[Level]] = {}
    rules: list[Rule] = []
    seeds: int | None = Field(None, ge=1, le=10000)
    skip: bool = False


class Scale(Frozen):
    """What a scale changes relative to the paper protocol (the experiments as declared)."""

    description: str = ""
    dataset: str = Field("", description="the data this scale runs on, as a report names it")
    deviations: list[str] = []
    settings: Settings = Field({}, description="overrides for every experiment; bare values are 'assumed'")
    axes: dict[str, list[Level]] = Field({}, description="restrict axes to these levels")
    rules: list[Rule] = []
    seeds: int | None = Field(None, ge=1, le=10000)
    experiments: dict[str, ScaleExperiment] = {}
