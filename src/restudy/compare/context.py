"""What a claim kind's evaluator is given: :class:`EvaluationContext`, the runs of one scale with
the study, the data set, stored predictions, and the helpers to select, pair and summarise runs and
to build the :class:`~restudy.compare.verdicts.ClaimResult`.

An evaluator is ``evaluate(claim, ctx) -> ClaimResult``; it is called only at the scales the claim
asks for (``claim.scales``). Everything it needs from the runs goes through ``ctx``::

    runs = ctx.runs(claim.select)                 # usable runs (failed ones dropped)
    summary, floor = ctx.summarize(runs, claim.metric, confidence=0.9)
    return ctx.result(claim, verdict, "one sentence with the numbers", {"points": ...})

Imports spec and the sibling modules verdicts, select, cells and modelsets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec.claim_base import ModelSet, Selector
from ..spec.study import Study
from ..stats.summary import Summary
from .cells import CellRule
from .modelsets import ModelSets, Predictions, SetData
from .select import Row, metric_value, pair_runs, per_seed_means, select_runs, summarize_runs, usable
from .testset import difference_variance, level_variance
from .verdicts import ClaimResult, VariabilityRow, clean


@dataclass(frozen=True)
class Subset:
    """The runs a command planned when it ran part of a study (``--only``).

    Attributes:
        planned: (experiment, variant) of each planned run.
        what: how the subset was chosen, as the reader should see it (``--only epochs=100``).
        data: the data it ran, when narrower than the scale's label (``cifar10 only (the paper
            scale runs CIFAR-10/100 …)``); empty otherwise.
    """

    planned: tuple[tuple[str, dict[str, str]], ...]
    what: str
    data: str = ""

    def covers(self, selector: Selector) -> bool:
        """Whether some planned run falls under ``selector``."""
        return any(selector.matches(e, v) for e, v in self.planned)


@dataclass
class EvaluationContext:
    """The runs of one scale and what a claim evaluation needs besides them.

    Attributes:
        study: the study.
        scale: the scale the runs were made at.
        dataset: the data set those runs used, as the report names it.
        rows: run rows (:func:`restudy.storage.record.row`) of that scale, any status.
        rules: (table, row, column) → :class:`~restudy.compare.cells.CellRule` (the CI level and
            tolerance set by the first claim naming a cell).
        predictions: (run key, view) → (logits, labels) or None; None when not available.
        model_sets: the model-set cache (each set loaded and measured once).
        var_rows: (table, row) → reproduced row of each variability table, once computed.
        env_mismatch: keys of runs reused from another environment.
        allow_mixed_env: whether those runs may enter verdicts.
        subset: the runs planned, when the command ran part of the study; None for all of it.
        looks: claim id → the earlier looks at it (:mod:`restudy.compare.looks`).
        resamples: seed resamples for each verdict's stability (0: not estimated).
    """

    study: Study
    scale: str
    dataset: str
    rows: list[Row]
    rules: dict[tuple[str, str, str], CellRule] = field(default_factory=dict)
    predictions: Predictions | None = None
    model_sets: ModelSets = None  # type: ignore[assignment]
    var_rows: dict[tuple[str, str], VariabilityRow] = field(default_factory=dict)
    env_mismatch: frozenset[str] = frozenset()
    allow_mixed_env: bool = False
    subset: Subset | None = None
    looks: dict[str, Any] = field(default_factory=dict)
    resamples: int = 0
    _correct: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.model_sets is None:
            self.model_sets = ModelSets(self.rows, self.predictions)

    def difference_noise(self, pairs: Sequence[tuple[Row, Row]], metric: str) -> float:
        """The test set's own variance (pp²) of the mean paired difference a − b of ``metric``, which
        more seeds do not shrink (0 unless ``metric`` is a test accuracy;
        :func:`restudy.compare.testset.difference_variance`). Pass it as ``extra_variance``."""
        return difference_variance(pairs, metric, self.correct)

    def level_noise(self, runs: Sequence[Row], metric: str) -> float:
        """The test set's own variance (pp²) of the runs' mean ``metric`` (0 unless it is a test
        accuracy; :func:`restudy.compare.testset.level_variance`)."""
        return level_variance(runs, metric)

    def correct(self, run: Row) -> np.ndarray | None:
        """The run's per-example correctness on the test set (bool [n_test], from its stored final
        test logits), or None when they are not available; read once per run."""
        key = run.get("key")
        if key is None or self.predictions is None:
            return None
        if key not in self._correct:
            got = self.predictions(key, "test")
            self._correct[key] = None if got is None else np.asarray(got[0]).argmax(axis=1) == np.asarray(got[1])
        return self._correct[key]

    def select(self, selector: Selector) -> list[Row]:
        """The runs (any status) of the selector's experiment and axis levels."""
        return select_runs(self.rows, selector)

    def runs(self, selector: Selector) -> list[Row]:
        """The usable runs (finished or diverged) of a selector."""
        return usable(select_runs(self.rows, selector))

    @staticmethod
    def value(run: Row, metric: str) -> float:
        """One run's value of ``metric`` (NaN when missing)."""
        return metric_value(run, metric)

    @staticmethod
    def per_seed(values: Iterable[tuple[int, float]]) -> tuple[list[int], list[float]]:
        """(seed index, value) pairs as one mean per seed index, ascending: what a claim's n
        counts (:func:`restudy.compare.select.per_seed_means`)."""
        return per_seed_means(values)

    @staticmethod
    def pair(
        a_runs: Sequence[Row], b_runs: Sequence[Row], a: Selector, b: Selector
    ) -> tuple[list[tuple[Row, Row]], dict[str, Any]]:
        """Runs of two selectors paired by seed index and the axes both leave free
        (:func:`restudy.compare.select.pair_runs`)."""
        return pair_runs(a_runs, b_runs, a, b)

    @staticmethod
    def summarize(runs: Sequence[Row], metric: str, confidence: float = 0.95) -> tuple[Summary, float]:
        """Mean, SD and CI of a metric over runs (accuracies floored by the binomial test-set SD);
        returns the summary and the floor used."""
        return summarize_runs(runs, metric, confidence)

    def model_set(self, ms: ModelSet) -> SetData:
        """A model set's stacked, measured predictions (loaded once per compare)."""
        return self.model_sets.get(ms)

    def result(
        self,
        claim: Any,
        verdict: str,
        summary: str,
        evidence: dict[str, Any],
        seeds: int | None = None,
        scale_note: str | None = None,
        metric: str | None = None,
        borderline: bool = False,
    ) -> ClaimResult:
        """The claim's result: ``evidence`` is made JSON-safe (NaN → None); the scale note says
        which runs the verdict comes from unless given. ``borderline`` is deprecated and ignored:
        how stable a verdict is comes from resampling its seeds (:mod:`restudy.compare.stability`)."""
        note = scale_note or f"from {self.scale}-scale runs on {self.dataset or 'unknown data'}"
        if borderline:
            warnings.warn(
                "EvaluationContext.result(borderline=...) is deprecated and ignored: verdicts are no longer "
                "marked borderline; their stability is estimated by resampling seeds",
                DeprecationWarning,
                stacklevel=2,
            )
        return ClaimResult(
            id=claim.id,
            statement=claim.statement,
            kind=claim.kind,
            metric=metric if metric is not None else claim.metric,
            verdict=verdict,
            summary=summary,
            evidence=clean(evidence),
            seeds_needed=seeds,
            scale_note=note,
        )
