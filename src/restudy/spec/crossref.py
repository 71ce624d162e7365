"""Cross-references inside a study: every name a study uses that it does not declare.

Experiment ids and claim ids must be unique; a table's document, a table layout's experiment, axes
and levels, a rule's ``when`` (axes and levels; a rule that names none of them would never apply),
and a scale's axes and per-experiment blocks must name what the study declares. Each problem comes
with its field path, so that the study file's loader names ``file:line`` (``study.Study`` raises
them as one validation error).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .experiments import Experiment
from .reported import TableLayout, VariabilityLayout
from .values import Loc, level_str

if TYPE_CHECKING:
    from .study import Study  # annotations only: study.py imports this module


def _one_of(names: Any) -> str:
    return ", ".join(str(n) for n in names)


def reference_problems(study: Study) -> list[tuple[Loc, str, Any]]:
    """Every name the study uses that it does not declare (experiments, documents, axes, levels,
    unique ids), each at its field path."""
    out: list[tuple[Loc, str, Any]] = []
    exps: dict[str, Experiment] = {}
    for i, e in enumerate(study.experiments):
        if e.id in exps:
            out.append((("experiments", i, "id"), f"experiment ids must be unique; {e.id!r} is used twice", e.id))
        exps.setdefault(e.id, e)
    seen_claims: set[str] = set()
    for i, c in enumerate(study.claims):
        if c.id in seen_claims:
            out.append((("claims", i, "id"), f"claim ids must be unique; {c.id!r} is used twice", c.id))
        seen_claims.add(c.id)
    docs = [d.id for d in study.documents]
    for i, t in enumerate(study.tables):
        if t.document not in docs:
            out.append(
                (
                    ("tables", i, "document"),
                    f"unknown document; allowed: {_one_of(docs) or '(none listed)'}",
                    t.document,
                )
            )
        if isinstance(t.layout, TableLayout):
            loc: Loc = ("tables", i, "layout")
            axes = {f: a for f, a in (("row_axis", t.layout.row_axis), ("column_axis", t.layout.column_axis)) if a}
            out += _selector_problems(exps, loc, t.layout.experiment, axes, t.layout.where)
            out += _stand_in_problems(exps, loc, t.layout)
        elif isinstance(t.layout, VariabilityLayout):
            for name, ms in t.layout.rows.items():
                out += _selector_problems(exps, ("tables", i, "layout", "rows", name), ms.experiment, {}, ms.where)
    for i, e in enumerate(study.experiments):
        for j, rule in enumerate(e.rules):
            out += _when_problems(("experiments", i, "rules", j, "when"), rule.when, [e])
        if e.input_run is not None:
            out += _input_run_problems(exps, ("experiments", i, "input_run"), e)
    all_exps = list(exps.values())
    for name, sc in study.scales.items():
        for a in sc.axes:
            if not any(a in e.axes for e in all_exps):
                out.append((("scales", name, "axes", a), _no_axis(a, all_exps), a))
        for j, rule in enumerate(sc.rules):
            out += _when_problems(("scales", name, "rules", j, "when"), rule.when, all_exps)
        for eid, se in sc.experiments.items():
            loc = ("scales", name, "experiments", eid)
            if eid not in exps:
                out.append((loc, f"unknown experiment; allowed: {_one_of(exps)}", eid))
                continue
            for a in se.axes:
                if a not in exps[eid].axes:
                    out.append(((*loc, "axes", a), _no_axis(a, [exps[eid]]), a))
            for j, rule in enumerate(se.rules):
                out += _when_problems((*loc, "rules", j, "when"), rule.when, [exps[eid]])
    return out


def _no_axis(axis: str, exps: list[Experiment]) -> str:
    names = sorted({a for e in exps for a in e.axes})
    what = f"experiment {exps[0].id!r} has no axis" if len(exps) == 1 else "no experiment has an axis"
    return f"{what} {axis!r}; allowed: {_one_of(names) or '(no axes)'}"


def _when_problems(loc: Loc, when: dict[str, Any], exps: list[Experiment]) -> list[tuple[Loc, str, Any]]:
    """A rule's ``when`` naming an axis or a level that none of ``exps`` has: it would never apply."""
    out: list[tuple[Loc, str, Any]] = []
    for a, want in when.items():
        having = [e for e in exps if a in e.axes]
        if not having:
            out.append(((*loc, a), _no_axis(a, exps) + " (the rule would never apply)", a))
            continue
        levels = list(dict.fromkeys(lv for e in having for lv in e.axes[a].level_names()))
        for w in want if isinstance(want, list) else [want]:
            if level_str(w) not in levels:
                out.append(
                    (
                        (*loc, a),
                        f"axis {a!r} has no such level (the rule would never apply); allowed: {_one_of(levels)}",
                        w,
                    )
                )
    return out


def _input_run_problems(exps: dict[str, Experiment], loc: Loc, e: Experiment) -> list[tuple[Loc, str, Any]]:
    """An input run of an unknown experiment, of itself, through a cycle, or selecting levels its
    experiment does not have."""
    ir = e.input_run
    assert ir is not None
    if ir.experiment == e.id:
        return [((*loc, "experiment"), "an experiment cannot read its own runs", ir.experiment)]
    if ir.experiment not in exps:
        return [((*loc, "experiment"), f"unknown experiment; allowed: {_one_of(exps)}", ir.experiment)]
    seen, at = {e.id}, exps[ir.experiment]
    while at.input_run is not None:
        if at.id in seen or at.input_run.experiment in seen:
            return [((*loc, "experiment"), "input runs form a cycle: each would wait for the other", ir.experiment)]
        seen.add(at.id)
        if at.input_run.experiment not in exps:
            break
        at = exps[at.input_run.experiment]
    return _selector_problems(exps, loc, ir.experiment, {}, ir.where)


def _stand_in_problems(exps: dict[str, Experiment], loc: Loc, layout: TableLayout) -> list[tuple[Loc, str, Any]]:
    """A stand-in level that its axis does not have (or a stand-in for an axis the table leaves out)."""
    out: list[tuple[Loc, str, Any]] = []
    exp = exps.get(layout.experiment)
    for sc, sub in layout.stand_ins.items():
        for field, axis, mapping in (("rows", layout.row_axis, sub.rows), ("columns", layout.column_axis, sub.columns)):
            for label, level in mapping.items():
                at = (*loc, "stand_ins", sc, field, label)
                if axis is None:
                    out.append((at, f"the table's {field} are no axis' levels: nothing to stand in for", level))
                elif exp is not None and axis in exp.axes and level_str(level) not in exp.axes[axis].level_names():
                    levels = exp.axes[axis].level_names()
                    out.append((at, f"axis {axis!r} has no such level; allowed: {_one_of(levels)}", level))
    return out


def _selector_problems(
    exps: dict[str, Experiment], loc: Loc, eid: str, named_axes: dict[str, str], where: dict[str, Any]
) -> list[tuple[Loc, str, Any]]:
    """A table layout's experiment, axes and ``where`` levels, checked against the experiments."""
    if eid not in exps:
        return [((*loc, "experiment"), f"unknown experiment; allowed: {_one_of(exps)}", eid)]
    axes = exps[eid].axes
    out: list[tuple[Loc, str, Any]] = []
    for field, a in named_axes.items():
        if a not in axes:
            out.append(((*loc, field), f"experiment {eid!r} has no axis {a!r}; allowed: {_one_of(sorted(axes))}", a))
    for a, want in where.items():
        if a not in axes:
            out.append(
                ((*loc, "where", a), f"experiment {eid!r} has no axis {a!r}; allowed: {_one_of(sorted(axes))}", a)
            )
            continue
        levels = axes[a].level_names()
        for w in want if isinstance(want, list) else [want]:
            if level_str(w) not in levels:
                out.append(((*loc, "where", a), f"axis {a!r} has no such level; allowed: {_one_of(levels)}", w))
    return out
