"""Model sets from stored predictions: each set's runs (usable rows of one experiment and axis
levels, in seed-index order) stacked from their stored test logits through a view, measured with
:func:`restudy.stats.variability.summarize`, and resampled over models for bootstrap CIs.

Uncertainty comes from a seeded bootstrap over **models** (:data:`VAR_RESAMPLES` resamples, seeded
by the model set so reports are reproducible), turned into intervals by
:func:`restudy.stats.bootstrap_interval` (log-scale with bias correction and the expanded t
quantile for positive spreads and ratios; BCa with the jackknife over models otherwise): sets of
different runs are resampled independently; two views of the *same* runs (e.g. TTA vs plain logits) are resampled
jointly, since they are paired model by model.

Runs that may not be pooled are left out and listed: diverged runs (even when their
pre-divergence logits are finite) and runs whose predictions are missing or non-finite. Runs
trained as slices of one stacked model (``execution: stacked``, ``stack_size`` > 1) are listed
in ``stacked``: a claim about separately trained models can refuse them.

Imports spec, stats (numpy), storage, the sibling modules select and views; safetensors to read
stored predictions. No torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..spec.claim_base import ModelSet
from ..stats import variability as metrics
from ..stats.intervals import bootstrap_interval
from ..storage import artifacts
from .select import Row, select_runs, usable
from .views import FEATURES, view_tensor

log = logging.getLogger(__name__)

Predictions = Callable[[str, str], "tuple[np.ndarray, np.ndarray] | None"]
"""(run key, view) → (logits [examples, classes], labels [examples]), or None when not stored."""

VAR_RESAMPLES = 4000
VAR_CONFIDENCE = 0.95


def _read_view(path: Path, view: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Reads one view's logits and the labels from a run's safetensors file (None if absent)."""
    from safetensors import safe_open

    name = view_tensor(view)
    with safe_open(str(path), framework="numpy") as f:
        names = set(f.keys())
        if name not in names:
            name = name.replace("+", "_")  # a strategy spelled 'flip+crop81' in the view
        if name not in names or artifacts.TENSOR_LABELS not in names:
            return None
        return f.get_tensor(name), f.get_tensor(artifacts.TENSOR_LABELS)


def load_predictions(out_dir: str | Path) -> Predictions:
    """The default predictions loader: reads ``<out_dir>/runs/<key>/test_logits.safetensors``.

    Only the requested tensor and ``labels`` are read (lazily, as numpy arrays, so compare never
    needs torch). A missing or unreadable file, or a view the run did not store, gives None.

    Args:
        out_dir: the study's output directory (the run store's root).

    Returns:
        A callable (run key, view) → (logits [examples, classes], labels) or None.
    """
    root = artifacts.runs_dir(out_dir)
    problems: dict[str, str] = {}

    def load(key: str, view: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = root / key / artifacts.LOGITS_FILE
        if not path.is_file():
            return None
        why = _unverified(root / key, path)
        if why is not None:  # changed since its run wrote it (or copied from another run): missing
            if key not in problems:
                log.warning("not using %s: %s", path, why)
            problems[key] = why
            return None
        try:
            return _read_view(path, view)
        except Exception as e:  # a corrupt file counts as missing; the report says so
            log.warning("cannot read %s (%s): %s", path, view, e)
            problems[key] = f"{path}: cannot read: {e}"
            return None

    load.problems = problems  # type: ignore[attr-defined]  # {run key: why its predictions were not used}
    return load


def _unverified(folder: Path, path: Path) -> str | None:
    """Why the logits file cannot be trusted (None when its sha256 is the one its run.json records)."""
    from ..storage.safeio import read_json, verify_file

    try:
        rec = read_json(folder / artifacts.RUN_FILE)
        sha = rec["artifacts"][artifacts.LOGITS_FILE]["sha256"]
        if not isinstance(sha, str):
            raise TypeError("sha256 is not a string")
    except Exception as e:  # no run.json, or it records no hash for the file
        return f"its run.json records no sha256 for {path.name} ({type(e).__name__}: {e})"
    try:
        verify_file(path, sha)
    except Exception as e:
        return str(e)
    return None


@dataclass
class SetData:
    """A model set's stacked predictions, measured (``why`` says why not, when not)."""

    name: str
    n_runs: int
    keys: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    stacked: list[str] = field(default_factory=list)
    why: str = ""
    pairwise: metrics.Pairwise | None = None
    values: dict[str, float] = field(default_factory=dict)
    mean_accuracy: float = math.nan
    seed: int = 0
    _draws: dict[str, np.ndarray] | None = None
    _jack: dict[str, np.ndarray] | None = None
    _intervals: dict[tuple[str, float], tuple[float, float]] = field(default_factory=dict)
    # mean pairwise CKA of the stored features, measured on first request (cka()): only a table
    # with a CKA column asks, and one CKA costs as much as the other metrics together
    _cka_source: Callable[[], float | None] | None = None
    _cka: float | None = None

    def cka(self) -> float | None:
        """Mean pairwise linear CKA of the models' stored penultimate features; None when some
        model stored none (see :func:`_measure_cka`)."""
        if self._cka_source is not None:
            self._cka, self._cka_source = self._cka_source(), None
        return self._cka

    @property
    def n_models(self) -> int:
        """Models whose predictions were stacked."""
        return len(self.keys) if self.pairwise is not None else 0

    def weights(self) -> np.ndarray:
        """The set's own seeded model resamples ([VAR_RESAMPLES, M] counts)."""
        rng = np.random.default_rng(self.seed)
        return metrics.resample_weights(self.n_models, VAR_RESAMPLES, rng)

    def draws(self) -> dict[str, np.ndarray]:
        """Every metric on the set's own resamples (computed once; empty below 2 models)."""
        if self._draws is None:
            self._draws = (
                metrics.bootstrap_draws(self.pairwise, self.weights())
                if self.pairwise is not None and self.n_models >= 2
                else {}
            )
        return self._draws

    def jackknife(self) -> dict[str, np.ndarray]:
        """Every metric on the M leave-one-out sets (computed once; empty below 3 models)."""
        if self._jack is None:
            self._jack = (
                metrics.bootstrap_draws(self.pairwise, metrics.jackknife_weights(self.n_models))
                if self.pairwise is not None and self.n_models >= 3
                else {}
            )
        return self._jack

    def interval(self, metric: str, confidence: float) -> tuple[float, float]:
        """Bootstrap interval of one metric over models (:func:`bca`; NaN below 2 models)."""
        key = (metric, confidence)
        if key not in self._intervals:
            self._intervals[key] = self._interval(metric, confidence)
        return self._intervals[key]

    def _interval(self, metric: str, confidence: float) -> tuple[float, float]:
        d = self.draws().get(metric)
        if d is None:
            return (math.nan, math.nan)
        return bca(
            self.values.get(metric, math.nan), d, [self.jackknife().get(metric, np.zeros(0))], confidence, self.n_models
        )


def bca(point: float, draws: np.ndarray, jack: list[np.ndarray], confidence: float, n: int) -> tuple[float, float]:
    """:func:`restudy.stats.bootstrap_interval` (log-scale for positive spreads and ratios, BCa
    otherwise) with the expansion for ``n`` models."""
    return bootstrap_interval(point, draws, jack, confidence, n=n)


def _set_key(ms: ModelSet) -> tuple[str, ...]:
    return ms.experiment, json.dumps(ms.where, sort_keys=True, default=str), ms.view, str(ms.first or "")


def _stable_seed(key: tuple[str, ...]) -> int:
    """A resampling seed that depends only on the model set (reports are reproducible)."""
    return int.from_bytes(hashlib.sha256("|".join(key).encode()).digest()[:8], "little")


def _stack(
    loaded: list[tuple[str, tuple[np.ndarray, np.ndarray]]],
) -> tuple[np.ndarray | None, np.ndarray | None, list[str], str]:
    """Stacks loaded predictions: (logits, labels, keys left out as non-finite, problem)."""
    first_logits, labels = loaded[0][1]
    keep, nonfinite = [], []
    for key, (logits, lab) in loaded:
        if logits.ndim != 2:
            return None, None, [], (f"run {key}: logits shaped {tuple(logits.shape)}, not (examples, classes)")
        if logits.shape != first_logits.shape or not np.array_equal(lab, labels):
            return (
                None,
                None,
                [],
                (
                    f"run {key} was evaluated on other test examples than run "
                    f"{loaded[0][0]} (shape {tuple(logits.shape)})"
                ),
            )
        (keep if np.all(np.isfinite(logits)) else nonfinite).append((key, logits))
    if not keep:
        return None, None, [k for k, _ in nonfinite], "every run's logits are non-finite"
    return (np.stack([lg for _, lg in keep]).astype(np.float32), np.asarray(labels), [k for k, _ in nonfinite], "")


def _measure(data: SetData, loaded: list[tuple[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    """Fills ``data`` from the loaded predictions of its runs."""
    logits, labels, data.nonfinite, problem = _stack(loaded)
    if logits is None:
        data.why = problem
        return
    data.keys = [k for k, _ in loaded if k not in data.nonfinite]
    data.pairwise = metrics.pairwise_stats(logits, labels)
    data.values = metrics.summarize(data.pairwise)
    data.mean_accuracy = float(np.mean(data.pairwise.accuracy))


def model_set_runs(rows: Iterable[Row], ms: ModelSet) -> list[Row]:
    """The usable runs of a model set, in seed-index (then variant) order; only the first
    ``ms.first`` of them when the set asks for a subset (the number-of-models ablation).
    Diverged runs are among them (the caller leaves them out and lists them)."""
    runs = sorted(usable(select_runs(rows, ms.selector())), key=lambda r: (r["seed_index"], r["variant_id"]))
    return runs[: ms.first] if ms.first else runs


def is_stacked(row: Row) -> bool:
    """Whether a run was trained as one slice of a stacked model of several."""
    return row.get("execution") == "stacked" and int(row.get("stack_size") or 0) > 1


class ModelSets:
    """Loads and measures each model set once per compare (a cache keyed by experiment, axis
    levels, view and subset)."""

    def __init__(self, rows: list[Row], predictions: Predictions | None) -> None:
        self.rows = rows
        self.predictions = predictions
        self._sets: dict[tuple[str, ...], SetData] = {}

    def get(self, ms: ModelSet) -> SetData:
        """The model set's stacked, measured predictions (``why`` says why none, when none)."""
        key = _set_key(ms)
        if key in self._sets:
            return self._sets[key]
        selected = model_set_runs(self.rows, ms)
        runs = [r for r in selected if r.get("status") != "diverged"]
        data = SetData(name=ms.name(), n_runs=len(selected), seed=_stable_seed(key))
        data.diverged = [r["key"] for r in selected if r.get("status") == "diverged"]
        data.stacked = [r["key"] for r in runs if is_stacked(r)]
        self._sets[key] = data
        if self.predictions is None:
            data.why = "no stored predictions were available to compare (no loader given)"
            return data
        loaded = [(r["key"], self.predictions(r["key"], ms.view)) for r in runs]
        data.missing = [k for k, p in loaded if p is None]
        present = [(k, p) for k, p in loaded if p is not None]
        if present:
            _measure(data, present)
            if ms.view == "test" and data.keys:
                data._cka_source = functools.partial(_measure_cka, self.predictions, list(data.keys))
        if not data.why and data.n_models < 2:
            data.why = (
                f"{data.n_models} of {len(selected)} usable runs have finite stored predictions "
                f"for view '{ms.view}' ({len(data.missing)} missing, {len(data.nonfinite)} "
                f"non-finite, {len(data.diverged)} diverged and left out): at least 2 models are needed"
            )
        return data


def _measure_cka(predictions: Predictions, keys: list[str]) -> float | None:
    """Mean pairwise linear CKA of the models' stored penultimate features (``cka_examples``
    setting), when every model stored them (None otherwise). CKA's variant and layer are
    assumptions (the paper's description, not its code): the value is labelled so wherever it
    is shown."""
    feats = [predictions(k, FEATURES) for k in keys]
    if len(feats) < 2 or any(f is None for f in feats):
        return None
    shapes = {f[0].shape for f in feats}  # type: ignore[index]
    if len(shapes) != 1:
        return None
    return metrics.mean_pairwise_cka(np.stack([f[0] for f in feats]))  # type: ignore[index]


def paired(a: SetData, b: SetData) -> bool:
    """Whether two sets are views of the same runs (resampled jointly, model by model)."""
    return a.keys == b.keys and a.pairwise is not None and b.pairwise is not None


def joint_draws(a: SetData, b: SetData) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Bootstrap draws of two sets: on shared resamples when paired, else each its own."""
    if paired(a, b):
        w = b.weights()
        return metrics.bootstrap_draws(a.pairwise, w), b.draws()  # type: ignore[arg-type]
    return a.draws(), b.draws()


Jack = list[tuple[dict[str, Any], dict[str, Any]]]


def joint_jackknife(a: SetData, b: SetData) -> Jack:
    """Leave-one-out values of two sets for a statistic of both, one entry per independent
    sample: paired sets leave the same model out of both; independent sets leave one model out
    of one set while the other keeps its full value."""
    ja, jb = a.jackknife(), b.jackknife()
    if not ja or not jb:
        return []
    if paired(a, b):
        return [(ja, jb)]
    return [(ja, dict(b.values)), (dict(a.values), jb)]


def no_variability(metric: str, value: float) -> bool:
    """Whether a metric's value means no variability at all (correlations 1, the others 0)."""
    return value == (1.0 if metric.startswith("correlation") else 0.0)
