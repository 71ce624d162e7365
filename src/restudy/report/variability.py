"""The variability section's view: per table of model sets, the reproduced metrics with their
bootstrap CIs beside the reported ones, the reductions both ways and the judged cells.

Rows that select the same models at this scale are merged; rows with no models at this scale are
one line with the reason, never a row of empty cells. Table titles are split into what they
measure and the paper's setting (a subtitle). Nothing here computes a statistic.

Imports compare, display and spec (pure string building otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .. import compare as cmp
from ..display.numbers import MISSING, fmt, signed_percent
from ..display.tables import (
    METRIC_DIGITS,
    METRIC_LABELS,
    RAN_INSTEAD,
    Table,
    anchor,
    cell,
    ci_text,
    light_cell,
    ran_instead,
    table,
    verdict_cell,
)
from ..spec.settings import RunSettings
from ..spec.study import Study
from .provenance import human_source


def _reported_text(value: Any) -> str:
    """A reported value with its ± when given: ``0.26 ± 0.02``."""
    if value is None:
        return MISSING
    if value.pm is not None:
        return f"{value.value:g} ± {value.pm:g}"
    return f"{value.value:g}"


def _metric_columns(t: cmp.VariabilityTableResult) -> list[str]:
    return [c for c in t.columns if c not in cmp.REDUCTION_COLUMNS]


def not_applicable(rows: Sequence[cmp.VariabilityRow]) -> str:
    """One line for the rows of a table that have no models at this scale, with the reason."""
    gone = [r for r in rows if not r.n_models]
    if not gone:
        return ""
    no_runs = [r.row for r in gone if not r.n_runs]
    no_view = [r for r in gone if r.n_runs and len(r.missing) >= r.n_runs]
    other = [r for r in gone if r.n_runs and len(r.missing) < r.n_runs]
    parts = []
    if no_runs:
        exps = sorted({r.experiment for r in gone if not r.n_runs})
        parts.append(f"{', '.join(no_runs)}: experiment {', '.join(exps)} does not run at this scale")
    if no_view:
        views = ", ".join(dict.fromkeys(r.view for r in no_view))
        parts.append(
            f"{', '.join(r.row for r in no_view)}: these runs store no predictions for {views} "
            "at this scale (the scale's settings do not compute them)"
        )
    if other:
        parts.append("; ".join(f"{r.row}: {r.why}" for r in other))
    return "Not at this scale — " + "; ".join(parts) + "."


def _same_numbers(a: cmp.VariabilityRow, b: cmp.VariabilityRow) -> bool:
    return (a.experiment, a.view, a.n_models, a.n_runs) == (b.experiment, b.view, b.n_models, b.n_runs) and {
        k: (v or {}).get("value") for k, v in a.metrics.items()
    } == {k: (v or {}).get("value") for k, v in b.metrics.items()}


def merged_rows(rows: Sequence[cmp.VariabilityRow]) -> list[tuple[list[str], cmp.VariabilityRow]]:
    """Rows with models, rows that select the same models at this scale merged (e.g. the first 25,
    50, 75 and 100 of 20 models): (their names, the first of them)."""
    out: list[tuple[list[str], cmp.VariabilityRow]] = []
    for r in rows:
        if not r.n_models:
            continue
        if out and _same_numbers(out[-1][1], r):
            out[-1][0].append(r.row)
        else:
            out.append(([r.row], r))
    return out


def _row_name(names: list[str], r: cmp.VariabilityRow, extra: str = "") -> str:
    label = " = ".join(names) if len(names) < 5 else f"{names[0]} … {names[-1]} ({len(names)} rows)"
    if r.label and r.label != r.row and len(names) == 1:
        label = f"{r.label} ({r.row})"
    return label + (f" ({extra})" if extra else "")


def claim_sets(
    study: Study, comparison: cmp.Comparison, decl: Any, table_rows: Sequence[cmp.VariabilityRow] = ()
) -> list[dict[str, Any]]:
    """The model sets claims citing this table (their ``source`` names its ``where``) used that
    are not rows of it (by name, or by the same numbers): ``{"name", "claim", "n_models", "values":
    metric → value}``."""
    known = [{k: (v or {}).get("value") for k, v in r.metrics.items()} for r in table_rows]
    if not decl.where:
        return []
    cites = re.compile(rf"\b{re.escape(decl.where)}\b")
    claims = {c.id: c for c in study.claims}
    rows = {str(r) for r in (getattr(decl.layout, "rows", None) or {})}
    out, seen = [], set()
    for res in comparison.claims:
        claim = claims.get(res.id)
        if claim is None or not cites.search(getattr(claim, "source", "") or ""):
            continue
        for g in (res.evidence or {}).get("groups", []):
            values = {c["metric"]: c.get("value_group") for c in g.get("comparisons", [])} or g.get("values") or {}
            name = g.get("group")
            if not values or name in rows or name in seen:
                continue
            if any(all(k.get(m) == v for m, v in values.items()) for k in known):
                continue  # the same models as a row of the table
            seen.add(name)
            out.append({"name": name, "claim": res.id, "n_models": g.get("n_models"), "values": values})
    return out


def _source_metric_table(
    t: cmp.VariabilityTableResult, decl: Any, epochs: dict[str, str], extra: Sequence[dict[str, Any]] = ()
) -> Table:
    """Model set × metric: reproduced value [95 % CI] and, beside it, the reported value (only
    columns the study reports); rows without models are left to :func:`not_applicable`."""
    columns = _metric_columns(t)
    reported_cols = {c for c in columns if any(decl.value(r.row, c) is not None for r in t.rows)}
    headers = ["model set", "models here"]
    if epochs:
        headers.append("epochs here")
    for c in columns:
        headers.append(f"{METRIC_LABELS.get(c, c)} [95% CI]")
        if c in reported_cols:
            headers.append("reported")
    rows = []
    for names, r in merged_rows(t.rows):
        line = [cell(_row_name(names, r)), cell(_models_text(r))]
        if epochs:
            line.append(cell(epochs.get(r.row, MISSING)))
        for c in columns:
            line.append(cell(ci_text(r.metrics.get(c), METRIC_DIGITS.get(c, 3))))
            if c in reported_cols:
                line.append(cell(" / ".join(dict.fromkeys(_reported_text(decl.value(n, c)) for n in names))))
        rows.append(line)
    for x in extra:  # the sets a claim on this table used: values without a CI (the claim has r's CIs)
        line = [cell(f"{x['name']} (used by claim {x['claim']})"), cell(str(x["n_models"]))]
        if epochs:
            line.append(cell(MISSING))
        for c in columns:
            line.append(cell(fmt(x["values"].get(c), METRIC_DIGITS.get(c, 3))))
            if c in reported_cols:
                line.append(cell(MISSING))
        rows.append(line)
    return table(headers, rows)


def _models_text(r: cmp.VariabilityRow) -> str:
    return str(r.n_models) if r.n_models == r.n_runs else f"{r.n_models} of {r.n_runs}"


def _reduction_table(t: cmp.VariabilityTableResult, decl: Any) -> Table | None:
    """Reduction % against the reference row, both formulas side by side, each labelled (rows
    without models are left out; None when no row has a reduction)."""
    rows = []
    for names, r in merged_rows(t.rows):
        if r.row == t.reference or not r.reductions:
            continue
        line = [_row_name(names, r)]
        for kind, column in (("original", "reduction_original"), ("recalculated", "reduction_recalculated")):
            line += [ci_text((r.reductions or {}).get(kind), 1), _reported_text(decl.value(r.row, column))]
        rows.append(line)
    if not rows:
        return None
    return table(
        [
            "model set",
            "original paper's formula [95% CI]",
            "reported",
            "reproduction's recalculation [95% CI]",
            "reported",
        ],
        rows,
    )


def _variability_cells_table(t: cmp.VariabilityTableResult) -> Table:
    rows = [
        [
            f"{c.row} / {METRIC_LABELS.get(c.column, c.column)}",
            ci_text(c.to_dict(), METRIC_DIGITS.get(c.column, 3)),
            fmt(c.reported, METRIC_DIGITS.get(c.column, 3))
            + (f" ± {c.reported_pm:g}" if c.reported_pm is not None else ""),
            signed_percent(c.rel_error),
            light_cell(c.light),
            verdict_cell(c.verdict),
            c.note,
        ]
        for c in t.cells
    ]
    return table(["cell", "reproduced [CI]", "reported", "rel. error", "light", "verdict", "note"], rows)


def _row_epochs(study: Study, t: cmp.VariabilityTableResult, records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Epochs of each row's runs when they differ between rows (e.g. a training-length table)."""
    decl = study.table(t.table)
    layout_rows = getattr(decl.layout, "rows", None) or {}
    out = {}
    for r in t.rows:
        ms = layout_rows.get(r.row)
        where = dict(getattr(ms, "where", None) or {}) if ms is not None else {}
        vals = sorted(
            {
                str(s.engine.epochs if (s := RunSettings.of_record(rec)) is not None and s.has("epochs") else None)
                for rec in records
                if (rec.get("spec") or {}).get("experiment") == r.experiment
                and all(str((rec["spec"].get("variant") or {}).get(k)) == str(v) for k, v in where.items())
            }
        )
        if vals:
            out[r.row] = "/".join(vals)
    return out if len(set(out.values())) > 1 else {}


def variability_views(
    study: Study, comparison: cmp.Comparison, figures: dict[str, str], records: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One view per variability table: metric table, reduction table, judged cells, figure; rows
    that do not apply at this scale in one line."""
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.variability:
        decl = study.table(t.table)
        has_reduction = bool(t.reference) or any(c in cmp.REDUCTION_COLUMNS for c in t.columns)
        judged = sum(c.verdict != cmp.NOT_EVALUATED for c in t.cells)
        any_models = any(r.n_models for r in t.rows)
        heading, paper_setting = split_title(t.title)
        per_row = sorted({r.n_models for r in t.rows if r.n_models})
        out.append(
            {
                "id": t.table,
                "anchor": anchor("table", t.table),
                "title": heading,
                "paper_setting": paper_setting,
                "source_title": t.title,
                "models_per_row": "–".join(str(n) for n in (per_row[0], per_row[-1]) if per_row)
                if len(per_row) > 1
                else (str(per_row[0]) if per_row else "0"),
                "where": human_source(decl.where),
                "document": docs.get(decl.document, decl.document),
                "reported_scale": t.reported_scale,
                "reported_dataset": t.reported_dataset or "the paper data",
                "comparable": t.comparable,
                "not_comparable": ""
                if t.comparable
                else ran_instead(c.note for c in t.cells)
                or f"{RAN_INSTEAD}{comparison.scale} scale on {comparison.dataset or 'unknown data'}",
                "note": t.note,
                "not_applicable": not_applicable(t.rows),
                "table": _source_metric_table(
                    t, decl, _row_epochs(study, t, records), claim_sets(study, comparison, decl, t.rows)
                )
                if _metric_columns(t) and any_models
                else None,
                "reduction": _reduction_table(t, decl) if has_reduction and any_models else None,
                "reference": t.reference or "",
                "cells": _variability_cells_table(t) if t.comparable and t.cells else None,
                "evaluated": f"{judged} of {len(t.cells)} reported cells judged",
                "figure": figures.get(f"variability:{t.table}"),
            }
        )
    return out


def split_title(title: str) -> tuple[str, str]:
    """A table or study title as (what it measures, the paper's setting): the setting is the
    parenthesised or dash-separated tail (``… (ResNet-14, CIFAR-10, 100 models per row)``)."""
    if title.endswith(")") and " (" in title:
        head, _, tail = title[:-1].rpartition(" (")
        if "(" not in tail:
            return head.strip(), tail.strip()
    head, sep, tail = title.partition(" — ")
    if sep:
        return head.strip(), tail.strip()
    return title, ""


def kernels_note(study: Study, records: Sequence[dict[str, Any]]) -> str | None:
    """A warning when the study varies kernel determinism but the runs ran on CPU.

    The ``kernels`` source of nondeterminism (cuDNN autotuning and atomics, Summers & Dinneen's
    "cuDNN" row) exists only on GPUs: PyTorch's CPU kernels give the same result run after run at
    a fixed thread count, so on CPU an experiment that asks for nondeterministic kernels measures
    the other sources only.

    Returns:
        The note, or None when kernels do not vary across experiments or no run ran on CPU.
    """
    kinds = {(e.randomness or study.randomness).kernels for e in study.experiments}
    cpu = [r for r in records if (r.get("env") or {}).get("device") == "cpu"]
    if len(kinds) < 2 or not cpu:
        return None
    asked = sorted({str((r.get("spec") or {}).get("experiment")) for r in cpu if _kernels_of(r) == "nondeterministic"})
    which = f"; experiments asking for nondeterministic kernels: {', '.join(asked)}" if asked else ""
    return (
        f"The study varies kernel determinism across experiments (randomness.kernels), but "
        f"{len(cpu)} of {len(records)} runs ran on CPU (env.device = cpu{which}). On CPU, "
        "PyTorch's kernels are deterministic (at a fixed thread count), so the 'kernels' "
        "source adds no variability there: those experiments measure their other sources only."
    )


def _kernels_of(record: dict[str, Any]) -> str | None:
    spec_kernels = (record.get("spec") or {}).get("kernels")
    flags = (record.get("env") or {}).get("determinism") or {}
    return spec_kernels or (flags.get("kernels") if isinstance(flags, dict) else None)
