"""Reproduced versus reported: :func:`compare` turns the runs of one scale into a
:class:`Comparison` — per-variant summaries, table cells, variability tables and one verdict per
claim, each with its evidence.

The package, one concept per module: ``results`` (verdicts and result dataclasses), ``select``
(selecting, grouping, pairing and summarising runs), ``cells`` (numeric cells and result tables),
``views`` (model-set views → stored tensors), ``modelsets`` (model sets from stored predictions,
:func:`load_predictions`), ``variability`` (variability tables) and ``context`` (the
:class:`EvaluationContext` an evaluator gets). Claims are judged by their kind's evaluator,
found in the ``claim`` registry (:mod:`restudy.claims`); this module only orchestrates.

A claim is ``not_evaluated`` when the scale is not among its ``scales`` (its evaluator is not
called) or when no run is selected.

Imports study, stats and metrics (numpy; safetensors to read stored predictions); no torch.
"""

from __future__ import annotations

import logging
from typing import Any

from ..claims.base import claim_kind
from ..numbers import pct
from ..study import Study, VariabilityLayout
from .cells import CellRule, cell_rules, cell_runs, evaluate_cell, group_summary, table_cells, table_result
from .context import EvaluationContext
from .modelsets import VAR_CONFIDENCE, VAR_RESAMPLES, ModelSets, Predictions, load_predictions, model_set_runs
from .results import (
    INCONCLUSIVE,
    MIN_SEEDS_TO_REJECT,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    POWER,
    REPRODUCED,
    VERDICTS,
    CellResult,
    ClaimResult,
    Comparison,
    GroupSummary,
    TableResult,
    VariabilityCell,
    VariabilityRow,
    VariabilityTableResult,
    combine,
)
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
from .variability import REDUCTION_COLUMNS, variability_cell, variability_table

__all__ = [
    "compare",
    "evaluate_claim",
    "load_predictions",
    "EvaluationContext",
    "Comparison",
    "ClaimResult",
    "CellResult",
    "GroupSummary",
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


def evaluate_claim(claim: Any, ctx: EvaluationContext) -> ClaimResult:
    """Evaluates one claim at ``ctx.scale`` with its kind's evaluator (``not_evaluated`` without
    calling it when the claim skips that scale)."""
    if ctx.scale not in claim.scales:
        note = (
            f"this claim gets a verdict at {', '.join(claim.scales)} scale; these runs are "
            f"{ctx.scale} scale on {ctx.dataset or 'unknown data'}"
        )
        return ctx.result(claim, NOT_EVALUATED, f"not evaluated: {note}", {}, None, note)
    return claim_kind(claim.kind).evaluate(claim, ctx)


def _dataset(study: Study, scale: str, rows: list[Row]) -> str:
    sc = study.scales.get(scale)
    if sc is not None and sc.dataset:
        return sc.dataset
    return datasets(rows, "")


def compare(study: Study, scale: str, rows: list[Row], predictions: Predictions | None = None) -> Comparison:
    """Compares the runs of one scale with the study's reported tables and claims.

    Args:
        study: the study.
        scale: the scale the runs were made at; rows recording another scale are ignored.
        rows: run rows (:func:`restudy.record.row`) of any status.
        predictions: (run key, view) → (logits [examples, classes], labels) or None, for
            variability claims and tables (e.g. :func:`load_predictions`); without it they are
            not evaluated.

    Returns:
        The :class:`Comparison`: a summary per (experiment, variant), one result per reported
        cell of each result table, one per such table, one per variability table, one per claim.
    """
    kept = [r for r in rows if r.get("scale") in (scale, None)]
    if len(kept) < len(rows):
        log.info("ignoring %d runs made at another scale than %s", len(rows) - len(kept), scale)
    dataset = _dataset(study, scale, kept)
    ctx = EvaluationContext(study, scale, dataset, kept, cell_rules(study), predictions)
    groups = [group_summary(runs) for runs in group_rows(kept).values()]
    cells: list[CellResult] = []
    tables: list[TableResult] = []
    variability: list[VariabilityTableResult] = []
    for table in study.tables:
        if table.kind != "result" or table.layout is None:
            continue
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
    )
