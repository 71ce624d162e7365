"""Planning's checks of the parts a variant names: the engine can call each (its signature takes
what the engine passes), each takes the arguments the study gives it with values of its declared
types (:mod:`restudy.spec.parts`), and no scale swaps the part an axis level chose (its runs would
carry the level's name). An error names the setting's ``file:line``, the value and what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import StudyError
from ..spec.settings import RunSettings, is_passthrough
from ..spec.study import Study
from ..spec.studyfile import where as source_where
from ..spec.values import Hyper
from ..storage.artifacts import variant_id

Path_ = tuple[str | int, ...]


def check_parts(
    study: Study,
    experiment_id: str,
    variant: dict[str, str],
    scale: str,
    settings: RunSettings,
    checked: set[str],
    setting_paths: Callable[..., list[Path_]],
) -> None:
    """The parts one variant names can be called as the engine calls them, and take the arguments
    the study gives them with values of their declared types (:mod:`restudy.spec.parts`); an error
    names the setting's ``file:line`` (``setting_paths``: the paths that set a setting, as
    :func:`restudy.planning.runs.setting_paths` gives them), the value and the arguments the part takes."""
    from ..spec import parts

    values = settings.values
    run = f"experiment {experiment_id!r}, variant {variant_id(variant) or '(no axes)'}: "

    def where(setting: str) -> tuple[str, Path_ | None]:
        if settings.provenance.get(setting, {}).get("source") == "command-line override":
            return f"command line: {setting}={values[setting]!r}", None
        paths = setting_paths(study, experiment_id, variant, scale, setting)
        return (source_where(study, paths[-1]), paths[-1]) if paths else ("the command line", None)

    exp = study.experiment(experiment_id)
    for axis, level in variant.items():
        # a scale that overrides the part an axis level chose would label its runs with the level
        own = {k: v.value if isinstance(v, Hyper) else v for k, v in exp.axes[axis].overrides(level).items()}
        for setting in (v for v in parts.SETTING_OF.values() if v in own and v in values):
            if values[setting] == own[setting]:
                continue
            paths = setting_paths(study, experiment_id, variant, scale, setting)
            if paths and paths[-1][0] == "scales":
                raise StudyError(
                    f"axis {axis!r} at level {level!r} trains {setting} {own[setting]!r}, but at {scale} scale "
                    f"{values[setting]!r}, and its runs would be labelled {level!r}: give this scale a level of its "
                    "own and, for a reported table, map it to the paper's with the layout's stand_ins",
                    where=source_where(study, paths[-1]),
                    got=values[setting],
                    path=paths[-1],
                )
    named: list[tuple[str, str]] = [
        (k, values[s]) for k, s in parts.SETTING_OF.items() if k != "transform" and s in values
    ]
    named += [("transform", t) for t in values.get("transforms") or []]
    for kind, name in named:
        key = json.dumps([kind, name])
        if key not in checked:
            checked.add(key)
            problem = parts.signature_problem(kind, name)
            if problem:
                at, path = where(parts.SETTING_OF[kind])
                raise StudyError(run + problem, where=at, got=name, path=path)
    for kind, prefix in parts.PREFIX_OF.items():
        given = {k[len(prefix) + 1 :]: v for k, v in values.items() if k.startswith(prefix + ".") and is_passthrough(k)}
        names = [n for k, n in named if k == kind]
        for arg, value in given.items():
            key = json.dumps([kind, names, arg, value], default=str)
            if key in checked or not names:
                continue
            checked.add(key)
            problems = [parts.argument_problem(kind, n, arg, value) for n in names]
            if kind == "transform":  # an argument goes to every listed transform that takes it
                takers = [p for p in problems if p is None or "takes no argument" not in p[0]]
                problems = [p for p in takers if p is not None] or ([] if takers else problems[:1])
            problem = next((p for p in problems if p is not None), None)
            if problem:
                at, path = where(f"{prefix}.{arg}")
                raise StudyError(
                    f"{run}{prefix}.{arg}: {problem[0]}", where=at, got=value, allowed=problem[1], path=path
                )
