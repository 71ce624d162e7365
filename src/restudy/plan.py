"""From a ``Study`` at one scale to the list of runs: experiment × variant × seed index.

Each run is a frozen ``RunSpec`` of plain values (resolved settings, per-source seeds, kernels
switch); nothing below this module sees the study. A run's key is a hash of its resolved spec and
the restudy version, so the same run is recognised across invocations (resume).

Settings resolve in this order, later winning: study defaults → experiment settings → variant axis
levels → experiment rules → scale settings → scale rules → scale's per-experiment settings and
rules → command-line overrides.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from . import __version__
from .artifacts import variant_id
from .errors import StudyError
from .seeding import run_seeds
from .study import Hyper, Randomness, Rule, Study, _level_str
from .settings import ENGINE_SETTINGS, check_setting, relevant

@dataclass(frozen=True)
class RunSpec:
    """One run, in plain values. ``settings`` are resolved; ``provenance`` says where each came from."""

    key: str
    study: str
    scale: str
    experiment: str
    variant: dict[str, str]
    seed_index: int
    settings: dict[str, Any]
    provenance: dict[str, dict[str, str]]
    seeds: dict[str, int]
    kernels: str
    vary: tuple[str, ...]
    streams: str
    study_module: str | None = None
    dataset_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def variant_id(self) -> str:
        return variant_id(self.variant)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["vary"] = list(self.vary)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        d = dict(d)
        d["vary"] = tuple(d.get("vary", ()))
        return cls(**d)


def _as_hyper(value: Any, default_prov: Hyper | None, source: str) -> Hyper:
    """A bare value inherits nothing: it is marked by where it was set (``source``)."""
    if isinstance(value, Hyper):
        return value
    if isinstance(value, dict) and "value" in value and "provenance" in value:
        try:
            return Hyper.model_validate(value)
        except Exception as e:  # pydantic error -> clear message
            raise StudyError(f"bad hyperparameter: {e}", where=source, got=value) from None
    if default_prov is not None and source.startswith("variant"):
        # Variant levels are the experiment's design: the value keeps its base provenance.
        return Hyper(value=value, provenance=default_prov.provenance,
                     source=f"{source}" + (f"; base: {default_prov.source}" if default_prov.source else ""))
    return Hyper(value=value, provenance="assumed", source=source)


NAMED_PARTS = ("model", "data", "method")


def _apply(settings: dict[str, Hyper], overrides: dict[str, Any], source: str) -> None:
    # Part names first: switching a part (e.g. data: cifar10 -> mnist1d) drops the arguments that
    # were set for the previous part, so they are never passed to a factory that does not take them.
    for k, v in sorted(overrides.items(), key=lambda kv: kv[0] not in NAMED_PARTS):
        if k in NAMED_PARTS and k in settings:
            new = v.value if isinstance(v, Hyper) else (v["value"] if isinstance(v, dict) and "value" in v else v)
            if new != settings[k].value:
                for old in [o for o in settings if o.startswith(k + ".")]:
                    del settings[old]
        check_setting(k, v.value if isinstance(v, Hyper) else (v["value"] if isinstance(v, dict) and "value" in v else v),
                      source)
        settings[k] = _as_hyper(v, settings.get(k), source)


def _apply_rules(settings: dict[str, Hyper], rules: list[Rule], variant: dict[str, str], where: str) -> None:
    for i, rule in enumerate(rules):
        if rule.matches(variant):
            _apply(settings, rule.set, f"{where}.rules[{i}]")


def resolve_settings(study: Study, experiment_id: str, variant: dict[str, str], scale: str,
                     overrides: list[tuple[str | None, str, Any]] = ()) -> dict[str, Hyper]:
    """All settings of one variant at one scale, each with its provenance."""
    exp = study.experiment(experiment_id)
    sc = study.scales.get(scale)
    settings: dict[str, Hyper] = {}
    _apply(settings, dict(study.defaults), "defaults")
    _apply(settings, dict(exp.settings), f"experiments[{exp.id}].settings")
    for axis_name, level in variant.items():
        _apply(settings, exp.axes[axis_name].overrides(level), f"variant {axis_name}={level}")
    _apply_rules(settings, exp.rules, variant, f"experiments[{exp.id}]")
    if sc is not None:
        _apply(settings, sc.settings, f"scale {scale}")
        _apply_rules(settings, sc.rules, variant, f"scales.{scale}")
        se = sc.experiments.get(exp.id)
        if se is not None:
            _apply(settings, se.settings, f"scale {scale} ({exp.id})")
            _apply_rules(settings, se.rules, variant, f"scales.{scale}.experiments.{exp.id}")
    cli = {key: Hyper(value=value, provenance="assumed", source="command-line override")
           for oexp, key, value in overrides if oexp is None or oexp == exp.id}
    _apply(settings, cli, "command line")
    for name, (default, _check) in ENGINE_SETTINGS.items():
        if name not in settings:
            if default is None:
                raise StudyError("required setting is missing", where=f"experiments[{exp.id}].settings.{name}")
            settings[name] = Hyper(value=default, provenance="assumed", source="restudy default")
    for name in [n for n in settings if not relevant(n, {k: h.value for k, h in settings.items()})]:
        del settings[name]
    return settings


def variants(study: Study, experiment_id: str, scale: str) -> list[dict[str, str]]:
    """Cartesian product of the experiment's axes, restricted by the scale."""
    exp = study.experiment(experiment_id)
    sc = study.scales.get(scale)
    restrict: dict[str, list[str]] = {}
    for source in ([sc.axes] if sc else []) + ([sc.experiments[exp.id].axes] if sc and exp.id in sc.experiments else []):
        for axis, levels in source.items():
            if axis not in exp.axes:
                continue  # a scale may restrict axes that only some experiments have
            known = exp.axes[axis].level_names()
            want = [_level_str(v) for v in levels]
            bad = [w for w in want if w not in known]
            if bad:
                raise StudyError(f"scale restricts axis '{axis}' to unknown levels",
                                 where=f"scales.{scale}.axes.{axis}", got=bad, allowed=known)
            restrict[axis] = want
    names = list(exp.axes)
    levels = [restrict.get(a, exp.axes[a].level_names()) for a in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*levels)]


def seeds_for(study: Study, experiment_id: str, scale: str, seeds_override: int | None = None) -> int:
    if seeds_override is not None:
        return seeds_override
    sc = study.scales.get(scale)
    if sc is not None:
        se = sc.experiments.get(experiment_id)
        if se is not None and se.seeds is not None:
            return se.seeds
        if sc.seeds is not None:
            return sc.seeds
    return study.experiment(experiment_id).seeds


def run_key(payload: dict[str, Any]) -> str:
    canon = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()[:20]


def plan(study: Study, scale: str, *, seeds: int | None = None,
         overrides: list[tuple[str | None, str, Any]] = (),
         experiments: list[str] | None = None) -> list[RunSpec]:
    """All runs of ``study`` at ``scale``, in a stable order (experiment, variant, seed index)."""
    from .study import SCALES

    if scale not in SCALES:
        raise StudyError("unknown scale", where="--scale", got=scale, allowed=SCALES)
    for oexp, _k, _v in overrides:
        if oexp is not None and oexp not in {e.id for e in study.experiments}:
            raise StudyError("override names an unknown experiment", where="command line", got=oexp,
                             allowed=[e.id for e in study.experiments])
    if seeds is not None and seeds < 1:
        raise StudyError("--seeds must be at least 1", got=seeds)
    sc = study.scales.get(scale)
    specs: list[RunSpec] = []
    for exp in study.experiments:
        if experiments is not None and exp.id not in experiments:
            continue
        if sc is not None and exp.id in sc.experiments and sc.experiments[exp.id].skip:
            continue
        rnd: Randomness = exp.randomness or study.randomness
        n = seeds_for(study, exp.id, scale, seeds)
        for var in variants(study, exp.id, scale):
            hypers = resolve_settings(study, exp.id, var, scale, overrides)
            values = {k: h.value for k, h in sorted(hypers.items())}
            prov = {k: {"provenance": h.provenance, "source": h.source} for k, h in sorted(hypers.items())}
            for i in range(n):
                scope = (exp.id, variant_id(var)) if rnd.streams == "independent" else ()
                seeds_i = run_seeds(study.seed, i, rnd.vary, scope)
                payload = {"version": __version__, "study": study.id, "experiment": exp.id,
                           "variant": var, "seed_index": i, "settings": values, "seeds": seeds_i,
                           "kernels": rnd.kernels, "module": study.module}
                specs.append(RunSpec(
                    key=run_key(payload), study=study.id, scale=scale, experiment=exp.id, variant=var,
                    seed_index=i, settings=values, provenance=prov, seeds=seeds_i, kernels=rnd.kernels,
                    vary=tuple(rnd.vary), streams=rnd.streams, study_module=study.module,
                    dataset_label=(sc.dataset if sc and sc.dataset else str(values.get("data"))),
                ))
    return specs
