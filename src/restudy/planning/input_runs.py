"""Runs that feed runs (an experiment's ``input_run``): which experiments a plan needs, the order
that plans a read run before its readers, and, for one reader, the run it reads (same seed index,
the variant ``where`` selects, shared axes at the reader's level)."""

from __future__ import annotations

from typing import Any

from ..errors import StudyError
from ..spec.study import Study
from ..spec.studyfile import where as source_where
from ..storage.artifacts import variant_id

RunSpec = Any  # restudy.planning.runs.RunSpec (which imports this module)


def with_inputs(study: Study, experiments: list[str] | None) -> set[str]:
    """The experiments to plan: those asked for (all by default) and, transitively, those whose runs
    they read (their ``input_run``)."""
    wanted = {e.id for e in study.experiments} if experiments is None else set(experiments)
    todo = list(wanted)
    while todo:
        ir = study.experiment(todo.pop()).input_run
        if ir is not None and ir.experiment not in wanted:
            wanted.add(ir.experiment)
            todo.append(ir.experiment)
    return wanted


def inputs_first(exps: list[Any]) -> list[Any]:
    """The experiments with each after the experiment whose runs it reads (the study refuses cycles)."""
    order, placed = [], set()
    pending = list(exps)
    while pending:
        ready = [e for e in pending if e.input_run is None or e.input_run.experiment in placed]
        if not ready:  # a cycle (crossref refuses it) or an unknown experiment: plan order
            ready = pending[:1]
        for e in ready:
            order.append(e)
            placed.add(e.id)
            pending.remove(e)
    return order


def input_spec(study: Study, exp: Any, variant: dict[str, str], seed_index: int, inputs: list[RunSpec]) -> RunSpec:
    """The run that run (``exp``, ``variant``, ``seed_index``) reads: of the input experiment's runs
    with the same seed index, the one whose variant has the levels of ``where`` and, on the axes
    both experiments have, the reader's own levels."""
    ir = exp.input_run
    index = [e.id for e in study.experiments].index(exp.id)
    where_ = source_where(study, ("experiments", index, "input_run"))
    same = [s for s in inputs if s.seed_index == seed_index]
    if not same:
        raise StudyError(
            f"experiment {exp.id!r} reads run {seed_index} of {ir.experiment!r}, which has "
            f"{len({s.seed_index for s in inputs})} seed(s) here: give it at least as many seeds as its reader",
            where=where_,
            got=seed_index,
        )
    want = {**{a: lv for a, lv in variant.items() if any(a in s.variant for s in same)}, **ir.where}
    match = [s for s in same if all(s.variant.get(a) == lv for a, lv in want.items())]
    if len(match) != 1:
        have = sorted({variant_id(s.variant) for s in same})
        raise StudyError(
            f"input_run must select one variant of {ir.experiment!r} for variant {variant_id(variant)!r} of "
            f"{exp.id!r}; {len(match)} match {want}: set its 'where' (axes both share take the reader's level)",
            where=where_,
            got=want,
            allowed=have,
        )
    return match[0]


def with_input_runs(specs: list[RunSpec], chosen: list[RunSpec]) -> list[RunSpec]:
    """``chosen`` and, transitively, the runs they read (input runs), in the order of ``specs``."""
    by_key = {s.key: s for s in specs}
    keep = {s.key for s in chosen}
    todo = [s for s in chosen if s.input_run]
    while todo:
        k = todo.pop().input_run["key"]
        if k not in keep and k in by_key:
            keep.add(k)
            if by_key[k].input_run:
                todo.append(by_key[k])
    return [s for s in specs if s.key in keep]
