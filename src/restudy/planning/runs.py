"""From a ``Study`` at one scale to the list of runs: experiment × variant × seed index.

Each run is a frozen ``RunSpec`` of plain values (resolved settings, per-source seeds, kernels
switch); nothing below this module sees the study. A run's key is a hash of its resolved spec and
the restudy version, so the same run is recognised across invocations (resume).

Every setting the study file sets is checked once (:func:`validate`, at every scale, after the
study's module registered its parts), with the file's ``file:line`` in each error. Settings then
resolve in this order, later winning: study defaults → experiment settings → variant axis levels →
experiment rules → scale settings → scale rules → scale's per-experiment settings and rules →
command-line overrides.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .. import __version__, plugins
from ..errors import RestudyError, StudyError
from ..spec.experiments import Randomness, Rule
from ..spec.metrics import declared as declared_metrics
from ..spec.settings import DECLARATIONS, RunSettings, check, relevant
from ..spec.study import Study
from ..spec.studyfile import study_dir
from ..spec.studyfile import where as source_where
from ..spec.values import SCALES, Hyper, level_str
from ..storage.artifacts import variant_id
from ..storage.record import RECORDED_METRIC_PATTERN, RECORDED_METRICS
from .input_runs import input_spec, inputs_first, with_input_runs, with_inputs
from .part_checks import check_parts
from .seeding import run_seeds


@dataclass(frozen=True)
class RunSpec:
    """One run, in plain values. ``settings`` are resolved, each value with its provenance
    (:class:`restudy.spec.settings.RunSettings`)."""

    key: str
    study: str
    scale: str
    experiment: str
    variant: dict[str, str]
    seed_index: int
    settings: RunSettings
    seeds: dict[str, int]
    kernels: str
    vary: tuple[str, ...]
    streams: str
    study_module: str | None = None
    dataset_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    study_dir: str | None = None  # the folder ``study_module`` is imported from (not part of the key)
    # the run this one starts from or learns from (experiment's input_run): {key, take, experiment, variant}
    input_run: dict[str, Any] | None = None

    @property
    def variant_id(self) -> str:
        return variant_id(self.variant)

    @property
    def engine(self) -> Any:
        """The engine settings as a frozen ``Engine`` (``spec.engine.optimizer_lr``)."""
        return self.settings.engine

    def with_settings(self, changes: dict[str, Any], source: str, key: str | None = None) -> RunSpec:
        """This run with ``changes`` to its settings (marked assumed from ``source``) and, if given,
        another ``key``."""
        return replace(self, settings=self.settings.with_values(changes, source), key=key or self.key)

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``run.json`` stores it: ``settings`` (flat values) and ``provenance`` side by side."""
        d: dict[str, Any] = {}
        for f in fields(self):
            d[f.name] = getattr(self, f.name)
            if f.name == "settings":
                d["settings"] = self.settings.to_dict()
                d["provenance"] = dict(self.settings.provenance)
        d["vary"] = list(self.vary)
        return copy.deepcopy(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["vary"] = tuple(d.get("vary", ()))
        d["settings"] = RunSettings(dict(d["settings"]), dict(d.pop("provenance", {}) or {}))
        return cls(**d)


Override = tuple[str | None, str, Any]  # (experiment or None for all, setting, value)
Path_ = tuple[str | int, ...]


def _plain(v: Any) -> Any:
    return v.value if isinstance(v, Hyper) else v


def _as_hyper(value: Any, base: Hyper | None, source: str) -> Hyper:
    """A bare value inherits nothing: it is marked by where it was set (``source``)."""
    if isinstance(value, Hyper):
        return value
    if base is not None and source.startswith("variant"):
        # Variant levels are the experiment's design: the value keeps its base provenance.
        return Hyper(
            value=value,
            provenance=base.provenance,
            source=f"{source}" + (f"; base: {base.source}" if base.source else ""),
        )
    return Hyper(value=value, provenance="assumed", source=source)


# --- validation: every setting the study file sets, once, with file:line ---------------------------


def _occurrences(study: Study) -> Iterator[tuple[Path_, str, Any]]:
    """Every (field path, setting name, value) the study sets, in file order."""

    def mapping(path: Path_, values: Mapping[str, Any]) -> Iterator[tuple[Path_, str, Any]]:
        for name, v in values.items():
            yield (*path, name), name, _plain(v)

    def rules(path: Path_, rs: list[Rule]) -> Iterator[tuple[Path_, str, Any]]:
        for j, rule in enumerate(rs):
            yield from mapping((*path, "rules", j, "set"), rule.set)

    yield from mapping(("defaults",), study.defaults)
    for i, exp in enumerate(study.experiments):
        yield from mapping(("experiments", i, "settings"), exp.settings)
        for a, axis in exp.axes.items():
            if axis.levels is not None:
                for level, values in axis.levels.items():
                    yield from mapping(("experiments", i, "axes", a, "levels", level), values)
            else:
                for k, v in enumerate(axis.values or []):
                    yield ("experiments", i, "axes", a, "values", k), str(axis.path), v
        yield from rules(("experiments", i), exp.rules)
    for name, sc in study.scales.items():
        yield from mapping(("scales", name, "settings"), sc.settings)
        yield from rules(("scales", name), sc.rules)
        for eid, se in sc.experiments.items():
            yield from mapping(("scales", name, "experiments", eid, "settings"), se.settings)
            yield from rules(("scales", name, "experiments", eid), se.rules)


def _refuse(study: Study | None, path: Path_ | None, name: str, value: Any, where: str | None = None) -> None:
    if name == "input_run.take":
        raise StudyError(
            "input_run.take is set from an experiment's input_run field, not by hand",
            where=where or source_where(study, path or ()),
            got=value,
            allowed="experiments[i].input_run: {experiment, where, take: weights|outputs}",
            path=path,
        )
    problem = check(name, value)
    if problem is None:
        return
    message, allowed = problem
    if path is not None and path[-1] != name:
        message = f"{name}: {message}"  # e.g. a swept value, at axes.NAME.values[k]
    raise StudyError(message, where=where or source_where(study, path or ()), got=value, allowed=allowed, path=path)


_VALIDATED: weakref.WeakValueDictionary[int, Study] = weakref.WeakValueDictionary()


def validate(study: Study) -> None:
    """Import the study's module (its parts register) and check every setting the study sets,
    at every scale; an error names ``file:line``, the field path, the value and what is allowed.
    Done once per loaded study."""
    if _VALIDATED.get(id(study)) is study:
        return
    if study.module:
        try:
            plugins.import_study_module(study.module, study_dir(study))
        except RestudyError as e:
            raise StudyError(
                e.message, where=source_where(study, ("module",)), got=study.module, path=("module",)
            ) from None
    for path, name, value in _occurrences(study):
        _refuse(study, path, name, value)
    _check_claim_metrics(study)
    _VALIDATED[id(study)] = study


def _check_claim_metrics(study: Study) -> None:
    """Every claim's ``metric`` is one the runs record: a built-in one
    (:data:`restudy.storage.record.RECORDED_METRICS`, and the names TTA and snapshot ensembles add)
    or one that a run metric the study lists in ``run_metrics`` declares (its ``metrics``
    attribute). When a listed run metric declares nothing, its names cannot be known before it
    runs and any name is accepted."""
    listed = sorted({m for _, name, v in _occurrences(study) if name == "run_metrics" for m in (v or [])})
    declared: set[str] = set()
    for name in listed:
        names = getattr(plugins.get("run_metric", name), "metrics", None)
        if names is None:
            return
        declared |= set(declared_metrics(names))
    known = [*RECORDED_METRICS, *sorted(declared)]
    for i, claim in enumerate(study.claims):
        metric = getattr(claim, "metric", None)
        if metric is None or metric in known or re.match(RECORDED_METRIC_PATTERN, metric):
            continue
        path = ("claims", i, "metric")
        raise StudyError(
            "not a metric the runs record; a run metric (kind run_metric, listed in the setting run_metrics) "
            "declares the names it adds in its 'metrics' attribute",
            where=source_where(study, path),
            got=metric,
            allowed=known + ["test_acc_tta_<strategy>", "test_acc_ensemble", "test_acc_ensemble_tta_<strategy>"],
            path=path,
        )


def _override_text(oexp: str | None, key: str, value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"command line: {oexp + ':' if oexp else ''}{key}={shown}"


def _check_overrides(study: Study, overrides: list[Override]) -> None:
    known = [e.id for e in study.experiments]
    for oexp, key, value in overrides:
        if oexp is not None and oexp not in known:
            raise StudyError(
                "override names an unknown experiment", where=_override_text(oexp, key, value), got=oexp, allowed=known
            )
        _refuse(None, None, key, value, where=_override_text(oexp, key, value))


# --- resolution ------------------------------------------------------------------------------------

NAMED_PARTS = ("model", "data", "method")


def _apply(settings: dict[str, Hyper], overrides: Mapping[str, Any], source: str) -> None:
    # Part names first: switching a part (e.g. data: cifar10 -> mnist1d) drops the arguments that
    # were set for the previous part, so they are never passed to a factory that does not take them.
    for k, v in sorted(overrides.items(), key=lambda kv: kv[0] not in NAMED_PARTS):
        if k in NAMED_PARTS and k in settings and _plain(v) != settings[k].value:
            for old in [o for o in settings if o.startswith(k + ".")]:
                del settings[old]
        settings[k] = _as_hyper(v, settings.get(k), source)


def _apply_rules(settings: dict[str, Hyper], rules: list[Rule], variant: dict[str, str], where: str) -> None:
    for i, rule in enumerate(rules):
        if rule.matches(variant):
            _apply(settings, rule.set, f"{where}.rules[{i}]")


def resolve_settings(
    study: Study, experiment_id: str, variant: dict[str, str], scale: str, overrides: list[Override] = ()
) -> dict[str, Hyper]:
    """All settings of one variant at one scale, each with its provenance."""
    validate(study)
    index = [e.id for e in study.experiments].index(experiment_id)
    exp = study.experiments[index]
    sc = study.scales.get(scale)
    settings: dict[str, Hyper] = {}
    _apply(settings, study.defaults, "defaults")
    _apply(settings, exp.settings, f"experiments[{exp.id}].settings")
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
    cli = {
        key: Hyper(value=value, provenance="assumed", source="command-line override")
        for oexp, key, value in overrides
        if oexp is None or oexp == exp.id
    }
    _apply(settings, cli, "command line")
    for decl in DECLARATIONS:
        if decl.name not in settings and not decl.required:
            settings[decl.name] = Hyper(
                value=decl.default,
                provenance="assumed",
                source=f"restudy default: {decl.reason}" if decl.reason else "restudy default",
            )
    if exp.input_run is not None:
        ir = exp.input_run
        source = ir.source or f"experiments[{exp.id}].input_run: {ir.take} of experiment {ir.experiment}"
        settings["input_run.take"] = Hyper(value=ir.take, provenance=ir.provenance, source=source)
    values = {k: h.value for k, h in settings.items()}
    for decl in DECLARATIONS:
        # A required setting is required where it applies (schedule.milestones with multistep only).
        if decl.required and decl.name not in settings and relevant(decl.name, values):
            when = f" (it applies when {decl.applies_when.describe()})" if decl.applies_when else ""
            raise StudyError(
                f"required setting '{decl.name}' is not set{when} (set it in defaults, the "
                f"experiment's settings or a scale's settings)",
                where=source_where(study, ("experiments", index, "settings")),
                path=("experiments", index, "settings", decl.name),
            )
    return {k: h for k, h in settings.items() if relevant(k, values)}


def variant_settings(
    study: Study, experiment_id: str, variant: dict[str, str], scale: str, overrides: list[Override] = ()
) -> RunSettings:
    """The resolved settings of one variant at one scale, each value with its provenance, as its
    runs carry them (:func:`resolve_settings`, in name order)."""
    hypers = resolve_settings(study, experiment_id, variant, scale, overrides)
    values = {k: h.value for k, h in sorted(hypers.items())}
    prov = {k: {"provenance": h.provenance, "source": h.source} for k, h in sorted(hypers.items())}
    return RunSettings(values, prov)


def setting_paths(study: Study, experiment_id: str, variant: dict[str, str], scale: str, setting: str) -> list[Path_]:
    """The field paths that set ``setting`` for one variant at one scale, in the order settings
    resolve (the last one gives the value): for errors found after planning (a part that fails to
    build) to name ``file:line``."""
    index = [e.id for e in study.experiments].index(experiment_id)
    exp = study.experiments[index]
    out: list[Path_] = []
    if setting in study.defaults:
        out.append(("defaults", setting))
    if setting in exp.settings:
        out.append(("experiments", index, "settings", setting))
    for a, level in variant.items():
        axis = exp.axes[a]
        if axis.levels is not None and setting in axis.levels.get(level, {}):
            out.append(("experiments", index, "axes", a, "levels", level, setting))
        elif axis.path == setting:
            k = axis.level_names().index(level) if level in axis.level_names() else 0
            out.append(("experiments", index, "axes", a, "values", k))

    def rules(prefix: Path_, rs: list[Rule]) -> None:
        for j, rule in enumerate(rs):
            if rule.matches(variant) and setting in rule.set:
                out.append((*prefix, "rules", j, "set", setting))

    rules(("experiments", index), exp.rules)
    sc = study.scales.get(scale)
    if sc is not None:
        if setting in sc.settings:
            out.append(("scales", scale, "settings", setting))
        rules(("scales", scale), sc.rules)
        se = sc.experiments.get(exp.id)
        if se is not None:
            if setting in se.settings:
                out.append(("scales", scale, "experiments", exp.id, "settings", setting))
            rules(("scales", scale, "experiments", exp.id), se.rules)
    return out


def variants(study: Study, experiment_id: str, scale: str) -> list[dict[str, str]]:
    """Cartesian product of the experiment's axes, restricted by the scale."""
    exp = study.experiment(experiment_id)
    sc = study.scales.get(scale)
    restrict: dict[str, list[str]] = {}
    for source in ([sc.axes] if sc else []) + (
        [sc.experiments[exp.id].axes] if sc and exp.id in sc.experiments else []
    ):
        for axis, levels in source.items():
            if axis not in exp.axes:
                continue  # a scale may restrict axes that only some experiments have
            known = exp.axes[axis].level_names()
            want = [level_str(v) for v in levels]
            bad = [w for w in want if w not in known]
            if bad:
                path = (
                    ("scales", scale, "axes", axis)
                    if source is sc.axes
                    else ("scales", scale, "experiments", exp.id, "axes", axis)
                )
                raise StudyError(
                    f"scale restricts axis '{axis}' to unknown levels",
                    where=source_where(study, path),
                    got=bad,
                    allowed=known,
                    path=path,
                )
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


def plan(
    study: Study,
    scale: str,
    *,
    seeds: int | None = None,
    overrides: list[Override] = (),
    experiments: list[str] | None = None,
    only: Mapping[str, list[str]] | None = None,
) -> list[RunSpec]:
    """All runs of ``study`` at ``scale``, in a stable order (experiment, variant, seed index);
    with ``only``, those :func:`select_only` keeps (``--only KEY=VALUE``)."""
    if scale not in SCALES:
        raise StudyError("unknown scale", where="--scale", got=scale, allowed=SCALES)
    if seeds is not None and seeds < 1:
        raise StudyError("--seeds must be at least 1", got=seeds)
    validate(study)
    _check_overrides(study, list(overrides))
    sc = study.scales.get(scale)
    folder = study_dir(study) if study.module else None
    wanted = with_inputs(study, experiments)
    read_by = {e.input_run.experiment: e.id for e in study.experiments if e.input_run and e.id in wanted}
    by_exp: dict[str, list[RunSpec]] = {}
    for exp in inputs_first(study.experiments):
        if exp.id not in wanted:
            continue
        if sc is not None and exp.id in sc.experiments and sc.experiments[exp.id].skip:
            if exp.id in read_by:
                raise StudyError(
                    f"experiment {read_by[exp.id]!r} reads the runs of {exp.id!r} (its input_run), which the "
                    f"{scale} scale skips",
                    where=source_where(study, ("scales", scale, "experiments", exp.id, "skip")),
                    got=exp.id,
                )
            continue
        rnd: Randomness = exp.randomness or study.randomness
        n = seeds_for(study, exp.id, scale, seeds)
        runs = by_exp.setdefault(exp.id, [])
        for var in variants(study, exp.id, scale):
            settings = variant_settings(study, exp.id, var, scale, overrides)
            if exp.id in read_by and not settings.engine.save_weights:
                settings = settings.with_values(
                    {"save_weights": True}, f"experiment {read_by[exp.id]!r} reads these runs' weights (input_run)"
                )
            values = settings.values
            for i in range(n):
                scope = (exp.id, variant_id(var)) if rnd.streams == "independent" else ()
                seeds_i = run_seeds(study.seed, i, rnd.vary, scope)
                source = (
                    input_spec(study, exp, var, i, by_exp.get(exp.input_run.experiment, [])) if exp.input_run else None
                )
                input_run = (
                    None
                    if source is None
                    else {
                        "key": source.key,
                        "take": exp.input_run.take,
                        "experiment": source.experiment,
                        "variant": source.variant,
                    }
                )
                payload = {
                    "version": __version__,
                    "study": study.id,
                    "scale": scale,
                    "experiment": exp.id,
                    "variant": var,
                    "seed_index": i,
                    "settings": values,
                    "seeds": seeds_i,
                    "kernels": rnd.kernels,
                    "module": study.module,
                }
                if input_run is not None:  # a changed input run gives this run a new key
                    payload["input_run"] = {"key": input_run["key"], "take": input_run["take"]}
                runs.append(
                    RunSpec(
                        key=run_key(payload),
                        study=study.id,
                        scale=scale,
                        experiment=exp.id,
                        variant=var,
                        seed_index=i,
                        settings=settings,
                        seeds=seeds_i,
                        kernels=rnd.kernels,
                        vary=tuple(rnd.vary),
                        streams=rnd.streams,
                        study_module=study.module,
                        dataset_label=(sc.dataset if sc and sc.dataset else str(values.get("data"))),
                        study_dir=folder,
                        input_run=input_run,
                    )
                )
    specs = [s for e in study.experiments for s in by_exp.get(e.id, [])]  # plan order
    if experiments is not None:  # the chosen experiments, and the runs they read
        specs = with_input_runs(specs, [s for s in specs if s.experiment in experiments])
    if only:
        specs = with_input_runs(specs, select_only(specs, only))
    checked: set[str] = set()
    for s in {(s.experiment, s.variant_id): s for s in specs}.values():  # the parts of the runs that will run
        check_parts(study, s.experiment, s.variant, scale, s.settings, checked, setting_paths)
    return specs


def parse_only(items: list[str]) -> dict[str, list[str]]:
    """``["model=resnet18", "epochs=20", "epochs=100"]`` as ``{key: [values]}`` (``--only``).

    Raises:
        RestudyError: an item is not ``KEY=VALUE``.
    """
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RestudyError("--only takes KEY=VALUE", where="--only", got=item, allowed="e.g. model=resnet18")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _only_value(spec: RunSpec, key: str) -> str | None:
    """What ``--only KEY=…`` compares for ``spec``: its experiment, a variant axis's level, or a
    resolved setting's value (None when the run has none of them)."""
    if key == "experiment":
        return spec.experiment
    if key in spec.variant:
        return spec.variant[key]
    if spec.settings.has(key):
        v = spec.settings.named(key)
        return level_str(v) if not isinstance(v, (list, dict)) else None
    return None


def select_only(specs: list[RunSpec], only: Mapping[str, list[str]]) -> list[RunSpec]:
    """The runs whose every ``only`` key has one of its values (values of one key: any of them;
    different keys: all of them). A key is ``experiment``, a variant axis or a setting.

    Raises:
        StudyError: a key no planned run has, or a value no planned run has for its key (the
            error lists what is allowed).
    """
    for key, wanted in only.items():
        seen = sorted({v for s in specs if (v := _only_value(s, key)) is not None})
        if not seen:
            keys = sorted({"experiment"} | {a for s in specs for a in s.variant})
            raise StudyError(
                "the key is no experiment, variant axis or setting of the planned runs",
                where="--only",
                got=key,
                allowed=keys + ["or a setting name (restudy show STUDY --settings)"],
            )
        bad = [w for w in wanted if w not in seen]
        if bad:
            raise StudyError(f"no planned run has {key} = this value", where=f"--only {key}=", got=bad, allowed=seen)
    return [s for s in specs if all(_only_value(s, k) in vs for k, vs in only.items())]
