"""restudy's public API: the one module a study's own code imports.

A study is a YAML file plus, optionally, a Python module (the study's ``module``) that registers
the parts the paper needs: models, data sets, data transforms, methods, optimizers, schedules,
batch augmentations, per-run metrics, claim kinds and model-set views. That module imports restudy
through this module only; every name here keeps its meaning across releases, wherever its
implementation lives (an old import path that moves keeps working for one release, with a
``DeprecationWarning`` naming the new one).

Registering parts::

    from restudy.api import Dataset, register

    @register("model", "tiny_mlp")
    def tiny_mlp(input_shape, num_classes, width=64): ...

    @register("transform", "shuffle_labels")
    def shuffle_labels(data: Dataset, generator, p=1.0) -> Dataset: ...

A claim kind is a :class:`ClaimBase` schema and a :class:`ClaimKind` registered with
:func:`register_claim_kind` (the contract: :mod:`restudy.claims.base`); the README's "A study's own
code" section has one example of every kind, which ``tests/test_api.py`` runs.

The groups below: registration, the study's schema types a claim kind uses, the evaluation context
and verdicts, statistics, how numbers are written, figure and table helpers, data, layers, errors.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> "module:attribute" (or "module" for a module). Resolved on first use, so that importing
# this module costs nothing: a worker process that imports a study's module to register its model
# loads neither the comparison (scipy) nor matplotlib.
_EXPORTS: dict[str, str] = {
    "KINDS": "restudy.plugins:KINDS",
    "register": "restudy.plugins:register",
    "create": "restudy.plugins:create",
    "registered": "restudy.plugins:names",
    "scoped_registrations": "restudy.plugins:scoped",
    "MetricInfo": "restudy.spec.metrics:MetricInfo",
    "metric_info": "restudy.spec.metrics:metric_info",
    "register_claim_kind": "restudy.claims.base:register_claim_kind",
    "claim_kind": "restudy.claims.base:claim_kind",
    "claim_kinds": "restudy.claims.base:claim_kinds",
    "ClaimBase": "restudy.spec.claim_base:ClaimBase",
    "Field": "restudy.spec.claim_base:Field",
    "ClaimKind": "restudy.claims.base:ClaimKind",
    "Selector": "restudy.spec.claim_base:Selector",
    "CellRef": "restudy.spec.claim_base:CellRef",
    "ModelSet": "restudy.spec.claim_base:ModelSet",
    "Loc": "restudy.spec.values:Loc",
    "Study": "restudy.spec.study:Study",
    "level_str": "restudy.spec.values:level_str",
    "selector_problems": "restudy.spec.study:selector_problems",
    "EvaluationContext": "restudy.compare.context:EvaluationContext",
    "ClaimResult": "restudy.compare.verdicts:ClaimResult",
    "Row": "restudy.compare.select:Row",
    "metric_value": "restudy.compare.select:metric_value",
    "per_seed_means": "restudy.compare.select:per_seed_means",
    "usable": "restudy.compare.select:usable",
    "not_learned": "restudy.compare.select:not_learned",
    "mean_host_load": "restudy.compare.select:mean_host_load",
    "Quantifier": "restudy.compare.quantifiers:Quantifier",
    "Quantified": "restudy.spec.claim_base:Quantified",
    "ShareBand": "restudy.spec.claim_base:ShareBand",
    "counts_text": "restudy.compare.quantifiers:counts_text",
    "cell_alphas": "restudy.compare.quantifiers:cell_alphas",
    "combine_cells": "restudy.compare.quantifiers:combine_cells",
    "REPRODUCED": "restudy.compare.verdicts:REPRODUCED",
    "NOT_REPRODUCED": "restudy.compare.verdicts:NOT_REPRODUCED",
    "INCONCLUSIVE": "restudy.compare.verdicts:INCONCLUSIVE",
    "NOT_EVALUATED": "restudy.compare.verdicts:NOT_EVALUATED",
    "VERDICTS": "restudy.compare.verdicts:VERDICTS",
    "POWER": "restudy.compare.verdicts:POWER",
    "combine": "restudy.compare.verdicts:combine",
    "directional_verdict": "restudy.compare.verdicts:directional_verdict",
    "directional_borderline": "restudy.compare.verdicts:directional_borderline",
    "threshold_borderline": "restudy.compare.verdicts:threshold_borderline",
    "Summary": "restudy.stats.summary:Summary",
    "summarize": "restudy.stats.summary:summarize",
    "binomial_floor_sd": "restudy.stats.summary:binomial_floor_sd",
    "binomial_floor_sd_percent": "restudy.stats.summary:binomial_floor_sd_percent",
    "PairedResult": "restudy.stats.comparisons:PairedResult",
    "paired_difference": "restudy.stats.comparisons:paired_difference",
    "welch_difference": "restudy.stats.comparisons:welch_difference",
    "seeds_needed": "restudy.stats.power:seeds_needed",
    "t_test_power": "restudy.stats.power:t_test_power",
    "Equivalence": "restudy.stats.decisions:Equivalence",
    "equivalence": "restudy.stats.decisions:equivalence",
    "seeds_to_decide": "restudy.stats.decisions:seeds_to_decide",
    "EQUIVALENT": "restudy.stats.decisions:EQUIVALENT",
    "DIFFERENT": "restudy.stats.decisions:DIFFERENT",
    "UNDECIDED": "restudy.stats.decisions:UNDECIDED",
    "SlopeResult": "restudy.stats.trend:SlopeResult",
    "slope_test": "restudy.stats.trend:slope_test",
    "bootstrap_interval": "restudy.stats.intervals:bootstrap_interval",
    "rate_ci": "restudy.stats.intervals:rate_ci",
    "variability": "restudy.stats.variability:variability",
    "fmt": "restudy.display.numbers:fmt",
    "pct": "restudy.display.numbers:pct",
    "p_value": "restudy.display.numbers:p_value",
    "MISSING": "restudy.display.numbers:MISSING",
    "draw": "restudy.display.draw",
    "tables": "restudy.display.tables",
    "Dataset": "restudy.data.dataset:Dataset",
    "FastDeconv": "restudy.methods.deconv:FastDeconv",
    "Delinear": "restudy.methods.deconv:Delinear",
    "RestudyError": "restudy.errors:RestudyError",
    "StudyError": "restudy.errors:StudyError",
    "DataError": "restudy.errors:DataError",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'restudy.api' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
