"""What a report says, as data: ``results.json`` and the view model both renderers lay out.

Everything here is pure: it turns a study, its :class:`restudy.compare.Comparison`, the run records
and the plan information into dicts of numbers and preformatted strings. ``markdown.py`` and
``html.py`` only arrange them, so both formats always say the same thing.

A table in the view model is ``{"headers": [str], "rows": [[cell]]}`` where a cell is
``{"text": str, "cls": str}``; ``cls`` names a style: ``verdict <verdict>``, ``light <colour>`` or
``assumed`` (a hyperparameter whose value was assumed, not found in the paper, code or authors).

Imports compare, record, study (no torch, no matplotlib).
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from .. import compare as cmp
from ..record import row as record_row
from ..study import BeatsClaim, Study, ThresholdClaim, TrendClaim, VariabilityClaim

VERDICT_TEXT = {"reproduced": "reproduced", "not_reproduced": "not reproduced",
                "inconclusive": "inconclusive", "not_evaluated": "not evaluated"}
LIGHT_TEXT = {"black": "within 10%", "green": "better by >10%", "red": "worse by >10%",
              "gray": "n/a"}
ENV_KEYS = (("python", "Python"), ("torch", "torch"), ("numpy", "numpy"), ("restudy", "restudy"),
            ("platform", "platform"), ("cpu", "CPU"), ("cpu_count", "CPU cores"),
            ("threads", "threads per run"), ("device", "device"), ("gpu", "GPU"),
            ("cuda", "CUDA"), ("cudnn", "cuDNN"), ("mkl", "MKL"),
            ("determinism", "determinism flags"), ("memory_format", "memory format"),
            ("fingerprint", "environment fingerprint"))
MAX_LISTED = 8
METRIC_LABELS = {"sd_accuracy": "SD accuracy (%)", "sd_cross_entropy": "SD cross-entropy",
                 "disagreement": "pairwise disagreement (%)",
                 "correlation": "pairwise corr. (Spearman)",
                 "correlation_spearman": "pairwise corr. (Spearman)",
                 "correlation_pearson": "pairwise corr. (Pearson)",
                 "ensemble_gain": "ensemble Δ accuracy (%)", "ensemble_gain_ce": "ensemble Δ CE",
                 "reduction_original": "reduction % (original paper's formula)",
                 "reduction_recalculated": "reduction % (reproduction's recalculation)",
                 "cka": "pairwise linear CKA (assumed variant)"}
METRIC_DIGITS = {"sd_accuracy": 3, "sd_cross_entropy": 4, "disagreement": 2, "correlation": 3,
                 "correlation_spearman": 3, "correlation_pearson": 3, "ensemble_gain": 2,
                 "ensemble_gain_ce": 4, "reduction_original": 1, "reduction_recalculated": 1,
                 "cka": 3}
Cell = dict[str, str]
Table = dict[str, Any]


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------


def fnum(x: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or an en dash when missing or not finite."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}f}"


def fp(p: Any) -> str:
    """A p-value as ``p=0.012`` or ``p<0.001``."""
    if not isinstance(p, (int, float)) or not math.isfinite(p):
        return "p=–"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def mean_sd_n(mean: Any, sd: Any, n: int) -> str:
    """``mean ± SD (n)``; ``mean (1)`` for one run; an en dash for none."""
    if not n:
        return "–"
    if n == 1 or sd is None or (isinstance(sd, float) and not math.isfinite(sd)):
        return f"{fnum(mean)} ({n})"
    return f"{fnum(mean)} ± {fnum(sd)} ({n})"


def duration(seconds: Any) -> str:
    """Seconds as ``1h 02m``, ``3m 05s`` or ``12.3 s``."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def value_text(v: Any) -> str:
    """A setting's value as compact text (JSON for lists and maps)."""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def cell(text: Any, cls: str = "") -> Cell:
    """One table cell."""
    return {"text": str(text), "cls": cls}


def verdict_cell(verdict: str) -> Cell:
    """A verdict as a styled cell."""
    return cell(VERDICT_TEXT.get(verdict, verdict), f"verdict {verdict}")


def light_cell(light: str) -> Cell:
    """A traffic light as a styled cell."""
    return cell(f"{light} ({LIGHT_TEXT.get(light, '')})", f"light {light}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]]) -> Table:
    """A table of cells (plain strings become unstyled cells)."""
    return {"headers": list(headers),
            "rows": [[c if isinstance(c, dict) else cell(c) for c in r] for r in rows]}


def _listing(values: Sequence[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", … (+{len(values) - limit} more)" if len(values) > limit else "")


# --------------------------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------------------------


def _run_entry(rec: dict[str, Any]) -> dict[str, Any]:
    r = record_row(rec)
    m = r["metrics"] or {}
    return {"id": r["key"], "experiment": r["experiment"], "variant": r["variant"],
            "seed_index": r["seed_index"], "status": r["status"],
            "train_acc": m.get("train_acc"), "test_acc": m.get("test_acc"), "wall_s": r["wall_s"],
            "variant_id": r["variant_id"], "scale": r["scale"], "dataset": r["dataset"],
            "reason": r["reason"], "env_fingerprint": r["env_fingerprint"]}


def _claim_entry(c: cmp.ClaimResult) -> dict[str, Any]:
    d = c.to_dict()
    return {"id": d["id"], "statement": d["statement"], "verdict": d["verdict"],
            "evidence": d["evidence"], "summary": d["summary"], "kind": d["kind"],
            "metric": d["metric"], "seeds_needed": d["seeds_needed"],
            "scale_note": d["scale_note"]}


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


def build_results(study: Study, scale: str, comparison: cmp.Comparison,
                  records: Sequence[dict[str, Any]], env: dict[str, Any],
                  plan_info: dict[str, Any]) -> dict[str, Any]:
    """The content of ``results.json``.

    Keys ``study, scale, dataset, env, claims [id, statement, verdict, evidence], cells [table, row,
    column, reported, mean, sd, n, rel_error], runs [id, experiment, variant, seed_index, status,
    train_acc, test_acc, wall_s]`` are fixed; more keys are added after them, among them
    ``variability`` (one entry per row of each variability table: metric → value, CI, SE;
    reductions; reported cells with verdicts).
    """
    comp = comparison.to_dict()
    return {
        "study": study.id, "scale": scale, "dataset": comparison.dataset, "env": env,
        "claims": [_claim_entry(c) for c in comparison.claims],
        "cells": [_cell_entry(c) for c in comparison.cells],
        "runs": [_run_entry(r) for r in records],
        "title": study.title, "paper": study.paper.model_dump(),
        "verdict_counts": comparison.verdict_counts(), "tables": comp["tables"],
        "groups": comp["groups"],
        "variability": _variability_entries(comparison),
        "plan": {k: plan_info.get(k) for k in ("scale_description", "deviations",
                                               "reused_env_mismatch", "wall_s_total", "workers",
                                               "command")},
    }


# --------------------------------------------------------------------------------------------
# view model: header, verdicts, claims
# --------------------------------------------------------------------------------------------


def _banner(scale: str, dataset: str) -> tuple[str, str | None]:
    banner = f"All numbers below come from {scale} scale runs on {dataset or 'unknown data'}."
    if scale == "paper":
        return banner, None
    warning = (f"This is a {scale}-scale study: its numbers are not comparable to the paper's. "
               "Numeric values reported in the paper are compared only at paper scale; here they "
               "are shown for information and get no verdict. Claims about directions (a beats b, "
               "trends, thresholds) are tested on these runs.")
    return banner, warning


def _verdict_table(comparison: cmp.Comparison) -> Table:
    rows = [[cell(f"{c.id}: {c.statement}"), verdict_cell(c.verdict), cell(c.summary)]
            for c in comparison.claims]
    return table(["claim", "verdict", "summary"], rows)


def _beats_lines(ev: dict[str, Any]) -> list[str]:
    lines = [f"α = {fnum(ev.get('alpha_per_comparison'), 4)} per comparison "
             f"({ev.get('correction', '')}); one-sided tests, CI at 1 − 2α."]
    for comp in ev.get("comparisons", []):
        line = f"{VERDICT_TEXT.get(comp['verdict'], comp['verdict'])}: {comp['sentence']}"
        if comp.get("fallback"):
            line += f"; {comp['fallback']}"
        elif "by" in comp:
            line += (f"; paired by {', '.join(comp['by'])}, unpaired runs: "
                     f"{comp.get('unpaired_a', 0)} (a) / {comp.get('unpaired_b', 0)} (b)")
        if comp.get("wilcoxon_p") is not None:
            line += f"; Wilcoxon {fp(comp['wilcoxon_p'])}"
        if comp.get("seeds_note"):
            line += f"; {comp['seeds_note']}"
        lines.append(line)
    return lines


def _trend_lines(ev: dict[str, Any]) -> tuple[list[str], Table | None]:
    lines = [f"Values: {ev.get('values', 'per run')}"
             + (f", paired by {', '.join(ev['by'])}" if ev.get("by") else "") + "."]
    if ev.get("r") is not None:
        lines.append(f"Pearson r = {fnum(ev['r'], 3)}; CI level {fnum(ev.get('confidence'), 2)}.")
    levels = ev.get("levels") or []
    tab = table(["level", "mean", "n"], [[fnum(lv["x"], 3).rstrip("0").rstrip("."),
                                          fnum(lv["mean"]), str(lv["n"])] for lv in levels])
    return lines, (tab if levels else None)


def _numeric_table(cells: Sequence[dict[str, Any]]) -> Table:
    rows = [[f"{c['table']}: {c['row']} / {c['column']}", mean_sd_n(c["mean"], c["sd"], c["n"]),
             f"[{fnum(c['ci_low'])}, {fnum(c['ci_high'])}]", fnum(c["reported"]),
             _rel(c["rel_error"]), light_cell(c["light"]), verdict_cell(c["verdict"]), c["note"]]
            for c in cells]
    return table(["cell", "reproduced mean ± SD (n)", "CI", "reported", "rel. error", "light",
                  "verdict", "note"], rows)


def _variability_claim_lines(ev: dict[str, Any]) -> tuple[list[str], Table | None]:
    """Evidence of a variability claim: how it was judged, per group; ratios per metric."""
    relation = ev.get("relation")
    lines = [_RELATION_TEXT.get(relation, "").format(
        band=f"[{fnum((ev.get('band') or [0, 0])[0], 2)}, {fnum((ev.get('band') or [0, 0])[1], 2)}]",
        conf=cmp.pct(ev.get("confidence") or 0.95), resamples=ev.get("resamples"),
        correction=ev.get("correction", ""))]
    for s in ev.get("sets", []):
        extra = f"; {len(s['missing'])} without stored predictions" if s.get("missing") else ""
        if s.get("nonfinite"):
            extra += f"; {len(s['nonfinite'])} with non-finite logits left out"
        lines.append(f"Set {s['name']}: {s['n_models']} models of {s['n_runs']} usable runs{extra}"
                     + (f" — {s['why']}" if s.get("why") else ""))
    for g in ev.get("groups", []):
        paired = " (same runs as the reference: resampled jointly)" \
            if g.get("paired_with_reference") else ""
        lines.append(f"{VERDICT_TEXT.get(g['verdict'], g['verdict'])}: {g['sentence']}{paired}")
    rows = [[g["group"], METRIC_LABELS.get(c["metric"], c["metric"]),
             fnum(c["value_group"], METRIC_DIGITS.get(c["metric"], 3)),
             fnum(c["value_reference"], METRIC_DIGITS.get(c["metric"], 3)), fnum(c["ratio"]),
             f"[{fnum(c['ci_low'])}, {fnum(c['ci_high'])}]", verdict_cell(c["verdict"])]
            for g in ev.get("groups", []) for c in g.get("comparisons", [])]
    tab = table(["group", "metric", "group value", "reference value", "ratio r of V",
                 f"{cmp.pct(ev.get('confidence') or 0.95)} CI of r", "verdict"], rows)
    return lines, (tab if rows else None)


_RELATION_TEXT = {
    "zero": ("Relation zero: every metric must show exactly no variability (SDs 0, disagreement "
             "0, correlation 1, ensemble Δ 0) over at least 2 models; no statistics needed."),
    "comparable": ("Relation comparable: r = V_group / V_reference (V = 1 − correlation for the "
                   "correlation); reproduced when every {conf} bootstrap CI of r (over models, "
                   "{resamples} resamples, {correction}) lies inside {band}, not reproduced when "
                   "one lies entirely outside."),
    "lower": ("Relation lower: r = V_group / V_reference (V = 1 − correlation for the correlation); "
              "reproduced when every {conf} bootstrap CI of r (over models, {resamples} resamples, "
              "{correction}) lies below 1, not reproduced when one lies entirely above 1."),
}


def _rel(x: Any) -> str:
    return "–" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:+.1%}"


def _claim_view(claim: Any, result: cmp.ClaimResult, figure: str | None) -> dict[str, Any]:
    ev = result.evidence
    lines: list[str] = []
    tab: Table | None = None
    if isinstance(claim, BeatsClaim):
        lines = _beats_lines(ev)
    elif isinstance(claim, TrendClaim):
        lines, tab = _trend_lines(ev)
    elif isinstance(claim, ThresholdClaim):
        lines = [f"Failed runs (excluded): {ev.get('n_failed', 0)}."]
        if ev.get("note"):
            lines.append(ev["note"])
    elif isinstance(claim, VariabilityClaim):
        lines, tab = _variability_claim_lines(ev)
    elif ev.get("cells"):
        tab = _numeric_table(ev["cells"])
    if result.seeds_needed and isinstance(claim, VariabilityClaim):
        lines.append(f"Models per set likely to decide (estimate: CI width ∝ 1/√M at the "
                     f"observed ratios): {result.seeds_needed}.")
    elif result.seeds_needed:
        lines.append(f"Seeds needed to decide (80% power at the observed effect): "
                     f"{result.seeds_needed}.")
    return {"id": result.id, "statement": result.statement, "kind": result.kind,
            "metric": result.metric, "verdict": result.verdict,
            "verdict_text": VERDICT_TEXT.get(result.verdict, result.verdict),
            "summary": result.summary, "scale_note": result.scale_note,
            "source": getattr(claim, "source", ""), "lines": [ln for ln in lines if ln and ln.strip()],
            "table": tab, "figure": figure}


# --------------------------------------------------------------------------------------------
# view model: tables, groups, hyperparameters, environment, cost
# --------------------------------------------------------------------------------------------


def _reported_views(study: Study, comparison: cmp.Comparison) -> list[dict[str, Any]]:
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.tables:
        decl = study.table(t.table)
        cells = [c.to_dict() for c in comparison.cells if c.table == t.table]
        out.append({"id": t.table, "title": t.title, "where": decl.where,
                    "document": docs.get(decl.document, decl.document),
                    "reported_scale": t.reported_scale,
                    "reported_dataset": t.reported_dataset or "the paper data",
                    "comparable": t.comparable, "note": t.note,
                    "msd": f"{fnum(t.msd, 3)} ({decl.unit or 'units'}²) over cells with runs",
                    "evaluated": f"{t.n_evaluated} of {t.n_cells} cells evaluated",
                    "table": _numeric_table(cells)})
    return out


def _ci_text(entry: dict[str, Any] | None, digits: int) -> str:
    """``value [low, high]``, or the value alone without a CI, or an en dash."""
    if not entry or not isinstance(entry.get("value"), (int, float)):
        return "–"
    text = fnum(entry["value"], digits)
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and \
            math.isfinite(lo) and math.isfinite(hi):
        text += f" [{fnum(lo, digits)}, {fnum(hi, digits)}]"
    return text


def _reported_text(value: Any) -> str:
    """A reported value with its ± when given: ``0.26 ± 0.02``."""
    if value is None:
        return "–"
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
            line.append(cell(_ci_text(r.metrics.get(c), METRIC_DIGITS.get(c, 3))))
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
        for kind, column in (("original", "reduction_original"),
                             ("recalculated", "reduction_recalculated")):
            line += [_ci_text((r.reductions or {}).get(kind), 1),
                     _reported_text(decl.value(r.row, column))]
        rows.append(line)
    return table(["model set", "original paper's formula [95% CI]", "reported",
                  "reproduction's recalculation [95% CI]", "reported"], rows)


def _variability_cells_table(t: cmp.VariabilityTableResult) -> Table:
    rows = [[f"{c.row} / {METRIC_LABELS.get(c.column, c.column)}",
             _ci_text(c.to_dict(), METRIC_DIGITS.get(c.column, 3)),
             fnum(c.reported, METRIC_DIGITS.get(c.column, 3)) +
             (f" ± {c.reported_pm:g}" if c.reported_pm is not None else ""),
             _rel(c.rel_error), light_cell(c.light), verdict_cell(c.verdict), c.note]
            for c in t.cells]
    return table(["cell", "reproduced [CI]", "reported", "rel. error", "light", "verdict", "note"],
                 rows)


def _variability_views(study: Study, comparison: cmp.Comparison,
                       figures: dict[str, str]) -> list[dict[str, Any]]:
    """One view per variability table: metric table, reduction table, judged cells, figure."""
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in comparison.variability:
        decl = study.table(t.table)
        has_reduction = bool(t.reference) or any(c in cmp.REDUCTION_COLUMNS for c in t.columns)
        judged = sum(c.verdict != cmp.NOT_EVALUATED for c in t.cells)
        out.append({
            "id": t.table, "title": t.title, "where": decl.where,
            "document": docs.get(decl.document, decl.document),
            "reported_scale": t.reported_scale,
            "reported_dataset": t.reported_dataset or "the paper data",
            "comparable": t.comparable, "note": t.note,
            "table": _source_metric_table(t, decl) if _metric_columns(t) else None,
            "reduction": _reduction_table(t, decl) if has_reduction else None,
            "reference": t.reference or "",
            "cells": _variability_cells_table(t) if t.comparable and t.cells else None,
            "evaluated": f"{judged} of {len(t.cells)} reported cells judged",
            "figure": figures.get(f"variability:{t.table}")})
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
    asked = sorted({str((r.get("spec") or {}).get("experiment")) for r in cpu
                    if _kernels_of(r) == "nondeterministic"})
    which = f"; experiments asking for nondeterministic kernels: {', '.join(asked)}" if asked else ""
    return (f"The study varies kernel determinism across experiments (randomness.kernels), but "
            f"{len(cpu)} of {len(records)} runs ran on CPU (env.device = cpu{which}). On CPU, "
            "PyTorch's kernels are deterministic (at a fixed thread count), so the 'kernels' "
            "source adds no variability there: those experiments measure their other sources only.")


def _kernels_of(record: dict[str, Any]) -> str | None:
    spec_kernels = (record.get("spec") or {}).get("kernels")
    flags = (record.get("env") or {}).get("determinism") or {}
    return spec_kernels or (flags.get("kernels") if isinstance(flags, dict) else None)


def _groups_table(comparison: cmp.Comparison) -> Table:
    rows = []
    for g in comparison.groups:
        te, tr, w = (g.metrics.get(k, {}) for k in ("test_acc", "train_acc", "wall_s"))
        rows.append([g.experiment, g.variant_id, mean_sd_n(te.get("mean"), te.get("sd"), te.get("n", 0)),
                     mean_sd_n(tr.get("mean"), tr.get("sd"), tr.get("n", 0)),
                     str(g.n_finished), str(g.n_diverged), str(g.n_failed),
                     duration(w.get("mean"))])
    return table(["experiment", "variant", "test acc % mean ± SD (n)", "train acc % mean ± SD (n)",
                  "finished", "diverged", "failed", "wall time per run"], rows)


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
        rows = [[r, *[("" if (v := t.value(r, c)) is None else f"{v.value:g}") for c in t.columns]]
                for r in t.rows]
        out.append({"title": t.title, "where": t.where, "document": docs.get(t.document, t.document),
                    "metric": str(t.metric), "table": table([str(t.metric) or "", *t.columns], rows)})
    return out


def _hyper_views(settings: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for exp, variants in settings.items():
        names = sorted({n for s in variants.values() for n in s})
        rows = [_setting_row(n, [s[n] for s in variants.values() if n in s]) for n in names]
        n_assumed = sum(r[0]["cls"] == "assumed" for r in rows)
        out.append({"experiment": exp, "n_variants": len(variants), "n_assumed": n_assumed,
                    "table": table(["setting", "value", "provenance", "source"], rows)})
    return out


def _env_table(env: dict[str, Any]) -> Table:
    rows = [[label, value_text(env[k])] for k, label in ENV_KEYS if env.get(k) is not None]
    git = env.get("study_git") or env.get("git")
    if isinstance(git, dict):
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        rows.append(["git", f"{git.get('commit') or '–'}{dirty} in {git.get('repo', '')}".strip()])
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
        lines.append([exp, str(len(runs)), str(status.count("finished")),
                      str(status.count("diverged")), str(status.count("failed")),
                      duration(sum(walls)), duration(sum(walls) / len(walls) if walls else None)])
    total = sum(r["wall_s"] for r in rows if isinstance(r.get("wall_s"), (int, float)))
    return {"table": table(["experiment", "runs", "finished", "diverged", "failed",
                            "run time (sum)", "per run"], lines),
            "runs": len(rows), "run_time": duration(total),
            "elapsed": duration(plan_info.get("wall_s_total")),
            "workers": plan_info.get("workers", "–"), "command": plan_info.get("command", "")}


# --------------------------------------------------------------------------------------------
# the whole view model
# --------------------------------------------------------------------------------------------


def _paper(study: Study) -> dict[str, Any]:
    p = study.paper
    venue = " ".join(x for x in (p.venue, str(p.year) if p.year else "") if x)
    return {"title": p.title, "authors": ", ".join(p.authors), "venue": venue, "url": p.url,
            "code": p.code}


def report_context(study: Study, scale: str, comparison: cmp.Comparison,
                   records: Sequence[dict[str, Any]], env: dict[str, Any],
                   plan_info: dict[str, Any], figures: dict[str, str]) -> dict[str, Any]:
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
        "title": study.title, "study_id": study.id, "paper": _paper(study), "scale": scale,
        "dataset": comparison.dataset or plan_info.get("dataset", ""),
        "scale_description": plan_info.get("scale_description", ""),
        "banner": banner, "scale_warning": warning,
        "verdict_counts": {VERDICT_TEXT[k]: v for k, v in comparison.verdict_counts().items()},
        "verdicts": _verdict_table(comparison),
        "claims": [_claim_view(c, results[c.id], figures.get(f"claim:{c.id}"))
                   for c in study.claims],
        "curves": [{"experiment": e.id, "description": e.description,
                    "figure": figures[f"curves:{e.id}"]}
                   for e in study.experiments if f"curves:{e.id}" in figures],
        "reported": _reported_views(study, comparison),
        "variability": _variability_views(study, comparison, figures),
        "variability_notes": [n for n in (kernels_note(study, records),) if n],
        "has_variability": bool(comparison.variability) or any(
            isinstance(c, VariabilityClaim) for c in study.claims),
        "groups": _groups_table(comparison),
        "hyper": _hyper_views(plan_info.get("settings") or {}),
        "hyper_tables": _hyper_table_views(study),
        "deviations": list(plan_info.get("deviations") or []),
        "environment": _env_table(env),
        "cost": _cost_view(rows, plan_info),
        "reused": list(plan_info.get("reused_env_mismatch") or []),
    }
