"""What a report says, as data: ``results.json`` and the view model both renderers lay out.

Everything here is pure: it turns a study, its :class:`restudy.compare.Comparison`, the run records
and the plan information into dicts of numbers and preformatted strings. ``markdown.py`` and
``html.py`` only arrange them, so both formats always say the same thing.

Tables and cells are those of :mod:`restudy.display.tables` (``assumed`` marks a hyperparameter
whose value was assumed, not found in the paper, code or authors). A claim's evidence is written by
its kind's ``render`` (:mod:`restudy.claims`), or shown by a default rendering; nothing here
computes a statistic.

Imports compare, claims, display, storage.record and spec (no torch, no matplotlib).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import compare as cmp
from ..compare.cells import NO_RUNS
from ..compare.leakage import FLAGGED
from ..compare.leakage import RULE as LEAKAGE_RULE
from ..compare.leakage import summary as leakage_summary
from ..display.numbers import MISSING, fmt
from ..display.tables import (
    VERDICT_TEXT,
    Table,
    anchor,
    cells_table,
    duration,
    flagged_cell,
    mean_sd_n,
    ran_instead,
    table,
    value_text,
)
from ..spec.claim_base import uses_model_sets
from ..spec.study import Study
from ..storage.record import row as record_row
from .coverage import coverage_entries, coverage_view
from .guide import next_steps
from .provenance import describe_runs, documents, human_source, hyper_table_views, settings_views
from .variability import kernels_note, split_title, variability_views
from .verdicts import claim_view, host_note, rules, verdict_table

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
    ("device_notice", "device note"),
    ("gpu", "GPU"),
    ("gpu_count", "GPUs"),
    ("gpu_memory_gib", "GPU memory (GiB)"),
    ("driver", "GPU driver"),
    ("cuda", "CUDA"),
    ("cudnn", "cuDNN"),
    ("gpu_flags", "TF32 and matmul precision"),
    ("runs_per_gpu", "runs sharing a GPU"),
    ("mkl", "MKL"),
    ("determinism", "determinism flags"),
    ("memory_format", "memory format"),
    ("fingerprint", "environment fingerprint"),
)
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
        "stability": d["stability"],
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
    reductions; reported cells with verdicts) and ``leakage`` (the leakage guard's decision per
    reported train/test value, :class:`restudy.compare.LeakageResult`).
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
        "leakage": comp["leakage"],
        "coverage": coverage_entries(study, comparison),
        "plan": {
            k: plan_info.get(k)
            for k in (
                "scale_description",
                "deviations",
                "reused_env_mismatch",
                "wall_s_total",
                "workers",
                "command",
                "estimate",
            )
        },
    }


# --------------------------------------------------------------------------------------------
# view model: header, verdicts, claims
# --------------------------------------------------------------------------------------------


def _banner(scale: str, dataset: str) -> tuple[str, str | None]:
    banner = f"All numbers below come from {scale} scale runs on {dataset or 'unknown data'}."
    if scale == "paper":
        return banner, None
    if scale == "smoke":
        return banner, (
            "This is a smoke-scale run: it checks the pipeline only. No claim gets a verdict from it, "
            "and its numbers say nothing about the paper."
        )
    warning = (
        f"This is a {scale}-scale study: its numbers are not comparable to the paper's. "
        "Numeric values reported in the paper are compared only at paper scale; here they "
        "are shown for information and get no verdict. Claims about directions (a beats b, "
        "trends, thresholds) are tested on these runs."
    )
    return banner, warning


# --------------------------------------------------------------------------------------------
# view model: tables, groups, hyperparameters, environment, cost
# --------------------------------------------------------------------------------------------


def _reported_views(study: Study, comparison: cmp.Comparison) -> list[dict[str, Any]]:
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.tables:
        decl = study.table(t.table)
        cells = [c.to_dict() for c in comparison.cells if c.table == t.table]
        flags = {
            (x.row, x.column): f"looks like a {x.looks_like} number"
            for x in comparison.leakage
            if x.table == t.table and x.status == FLAGGED
        }
        out.append(
            {
                "id": t.table,
                "anchor": anchor("table", t.table),
                "title": split_title(t.title)[0],
                "paper_setting": split_title(t.title)[1],
                "source_title": t.title,
                "where": human_source(decl.where),
                "document": docs.get(decl.document, decl.document),
                "reported_scale": t.reported_scale,
                "reported_dataset": t.reported_dataset or "the paper data",
                "comparable": t.comparable,
                # what ran instead (the end of its cells' one note), said once, in the heading
                "not_comparable": "" if t.comparable else ran_instead(c.get("note") or "" for c in cells),
                "note": t.note,
                "remark": decl.note,
                "stand_in": _stand_in_note(decl, t.scale),
                "msd": f"{fmt(t.msd, 3)} ({decl.unit or 'units'}²) over cells with runs",
                "evaluated": f"{t.n_evaluated} of {t.n_cells} cells evaluated",
                "table": cells_table(cells, flags, decl.squared_deviation, t.comparable),
                "criterion": decl.squared_deviation.reason if decl.squared_deviation else "",
                "ratios": _ratios_table([x for x in comparison.ratios if x.table == t.table]),
                # no cell has runs here: the reported values as the document lays them out, and why
                "reported_only": None if any(c.get("n") for c in cells) else _reported_grid(decl, cells),
            }
        )
    return out


def _stand_in_note(decl: Any, scale: str) -> str:
    """What stands in for the table's rows or columns at ``scale``, and why ('' when nothing does)."""
    sub = getattr(decl.layout, "stand_ins", {}).get(scale)
    if not sub:
        return ""
    pairs = [f"{v} for {k}" for k, v in {**sub.rows, **sub.columns}.items()]
    return (
        f"at {scale} scale, {', '.join(pairs)} ran instead ({sub.reason}); shown beside the reported values, "
        "no verdict."
    )


def _reported_fold(tables: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The heading of the reported tables none of whose cells has runs here, which the report
    folds together after the tables that have (None when every table has runs)."""
    n = sum(1 for t in tables if t["reported_only"])
    if not n:
        return None
    return {
        "anchor": "reported-only",
        "title": f"Reported values with no runs here ({n} of {len(tables)} tables)"
        if n < len(tables)
        else f"Reported values only: no table has runs here ({n} {'tables' if n > 1 else 'table'})",
        "intro": "No cell of these tables selects a run of this invocation (each table says why), so they get "
        "no verdict; their values are listed as the documents report them, for reference.",
        "summary": f"Show the {n} tables" if n > 1 else "Show the table",
    }


def _ratios_table(ratios: list[cmp.ColumnRatio]) -> dict[str, Any] | None:
    """A machine-dependent table's column ratios, measured (per-seed pairs) beside reported."""
    if not ratios:
        return None
    rows = [
        [
            x.row,
            f"{x.column} / {x.base}",
            f"×{fmt(x.measured)}" + (f" [{fmt(x.ci_low)}, {fmt(x.ci_high)}]" if x.n > 1 else ""),
            str(x.n),
            f"×{fmt(x.reported)}" if x.reported == x.reported else MISSING,
        ]
        for x in ratios
    ]
    return table(["row", "ratio", "measured (90% CI over seeds)", "seeds", "reported"], rows)


def _reported_grid(decl: Any, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """A reported table none of whose cells has runs at this scale: its values in the document's
    rows × columns (a cell the document leaves empty: the missing mark), with the one reason."""
    rows = [[r, *(_printed(decl.value(r, c)) for c in decl.columns)] for r in decl.rows]
    notes = (c.get("note") for c in cells if c.get("note"))
    reasons = list(dict.fromkeys("no finished or diverged runs for its cells" if n == NO_RUNS else n for n in notes))
    why = reasons[0] if len(reasons) == 1 else "no runs of this scale select these cells"
    return {"why": why, "table": table(["", *decl.columns], rows)}


def _printed(v: Any) -> str:
    if v is None:
        return MISSING
    text = v.text or fmt(v.value)
    return f"{text} ± {fmt(v.pm)}" if v.pm is not None else text


def _leakage_view(comparison: cmp.Comparison) -> dict[str, Any] | None:
    """The leakage guard's section: its rule, a one-line summary and the flagged values (None when
    no reported table has a train/test metric)."""
    if not comparison.leakage:
        return None
    rows = [
        [
            flagged_cell(f"{x.table}: {x.row} / {x.column}", f"looks like a {x.looks_like} number"),
            x.reported_text or fmt(x.reported),
            mean_sd_n(x.other_mean, x.other_sd, x.n),
            mean_sd_n(x.own_mean, x.own_sd, x.n),
            x.note,
        ]
        for x in comparison.leakage
        if x.status == FLAGGED
    ]
    unjudged = [x for x in comparison.leakage if not x.comparable or x.scale == "smoke"]
    scale_note = f"Not judged at this scale: {unjudged[0].note.removeprefix('cannot tell: ')}." if unjudged else ""
    return {
        "rule": LEAKAGE_RULE,
        "summary": leakage_summary(comparison.leakage) + ".",
        "table": table(
            ["reported value", "reported", "other split's metric ± SD (n)", "table's metric ± SD (n)", "why"], rows
        )
        if rows
        else None,
        "scale_note": scale_note,
    }


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
        "estimate": _estimate_text(plan_info.get("estimate")),
    }


def _estimate_text(e: dict[str, Any] | None) -> str:
    """The estimate ``restudy plan`` saved, beside the actual wall time of the runs (or why not)."""
    if not isinstance(e, dict):
        return ""
    if not isinstance(e.get("wall_s"), (int, float)):
        return f"Estimate: {e.get('note') or 'unreadable'}."
    slots = "in one process" if e.get("workers") == 0 else f"{e.get('workers')} worker(s)"
    head = (
        f"Estimated by `restudy plan` ({e.get('planned_at') or 'time unknown'}, {slots}) "
        f"for the {e.get('todo')} runs left: {duration(e['wall_s'])} with the machine's cores free"
    )
    now, factor = e.get("wall_s_now"), e.get("load_factor")
    if isinstance(now, (int, float)) and isinstance(factor, (int, float)) and factor > 1.05:
        head += f", {duration(now)} at its load then (1/{factor:.1f} of a core)"
    if isinstance(e.get("actual_s"), (int, float)) and isinstance(e.get("ratio"), (int, float)):
        at_load = e.get("ratio_at_load")
        also = (
            f" ({at_load:.2f}× the estimate at the load then)"
            if isinstance(at_load, (int, float)) and isinstance(factor, (int, float)) and factor > 1.05
            else ""
        )
        return f"{head}; actual {duration(e['actual_s'])}, {e['ratio']:.2f}× the estimate{also}."
    return f"{head}; {e.get('note') or 'not compared'}."


# --------------------------------------------------------------------------------------------
# the whole view model
# --------------------------------------------------------------------------------------------


def _paper(study: Study) -> dict[str, Any]:
    p = study.paper
    venue = " ".join(x for x in (p.venue, str(p.year) if p.year else "") if x)

    def web(address: str) -> str:  # only http(s) becomes a link, whatever reached the study object
        return address if address.lower().startswith(("http://", "https://")) else ""

    return {"title": p.title, "authors": ", ".join(p.authors), "venue": venue, "url": web(p.url), "code": web(p.code)}


def what_ran(study: Study, scale: str, dataset: str, records: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The report's title from what ran, and the paper's setting as a subtitle."""
    head, setting = split_title(study.title)
    models = describe_runs(records)
    seeds = sorted({n for n in _seeds_per_group(records).values() if n})
    per = f"{seeds[0]}" if len(seeds) == 1 else (f"{seeds[0]}–{seeds[-1]}" if seeds else "0")
    ran = f"{models} on {dataset or 'unknown data'}, {per} seeds per variant, {scale} scale"
    return {"title": f"{head}: {ran}", "head": head, "ran": ran, "paper_setting": setting}


def _seeds_per_group(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for r in records:
        spec = r.get("spec") or {}
        key = (str(spec.get("experiment")), cmp.variant_label(spec.get("variant") or {}))
        out[key] = out.get(key, 0) + 1
    return out


def _curves_views(study: Study, figures: dict[str, str]) -> list[dict[str, Any]]:
    """One entry per curves figure, listing the experiments it draws (several experiments of one
    variant each share a figure)."""
    views: dict[str, dict[str, Any]] = {}
    for e in study.experiments:
        if (fig := figures.get(f"curves:{e.id}")) is None:
            continue
        view = views.setdefault(fig, {"anchor": anchor("curves", e.id), "figure": fig, "experiments": []})
        view["experiments"].append({"experiment": e.id, "description": e.description})
    for v in views.values():
        v["experiment"] = ", ".join(x["experiment"] for x in v["experiments"])
    return list(views.values())


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
        plan_info: scale description, data set, deviations, settings with provenance (and
            ``paper_settings`` at paper scale), reused runs, elapsed time, workers, command,
            ``paper_data`` (what paper scale reads).
        figures: ``"claim:<id>"`` / ``"curves:<experiment>"`` / ``"variability:<table>"`` →
            figure path relative to the report.

    Returns:
        A dict of strings, numbers and tables, in report order.
    """
    rows = [record_row(r) for r in records]
    dataset = comparison.dataset or plan_info.get("dataset", "")
    banner, warning = _banner(scale, dataset)
    results = {c.id: c for c in comparison.claims}
    seen: set[str] = set()
    ran = what_ran(study, scale, dataset, records)
    # document ids are listed with their titles in the header, before any claim cites them
    claims = [claim_view(c, results[c.id], figures.get(f"claim:{c.id}"), {}, seen) for c in study.claims]
    return {
        "title": ran["title"],
        "what_ran": ran,
        "study_id": study.id,
        "paper": _paper(study),
        "documents": documents(study),
        "scale": scale,
        "dataset": dataset,
        "scale_description": plan_info.get("scale_description", ""),
        "banner": banner,
        "scale_warning": warning,
        "verdict_counts": {VERDICT_TEXT[k]: v for k, v in comparison.verdict_counts().items()},
        "verdicts": verdict_table(comparison),
        "host_note": host_note(env, scale),
        "coverage": coverage_view(study, scale, comparison),
        "claims": claims,
        "curves": _curves_views(study, figures),
        "reported": (reported := _reported_views(study, comparison)),
        "reported_fold": _reported_fold(reported),
        "variability": variability_views(study, comparison, figures, records),
        "leakage": _leakage_view(comparison),
        "variability_notes": [n for n in (kernels_note(study, records),) if n],
        "has_variability": bool(comparison.variability) or any(map(uses_model_sets, study.claims)),
        "rules": rules(study),
        "groups": _groups_table(comparison),
        "settings": settings_views(study, plan_info.get("settings") or {}, plan_info.get("paper_settings")),
        "hyper_tables": hyper_table_views(study),
        "deviations": list(plan_info.get("deviations") or []),
        "environment": _env_table(env),
        "cost": _cost_view(rows, plan_info),
        "reused": list(plan_info.get("reused_env_mismatch") or []),
        "next_steps": next_steps(study, scale, comparison, rows, plan_info),
    }
