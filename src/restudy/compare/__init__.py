"""Reproduced versus reported: :func:`compare` turns the runs of one scale into a
:class:`Comparison` — per-variant summaries, table cells, variability tables and one verdict per
claim, each with its evidence.

The package, one concept per module: ``verdicts`` (verdicts and result dataclasses), ``select``
(selecting, grouping, pairing and summarising runs), ``cells`` (numeric cells and result tables),
``ratios`` (per-row column ratios of machine-dependent tables),
``views`` (model-set views → stored tensors), ``leakage`` (reported train/test values that look
like the other split's number), ``modelsets`` (model sets from stored predictions,
:func:`load_predictions`), ``variability`` (variability tables), ``quantifiers`` (claims over
several cells), ``testset`` (the test set's own noise), ``looks`` (α spent over repeated looks),
``stability`` (verdicts re-judged on resampled seeds) and ``context`` (the
:class:`EvaluationContext` an evaluator gets). Claims are judged by their kind's evaluator,
found by name among the registered ``claim`` plug-ins (:mod:`restudy.claims` holds the built-in
kinds); this module only orchestrates. (``results`` is the deprecated name of ``verdicts``.)

A claim is ``not_evaluated`` at smoke scale (smoke checks the pipeline only), when the scale is
not among its ``scales`` (its evaluator is not called) or when no run is selected. A claim whose
runs include runs reused from another environment is ``inconclusive`` with that reason unless
``allow_mixed_env`` is given. A verdict that depends on a setting of provenance ``calibrated``
(chosen after looking at outcomes) says so in its notes and summary.

Imports spec, stats and display (numpy; safetensors to read stored predictions; threadpoolctl,
which scikit-learn brings, to run BLAS on one thread); no torch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from .. import plugins
from ..display.numbers import pct
from ..spec.reported import VariabilityLayout
from ..spec.study import Study
from ..spec.values import Hyper
from .cells import CellRule, cell_rules, cell_runs, evaluate_cell, group_summary, table_cells, table_result
from .context import EvaluationContext, Subset
from .leakage import judge_tables
from .looks import Look, spent_alpha, this_look
from .modelsets import VAR_CONFIDENCE, VAR_RESAMPLES, ModelSets, Predictions, load_predictions, model_set_runs
from .ratios import column_ratios
from .select import (
    Row,
    datasets,
    floor_sd,
    group_rows,
    higher_is_better,
    metric_value,
    n_test_of,
    pair_runs,
    pinned_axes,
    select_runs,
    summarize_runs,
    usable,
    variant_label,
)
from .stability import stability
from .variability import REDUCTION_COLUMNS, variability_cell, variability_table
from .verdicts import (
    INCONCLUSIVE,
    MIN_SEEDS_TO_REJECT,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    POWER,
    REPRODUCED,
    SMOKE_NOTE,
    VERDICTS,
    CellResult,
    ClaimResult,
    ColumnRatio,
    Comparison,
    GroupSummary,
    LeakageResult,
    TableResult,
    VariabilityCell,
    VariabilityRow,
    VariabilityTableResult,
    combine,
)

__all__ = [
    "compare",
    "evaluate_claim",
    "load_predictions",
    "EvaluationContext",
    "Subset",
    "Comparison",
    "ClaimResult",
    "CellResult",
    "GroupSummary",
    "LeakageResult",
    "ColumnRatio",
    "TableResult",
    "VariabilityCell",
    "VariabilityRow",
    "VariabilityTableResult",
    "VERDICTS",
    "REPRODUCED",
    "NOT_REPRODUCED",
    "INCONCLUSIVE",
    "NOT_EVALUATED",
    "POWER",
    "MIN_SEEDS_TO_REJECT",
    "REDUCTION_COLUMNS",
    "VAR_CONFIDENCE",
    "VAR_RESAMPLES",
    "CellRule",
    "ModelSets",
    "Predictions",
    "Row",
    "cell_runs",
    "combine",
    "evaluate_cell",
    "floor_sd",
    "group_rows",
    "higher_is_better",
    "metric_value",
    "model_set_runs",
    "n_test_of",
    "pair_runs",
    "pct",
    "pinned_axes",
    "select_runs",
    "summarize_runs",
    "usable",
    "variability_cell",
    "variant_label",
]

log = logging.getLogger(__name__)


def _experiments(claim: Any) -> list[str]:
    return list(dict.fromkeys(sel.experiment for _, sel in claim.selectors()))


def calibrated_settings(study: Study, scale: str, experiment: str) -> list[str]:
    """The settings of provenance ``calibrated`` that reach ``experiment`` at ``scale``
    (defaults, the experiment's settings, axes and rules, the scale's settings and rules), as
    ``name=value (source)``."""
    found: dict[str, str] = {}

    def scan(settings: Any) -> None:
        for name, h in (settings or {}).items():
            if isinstance(h, Hyper) and h.provenance == "calibrated":
                found.setdefault(name, f"{name}={h.value}" + (f" ({h.source})" if h.source else ""))

    exp = next((e for e in study.experiments if e.id == experiment), None)
    scan(study.defaults)
    if exp is not None:
        scan(exp.settings)
        for axis in exp.axes.values():
            for level in axis.level_names():
                scan(axis.overrides(level))
        for rule in exp.rules:
            scan(rule.set)
    sc = study.scales.get(scale)
    if sc is not None:
        scan(sc.settings)
        for rule in sc.rules:
            scan(rule.set)
        se = sc.experiments.get(experiment)
        if se is not None:
            scan(se.settings)
            for rule in se.rules:
                scan(rule.set)
    return list(found.values())


def _seeds_of(claim: Any, ctx: EvaluationContext) -> int:
    """The claim's seed count: one more than the highest seed index among its usable runs (all
    the scale's runs for a claim that selects none itself, e.g. one on table cells)."""
    selectors = [sel for _, sel in claim.selectors()]
    runs = [r for sel in selectors for r in ctx.runs(sel)] if selectors else ctx.rows
    return 1 + max((int(r.get("seed_index", 0)) for r in runs), default=-1)


def _judged_at_this_look(claim: Any, ctx: EvaluationContext) -> tuple[ClaimResult, str]:
    """The claim judged at the α this look spends, on the seeds this look may use
    (:mod:`restudy.compare.looks`), with the follow-up it would need when inconclusive."""
    kind = plugins.get("claim", claim.kind)
    look = this_look(ctx.looks.get(claim.id, ()), _seeds_of(claim, ctx), claim.alpha)
    sub = ctx
    if look.first_seed:  # a follow-up: only the seeds added since the last look decide
        fresh = [r for r in ctx.rows if int(r.get("seed_index", 0)) >= look.first_seed]
        sub = dataclasses.replace(ctx, rows=fresh, model_sets=None, var_rows={})
    judged = claim.model_copy(update={"alpha": look.alpha})
    result = kind.evaluate(judged, sub)
    if ctx.resamples:
        stab = stability(judged, sub, result.verdict, kind.evaluate, ctx.resamples)
        result = dataclasses.replace(result, stability=stab)
    evidence = {**result.evidence, "look": {**_look_dict(look), "claim_alpha": claim.alpha}}
    note = look.describe(claim.alpha) if look.index > 1 else ""
    seeds, summary = result.seeds_needed, result.summary
    if result.verdict == INCONCLUSIVE:  # the follow-up: fresh seeds, tested at the next look's α
        next_alpha = spent_alpha(claim.alpha, look.index + 1)
        follow = kind.evaluate(claim.model_copy(update={"alpha": next_alpha}), sub)
        fresh = follow.seeds_needed
        seeds = look.seeds + fresh if fresh else None
        how = follow.summary.split(". To decide: ", 1)[1] if ". To decide: " in follow.summary else ""
        if fresh:
            advice = (
                f"a follow-up on fresh seeds, judged on its own at α = {next_alpha:.3g} (the next look's share): "
                f"{how or f'about {fresh} seeds'}; run with --seeds {seeds}"
            )
        elif not claim.reads_runs():
            advice = how or "no run decides it: it reads the documents' printed numbers, whose digits cannot settle it"
        else:
            advice = how or "no follow-up on more seeds would likely decide it"
        summary = summary.split(". To decide: ")[0] + f". To decide: {advice}"
        evidence["look"]["follow_up_seeds"] = fresh
    return dataclasses.replace(result, evidence=evidence, seeds_needed=seeds, summary=summary), note


def _look_dict(look: Look) -> dict[str, Any]:
    return {"index": look.index, "alpha": look.alpha, "first_seed": look.first_seed, "seeds": look.seeds}


def evaluate_claim(claim: Any, ctx: EvaluationContext) -> ClaimResult:
    """Evaluates one claim at ``ctx.scale`` with its kind's evaluator (``not_evaluated`` without
    calling it at smoke scale, when the claim skips that scale or when nothing ran at it;
    ``inconclusive`` without calling it when its runs mix environments and that is not allowed).
    A claim whose own levels did not run (or all failed) while others did is ``inconclusive``,
    with what ran and what it needs, unless the command ran a subset of the study that plans none
    of the claim's runs (``ctx.subset``): that claim was not asked about, so ``not_evaluated``."""
    if ctx.scale == "smoke":
        return ctx.result(claim, NOT_EVALUATED, f"not evaluated: {SMOKE_NOTE}", {}, None, SMOKE_NOTE)
    if ctx.scale not in claim.scales:
        note = (
            f"this claim gets a verdict at {', '.join(claim.scales)} scale; these runs are "
            f"{ctx.scale} scale on {ctx.dataset or 'unknown data'}"
        )
        return ctx.result(claim, NOT_EVALUATED, f"not evaluated: {note}", {}, None, note)
    if not ctx.rows:
        note = f"no runs at {ctx.scale} scale"
        return ctx.result(claim, NOT_EVALUATED, f"not evaluated: {note}", {}, None, note)
    selectors = [sel for _, sel in claim.selectors()]
    if ctx.subset is not None and selectors and not any(ctx.subset.covers(sel) for sel in selectors):
        note = f"outside the subset this command ran ({ctx.subset.what})"
        return ctx.result(claim, NOT_EVALUATED, f"not evaluated: {note}", {}, None, note)
    mixed = sorted(
        {r["key"] for _, sel in claim.selectors() for r in ctx.select(sel) if r.get("key") in ctx.env_mismatch}
    )
    notes: list[str] = []
    if mixed:
        what = (
            f"{len(mixed)} of its runs were reused from another environment (versions, CPU, threads or "
            f"execution differ): {', '.join(mixed[:3])}{' ...' if len(mixed) > 3 else ''}"
        )
        if not ctx.allow_mixed_env:
            why = f"{what}; they enter verdicts only with --allow-mixed-env (or re-run them with --fresh)"
            return ctx.result(claim, INCONCLUSIVE, why, {"mixed_env_runs": mixed}, None)
        notes.append(f"{what}; pooled because --allow-mixed-env was given")
    result, look_note = _judged_at_this_look(claim, ctx)
    if look_note:
        notes.append(look_note)
    calibrated = list(
        dict.fromkeys(c for e in _experiments(claim) for c in calibrated_settings(ctx.study, ctx.scale, e))
    )
    if calibrated and result.verdict != NOT_EVALUATED:
        notes.append(
            "depends on settings chosen after looking at outcomes (provenance calibrated): " + "; ".join(calibrated)
        )
    if not notes:
        return result
    return dataclasses.replace(result, notes=[*result.notes, *notes], summary=result.summary + ". " + ". ".join(notes))


def _dataset(study: Study, scale: str, rows: list[Row], subset: Subset | None = None) -> str:
    if subset is not None and subset.data:
        return subset.data
    sc = study.scales.get(scale)
    if sc is not None and sc.dataset:
        return sc.dataset
    return datasets(rows, "")


def compare(
    study: Study,
    scale: str,
    rows: list[Row],
    predictions: Predictions | None = None,
    *,
    env_mismatch: Collection[str] = (),
    allow_mixed_env: bool = False,
    subset: Subset | None = None,
    looks: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    resamples: int = 0,
) -> Comparison:
    """Compares the runs of one scale with the study's reported tables and claims.

    Args:
        study: the study.
        scale: the scale the runs were made at; rows recording another scale are ignored.
        rows: run rows (:func:`restudy.storage.record.row`) of any status.
        predictions: (run key, view) → (logits [examples, classes], labels) or None, for
            variability claims and tables (e.g. :func:`load_predictions`); without it they are
            not evaluated.
        env_mismatch: keys of runs reused from another environment than the current one (the
            runner's ``RunOutcome.env_mismatch``); a claim selecting any of them is inconclusive
            with that reason unless ``allow_mixed_env``.
        allow_mixed_env: pool such runs (``--allow-mixed-env``); the claims say so.
        subset: the runs the command planned when it ran part of the study (``--only``): a claim
            none of whose runs it planned is not evaluated rather than inconclusive.
        looks: claim id → the earlier looks at it (``looks.json``; :mod:`restudy.compare.looks`):
            each claim spends the α of this look, and a follow-up judges only its new seeds.
        resamples: seed resamples per claim for its verdict's stability
            (:mod:`restudy.compare.stability`; ``restudy run`` and ``restudy report`` use
            :data:`~restudy.compare.stability.RESAMPLES`); 0 skips it.

    Returns:
        The :class:`Comparison`: a summary per (experiment, variant), one result per reported
        cell of each result table, one per such table, one per variability table, one per claim,
        and the leakage guard's decision per reported train/test value.
    """
    # One BLAS thread: the products here are small and many; on a loaded CPU a thread pool per
    # product is 30x slower, and one thread makes the numbers independent of the core count.
    with threadpool_limits(limits=1):
        return _compare(study, scale, rows, predictions, env_mismatch, allow_mixed_env, subset, looks or {}, resamples)


def _compare(
    study: Study,
    scale: str,
    rows: list[Row],
    predictions: Predictions | None,
    env_mismatch: Collection[str],
    allow_mixed_env: bool,
    subset: Subset | None,
    looks: Mapping[str, Sequence[Mapping[str, Any]]],
    resamples: int,
) -> Comparison:
    kept = [r for r in rows if r.get("scale") in (scale, None)]
    if len(kept) < len(rows):
        log.info("ignoring %d runs made at another scale than %s", len(rows) - len(kept), scale)
    dataset = _dataset(study, scale, kept, subset)
    ctx = EvaluationContext(
        study,
        scale,
        dataset,
        kept,
        cell_rules(study),
        predictions,
        env_mismatch=frozenset(env_mismatch),
        allow_mixed_env=allow_mixed_env,
        subset=subset,
        looks=dict(looks),
        resamples=resamples,
    )
    groups = [group_summary(runs) for runs in group_rows(kept).values()]
    cells: list[CellResult] = []
    tables: list[TableResult] = []
    variability: list[VariabilityTableResult] = []
    for table in study.tables:
        if table.kind != "result":
            continue  # a table without a layout: cells with no runs, reported only (its note says why)
        if isinstance(table.layout, VariabilityLayout):
            variability.append(variability_table(table, ctx))
            continue
        tcells = table_cells(table, kept, scale, dataset, ctx.rules)
        cells += tcells
        tables.append(table_result(table, tcells, scale, dataset))
    claims = [evaluate_claim(c, ctx) for c in study.claims]
    return Comparison(
        study=study.id,
        scale=scale,
        dataset=dataset,
        groups=groups,
        cells=cells,
        tables=tables,
        claims=claims,
        variability=variability,
        leakage=judge_tables(study, scale, kept, dataset),
        ratios=[x for t in study.tables if t.kind == "result" for x in column_ratios(t, kept, scale)],
    )
