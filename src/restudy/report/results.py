"""What a report says, as data: ``results.json`` and the view model both renderers lay out.

Everything here is pure: it turns a study, its :class:`restudy.compare.Comparison`, the run records
and the plan information into dicts of numbers and preformatted strings. ``markdown.py`` and
``html.py`` only arrange them, so both formats always say the same thing.

Tables and cells are those of :mod:`restudy.report.tables` (``assumed`` marks a hyperparameter
whose value was assumed, not found in the paper, code or authors). A claim's evidence is written by
its kind's ``render`` (:mod:`restudy.claims`), or shown by a default rendering; nothing here
computes a statistic.

Imports compare, claims, record, study (no torch, no matplotlib).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import compare as cmp
from ..claims import claim_kind
from ..numbers import MISSING, fmt, signed_percent
from ..record import row as record_row
from ..study import ModelSet, Study
from .tables import (
    METRIC_DIGITS,
    METRIC_LABELS,
    VERDICT_TEXT,
    Cell,
    Table,
    cell,
    cells_table,
    ci_text,
    duration,
    evidence_lines,
    light_cell,
    mean_sd_n,
    seeds_line,
    table,
    value_text,
    verdict_cell,
)

ENV_KEYS = (
    ("python", "Python"),
    ("torch", "torch"),
    ("numpy", "numpy"),
    ("restudy", "restudy"),
    ("platform", "platform"),
    ("cpu", "CPU"),
    ("cpu_count", "CPU cores"),
    ("threads", "threads per run"),
    ("device", "device"),
    ("gpu", "GPU"),
    ("cuda", "CUDA"),
    ("cudnn", "cuDNN"),
    ("mkl", "MKL"),
    ("determinism", "determinism flags"),
    ("memory_format", "memory format"),
    ("fingerprint", "environment fingerprint"),
)
MAX_LISTED = 8


def _listing(values: Sequence[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", … (+{len(values) - limit} more)" if len(values) > limit else "")


# --------------------------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------------------------


def _run_entry(rec: dict[str, Any]) -> dict[str, Any]:
    r = record_row(rec)
    m = r["metrics"] or {}
    return {
        "id": r["key"],
        "experiment": r["experiment"],
        "variant": r["variant"],
        "seed_index": r["seed_index"],
        "status": r["status"],
        "train_acc": m.get("train_acc"),
        "test_acc": m.get("test_acc"),
        "wall_s": r["wall_s"],
        "variant_id": r["variant_id"],
        "scale": r["scale"],
        "dataset": r["dataset"],
        "reason": r["reason"],
        "env_fingerprint": r["env_fingerprint"],
    }


def _claim_entry(c: cmp.ClaimResult) -> dict[str, Any]:
    d = c.to_dict()
    return {
        "id": d["id"],
        "statement": d["statement"],
        "verdict": d["verdict"],
        "evidence": d["evidence"],
        "summary": d["summary"],
        "kind": d["kind"],
        "metric": d["metric"],
        "seeds_needed": d["seeds_needed"],
        "scale_note": d["scale_note"],
    }


def _cell_entry(c: cmp.CellResult) -> dict[str, Any]:
    d = c.to_dict()
    head = {k: d[k] for k in ("table", "row", "column", "reported", "mean", "sd", "n", "rel_error")}
    return {**head, **{k: v for k, v in d.items() if k not in head}}


def _variability_entries(comparison: cmp.Comparison) -> list[dict[str, Any]]:
    """One entry per (variability table, row): the reproduced metrics with their bootstrap CIs,
    the reductions (both formulas) and the reported cells of that row with their verdicts."""
    out = []
    for t in comparison.variability:
        for r in t.rows:
            cells = [c.to_dict() for c in t.cells if c.row == r.row]
            out.append({**r.to_dict(), "comparable": t.comparable, "cells": cells})
    return out


def build_results(
    study: Study,
    scale: str,
    comparison: cmp.Comparison,
    records: Sequence[dict[str, Any]],
    env: dict[str, Any],
    plan_info: dict[str, Any],
) -> dict[str, Any]:
    """The content of ``results.json``.

    Keys ``study, scale, dataset, env, claims [id, statement, verdict, evidence], cells [table, row,
    column, reported, mean, sd, n, rel_error], runs [id, experiment, variant, seed_index, status,
    train_acc, test_acc, wall_s]`` are fixed; more keys are added after them, among them
    ``variability`` (one entry per row of each variability table: metric → value, CI, SE;
    reductions; reported cells with verdicts).
    """
    comp = comparison.to_dict()
    return {
        "study": study.id,
        "scale": scale,
        "dataset": comparison.dataset,
        "env": env,
        "claims": [_claim_entry(c) for c in comparison.claims],
        "cells": [_cell_entry(c) for c in comparison.cells],
        "runs": [_run_entry(r) for r in records],
        "title": study.title,
        "paper": study.paper.model_dump(),
        "verdict_counts": comparison.verdict_counts(),
        "tables": comp["tables"],
        "groups": comp["groups"],
        "variability": _variability_entries(comparison),
        "plan": {
            k: plan_info.get(k)
            for k in ("scale_description", "deviations", "reused_env_mismatch", "wall_s_total", "workers", "command")
        },
    }


# --------------------------------------------------------------------------------------------
# view model: header, verdicts, claims
# --------------------------------------------------------------------------------------------


def _banner(scale: str, dataset: str) -> tuple[str, str | None]:
    banner = f"All numbers below come from {scale} scale runs on {dataset or 'unknown data'}."
    if scale == "paper":
        return banner, None
    warning = (
        f"This is a {scale}-scale study: its numbers are not comparable to the paper's. "
        "Numeric values reported in the paper are compared only at paper scale; here they "
        "are shown for information and get no verdict. Claims about directions (a beats b, "
        "trends, thresholds) are tested on these runs."
    )
    return banner, warning


def _verdict_table(comparison: cmp.Comparison) -> Table:
    rows = [[cell(f"{c.id}: {c.statement}"), verdict_cell(c.verdict), cell(c.summary)] for c in comparison.claims]
    return table(["claim", "verdict", "summary"], rows)


def _claim_view(claim: Any, result: cmp.ClaimResult, figure: str | None) -> dict[str, Any]:
    """A claim's section: its kind renders the evidence (the default shows its top-level numbers)."""
    rendered = claim_kind(claim.kind).render(claim, result) if result.evidence else None
    if rendered is None:
        lines, tab = (evidence_lines(result) if result.evidence else [seeds_line(result)]), None
    else:
        lines, tab = rendered
    return {
        "id": result.id,
        "statement": result.statement,
        "kind": result.kind,
        "metric": result.metric,
        "verdict": result.verdict,
        "verdict_text": VERDICT_TEXT.get(result.verdict, result.verdict),
        "summary": result.summary,
        "scale_note": result.scale_note,
        "source": getattr(claim, "source", ""),
        "lines": [ln for ln in lines if ln and ln.strip()],
        "table": tab,
        "figure": figure,
    }


def _uses_model_sets(claim: Any) -> bool:
    """Whether a claim compares model sets (its variability shows in the variability section)."""
    values = [v for f in type(claim).model_fields for v in (getattr(claim, f),)]
    return any(
        isinstance(v, ModelSet) or (isinstance(v, list) and any(isinstance(x, ModelSet) for x in v)) for v in values
    )


def _rules(study: Study) -> list[str]:
    """How each kind of claim in the study reaches its verdict (its kind's ``rule``)."""
    kinds = dict.fromkeys(c.kind for c in study.claims)
    return [rule for k in kinds if (rule := claim_kind(k).rule)]


# --------------------------------------------------------------------------------------------
# view model: tables, groups, hyperparameters, environment, cost
# --------------------------------------------------------------------------------------------


def _reported_views(study: Study, comparison: cmp.Comparison) -> list[dict[str, Any]]:
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.tables:
        decl = study.table(t.table)
        cells = [c.to_dict() for c in comparison.cells if c.table == t.table]
        out.append(
            {
                "id": t.table,
                "title": t.title,
                "where": decl.where,
                "document": docs.get(decl.document, decl.document),
                "reported_scale": t.reported_scale,
                "reported_dataset": t.reported_dataset or "the paper data",
                "comparable": t.comparable,
                "note": t.note,
                "msd": f"{fmt(t.msd, 3)} ({decl.unit or 'units'}²) over cells with runs",
                "evaluated": f"{t.n_evaluated} of {t.n_cells} cells evaluated",
                "table": cells_table(cells),
            }
        )
    return out


def _reported_text(value: Any) -> str:
    """A reported value with its ± when given: ``0.26 ± 0.02``."""
    if value is None:
        return MISSING
    if value.pm is not None:
        return f"{value.value:g} ± {value.pm:g}"
    return f"{value.value:g}"


def _metric_columns(t: cmp.VariabilityTableResult) -> list[str]:
    return [c for c in t.columns if c not in cmp.REDUCTION_COLUMNS]


def _source_metric_table(t: cmp.VariabilityTableResult, decl: Any) -> Table:
    """Model set × metric: reproduced value [95 % CI] and, beside it, the reported value."""
    columns = _metric_columns(t)
    reported_cols = {c for c in columns if any(decl.value(r.row, c) is not None for r in t.rows)}
    headers = ["model set", "models"]
    for c in columns:
        headers.append(f"{METRIC_LABELS.get(c, c)} [95% CI]")
        if c in reported_cols:
            headers.append("reported")
    rows = []
    for r in t.rows:
        line = [cell(f"{r.label} ({r.row})" if r.label != r.row else r.row), cell(_models_text(r))]
        for c in columns:
            line.append(cell(ci_text(r.metrics.get(c), METRIC_DIGITS.get(c, 3))))
            if c in reported_cols:
                line.append(cell(_reported_text(decl.value(r.row, c))))
        rows.append(line)
    return table(headers, rows)


def _models_text(r: cmp.VariabilityRow) -> str:
    text = f"{r.n_models} of {r.n_runs}"
    return f"{text} ({r.why})" if r.why else text


def _reduction_table(t: cmp.VariabilityTableResult, decl: Any) -> Table:
    """Reduction % against the reference row, both formulas side by side, each labelled."""
    rows = []
    for r in t.rows:
        if r.row == t.reference:
            continue
        line = [r.label if r.label == r.row else f"{r.label} ({r.row})"]
        for kind, column in (("original", "reduction_original"), ("recalculated", "reduction_recalculated")):
            line += [ci_text((r.reductions or {}).get(kind), 1), _reported_text(decl.value(r.row, column))]
        rows.append(line)
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


def _variability_views(study: Study, comparison: cmp.Comparison, figures: dict[str, str]) -> list[dict[str, Any]]:
    """One view per variability table: metric table, reduction table, judged cells, figure."""
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.variability:
        decl = study.table(t.table)
        has_reduction = bool(t.reference) or any(c in cmp.REDUCTION_COLUMNS for c in t.columns)
        judged = sum(c.verdict != cmp.NOT_EVALUATED for c in t.cells)
        out.append(
            {
                "id": t.table,
                "title": t.title,
                "where": decl.where,
                "document": docs.get(decl.document, decl.document),
                "reported_scale": t.reported_scale,
                "reported_dataset": t.reported_dataset or "the paper data",
                "comparable": t.comparable,
                "note": t.note,
                "table": _source_metric_table(t, decl) if _metric_columns(t) else None,
                "reduction": _reduction_table(t, decl) if has_reduction else None,
                "reference": t.reference or "",
                "cells": _variability_cells_table(t) if t.comparable and t.cells else None,
                "evaluated": f"{judged} of {len(t.cells)} reported cells judged",
                "figure": figures.get(f"variability:{t.table}"),
            }
        )
    return out


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


def _groups_table(comparison: cmp.Comparison) -> Table:
    rows = []
    for g in comparison.groups:
        te, tr, w = (g.metrics.get(k, {}) for k in ("test_acc", "train_acc", "wall_s"))
        rows.append(
            [
                g.experiment,
                g.variant_id,
                mean_sd_n(te.get("mean"), te.get("sd"), te.get("n", 0)),
                mean_sd_n(tr.get("mean"), tr.get("sd"), tr.get("n", 0)),
                str(g.n_finished),
                str(g.n_diverged),
                str(g.n_failed),
                duration(w.get("mean")),
            ]
        )
    return table(
        [
            "experiment",
            "variant",
            "test acc % mean ± SD (n)",
            "train acc % mean ± SD (n)",
            "finished",
            "diverged",
            "failed",
            "wall time per run",
        ],
        rows,
    )


def _setting_row(name: str, entries: list[dict[str, Any]]) -> list[Cell]:
    values = list(dict.fromkeys(value_text(e.get("value")) for e in entries))
    provs = list(dict.fromkeys(str(e.get("provenance", "")) for e in entries))
    sources = list(dict.fromkeys(str(e.get("source", "")) for e in entries if e.get("source")))
    assumed = "assumed" in provs
    cls = "assumed" if assumed else ""
    value = values[0] if len(values) == 1 else f"varies: {_listing(values)}"
    prov = provs[0] if len(provs) == 1 else f"varies: {', '.join(provs)}"
    return [cell(name, cls), cell(value, cls), cell(prov, cls), cell(_listing(sources, 3), cls)]


def _hyper_table_views(study: Study) -> list[dict[str, Any]]:
    """Hyperparameter tables a source reports (e.g. a learning-rate grid the authors gave)."""
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in study.tables:
        if t.kind != "hyperparameter":
            continue
        rows = [[r, *[("" if (v := t.value(r, c)) is None else f"{v.value:g}") for c in t.columns]] for r in t.rows]
        out.append(
            {
                "title": t.title,
                "where": t.where,
                "document": docs.get(t.document, t.document),
                "metric": str(t.metric),
                "table": table([str(t.metric) or "", *t.columns], rows),
            }
        )
    return out


def _hyper_views(settings: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for exp, variants in settings.items():
        names = sorted({n for s in variants.values() for n in s})
        rows = [_setting_row(n, [s[n] for s in variants.values() if n in s]) for n in names]
        n_assumed = sum(r[0]["cls"] == "assumed" for r in rows)
        out.append(
            {
                "experiment": exp,
                "n_variants": len(variants),
                "n_assumed": n_assumed,
                "table": table(["setting", "value", "provenance", "source"], rows),
            }
        )
    return out


def _env_table(env: dict[str, Any]) -> Table:
    rows = [[label, value_text(env[k])] for k, label in ENV_KEYS if env.get(k) is not None]
    git = env.get("study_git") or env.get("git")
    if isinstance(git, dict):
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        rows.append(["git", f"{git.get('commit') or MISSING}{dirty} in {git.get('repo', '')}".strip()])
    elif git:
        rows.append(["git", value_text(git)])
    return table(["item", "value"], rows)


def _cost_view(rows: list[dict[str, Any]], plan_info: dict[str, Any]) -> dict[str, Any]:
    by_exp: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_exp.setdefault(r["experiment"], []).append(r)
    lines = []
    for exp, runs in by_exp.items():
        walls = [r["wall_s"] for r in runs if isinstance(r.get("wall_s"), (int, float))]
        status = [r["status"] for r in runs]
        lines.append(
            [
                exp,
                str(len(runs)),
                str(status.count("finished")),
                str(status.count("diverged")),
                str(status.count("failed")),
                duration(sum(walls)),
                duration(sum(walls) / len(walls) if walls else None),
            ]
        )
    total = sum(r["wall_s"] for r in rows if isinstance(r.get("wall_s"), (int, float)))
    return {
        "table": table(["experiment", "runs", "finished", "diverged", "failed", "run time (sum)", "per run"], lines),
        "runs": len(rows),
        "run_time": duration(total),
        "elapsed": duration(plan_info.get("wall_s_total")),
        "workers": plan_info.get("workers", MISSING),
        "command": plan_info.get("command", ""),
    }


# --------------------------------------------------------------------------------------------
# the whole view model
# --------------------------------------------------------------------------------------------


def _paper(study: Study) -> dict[str, Any]:
    p = study.paper
    venue = " ".join(x for x in (p.venue, str(p.year) if p.year else "") if x)
    return {"title": p.title, "authors": ", ".join(p.authors), "venue": venue, "url": p.url, "code": p.code}


def report_context(
    study: Study,
    scale: str,
    comparison: cmp.Comparison,
    records: Sequence[dict[str, Any]],
    env: dict[str, Any],
    plan_info: dict[str, Any],
    figures: dict[str, str],
) -> dict[str, Any]:
    """The view model of a report (see the module docstring for tables and cells).

    Args:
        study: the study.
        scale: the scale of the runs.
        comparison: their comparison.
        records: full run records at that scale.
        env: the environment of this invocation.
        plan_info: scale description, data set, deviations, settings with provenance, reused
            runs, elapsed time, workers and command.
        figures: ``"claim:<id>"`` / ``"curves:<experiment>"`` / ``"variability:<table>"`` →
            figure path relative to the report.

    Returns:
        A dict of strings, numbers and tables, in report order.
    """
    rows = [record_row(r) for r in records]
    banner, warning = _banner(scale, comparison.dataset or plan_info.get("dataset", ""))
    results = {c.id: c for c in comparison.claims}
    return {
        "title": study.title,
        "study_id": study.id,
        "paper": _paper(study),
        "scale": scale,
        "dataset": comparison.dataset or plan_info.get("dataset", ""),
        "scale_description": plan_info.get("scale_description", ""),
        "banner": banner,
        "scale_warning": warning,
        "verdict_counts": {VERDICT_TEXT[k]: v for k, v in comparison.verdict_counts().items()},
        "verdicts": _verdict_table(comparison),
        "claims": [_claim_view(c, results[c.id], figures.get(f"claim:{c.id}")) for c in study.claims],
        "curves": [
            {"experiment": e.id, "description": e.description, "figure": figures[f"curves:{e.id}"]}
            for e in study.experiments
            if f"curves:{e.id}" in figures
        ],
        "reported": _reported_views(study, comparison),
        "variability": _variability_views(study, comparison, figures),
        "variability_notes": [n for n in (kernels_note(study, records),) if n],
        "has_variability": bool(comparison.variability) or any(map(_uses_model_sets, study.claims)),
        "rules": _rules(study),
        "groups": _groups_table(comparison),
        "hyper": _hyper_views(plan_info.get("settings") or {}),
        "hyper_tables": _hyper_table_views(study),
        "deviations": list(plan_info.get("deviations") or []),
        "environment": _env_table(env),
        "cost": _cost_view(rows, plan_info),
        "reused": list(plan_info.get("reused_env_mismatch") or []),
    }
