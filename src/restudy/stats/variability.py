"""Run-to-run variability of a set of trained models, from their test logits.

The metrics are those of Summers & Dinneen, "Nondeterminism and Instability in Neural Network
Optimization" (ICML 2021, arXiv:2103.04514), computed the way their released code does
(``evaluate.py``, ``compute_metrics``). A "model" is one array of logits ``[examples, classes]``;
for ensembles and test-time augmentation it is the averaged logits, as ``evaluate.py`` averages them.
Over a set of M models:

1. ``sd_accuracy``: top-1 test accuracy of each model in %, then the **population** SD (``np.std``,
   ddof = 0) across models.
2. ``sd_cross_entropy``: each model's mean softmax cross-entropy (nats) on the true labels, then the
   population SD across models.
3. ``disagreement``: for every unordered pair i < j, the % of examples whose argmax predictions
   differ; averaged over the M(M−1)/2 pairs.
4. ``correlation_spearman`` / ``correlation_pearson``: for every pair, the correlation of the two
   **flattened** raw logit arrays (examples × classes numbers each); averaged over pairs. Spearman
   uses ranks from ``argsort`` with **no tie correction**, ρ = 1 − 6Σd²/(n(n²−1)), as the code does.
   ``correlation`` is the Spearman value: the code lists Spearman first, but which of the two the
   paper's "Pairwise Corr." column shows is **unverified** (the code computes both).
5. ``ensemble_gain``: for every pair, the ensemble is the **mean of the two logit arrays**; record
   acc_ens − acc_i and acc_ens − acc_j and average over all entries (in %). ``ensemble_gain_ce``
   is the cross-entropy analogue (ensemble CE minus member CE, same averaging; negative when
   ensembling helps).

Uncertainty: every metric gets a bootstrap CI (log-scale or BCa, expanded level) over **models** (resample the M models
with replacement; numpy ``default_rng(seed)``) and the bootstrap SD of the estimate (``*_se``; for
the SDs this is the "±" of the paper's tables, which used 10,000 resamples of numpy's legacy seed
1, so the exact draws differ). Pairwise metrics are bootstrapped without recomputing any pair: the
M×M matrices of pairwise values are computed once, and a resample is the mean of those matrix
entries over the pairs of the resampled multiset, **excluding pairs that draw the same model
twice** (a model compared with itself has disagreement 0 and correlation 1: that is not run-to-run
variability, and counting it would bias every resample towards "no variability").

Also here: linear CKA (Kornblith et al. 2019) and the two definitions of "variability reduction %"
(:func:`reduction_percent`).

Pure: arrays in (numpy, or torch tensors, which are converted), numbers out. Imports numpy,
restudy.stats (the bootstrap interval) and restudy.errors only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import RestudyError
from .cka import linear_cka, mean_pairwise_cka
from .intervals import bootstrap_interval

__all__ = [
    "Pairwise",
    "PAIRWISE_METRICS",
    "REDUCTION_LABELS",
    "SD_METRICS",
    "SUMMARY_METRICS",
    "bootstrap_draws",
    "bootstrap_sd",
    "jackknife_weights",
    "linear_cka",
    "mean_pairwise_cka",
    "pairwise_stats",
    "percentile_ci",
    "reduction_percent",
    "resample_weights",
    "summarize",
    "summarize_with_ci",
    "variability",
    "variability_value",
]

SD_METRICS: tuple[str, ...] = ("sd_accuracy", "sd_cross_entropy")
PAIRWISE_METRICS: tuple[str, ...] = (
    "disagreement",
    "correlation",
    "correlation_spearman",
    "correlation_pearson",
    "ensemble_gain",
    "ensemble_gain_ce",
)
SUMMARY_METRICS: tuple[str, ...] = SD_METRICS + PAIRWISE_METRICS
REDUCTION_METRICS: tuple[str, ...] = ("sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain")
REDUCTION_LABELS: dict[str, str] = {
    "original": (
        "original paper's formula: mean over the five metrics of 100·(1 − V/V_baseline), "
        "V = 1 − correlation for the correlation (re-derived from the Summers & Dinneen reproduction's Table 6)"
    ),
    "recalculated": (
        "reproduction's recalculation: mean of 100·(1 − V/V_baseline) for SD acc., SD "
        "CE, disagreement, ensemble Δ and 100·(corr − corr_baseline)/corr_baseline "
        "(the Summers & Dinneen reproduction's Tables 6–7)"
    ),
}
_PAIR_FIELDS: dict[str, str] = {
    "disagreement": "disagreement",
    "correlation": "spearman",
    "correlation_spearman": "spearman",
    "correlation_pearson": "pearson",
    "ensemble_gain": "ensemble_gain",
    "ensemble_gain_ce": "ensemble_gain_ce",
}
_CHUNK_ELEMENTS = 1 << 23  # elements of one block of pairwise ensemble sums (32 MiB in float32)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def _as_numpy(x: Any) -> np.ndarray:
    """Returns ``x`` (numpy array, torch tensor or nested lists) as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validates shapes and returns (logits float32 [M, N, C], labels int64 [N]).

    Raises:
        RestudyError: on wrong shapes, no models, or labels outside ``[0, classes)``.
    """
    z = _as_numpy(logits)
    y = _as_numpy(labels)
    where = "metrics.variability"
    if z.ndim != 3:
        raise RestudyError("logits must be shaped (models, examples, classes)", where=where, got=tuple(z.shape))
    if z.shape[0] == 0:
        raise RestudyError("no models: variability needs at least one model", where=where)
    if y.ndim != 1 or y.shape[0] != z.shape[1]:
        raise RestudyError(
            "labels must be shaped (examples,) like the logits' second axis",
            where=where,
            got=(tuple(y.shape), tuple(z.shape)),
        )
    if z.shape[1] == 0 or z.shape[2] < 2:
        raise RestudyError("need at least one example and two classes", where=where, got=tuple(z.shape))
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= z.shape[2]:
        raise RestudyError("labels must lie in [0, classes)", where=where, got=(int(y.min()), int(y.max())))
    return np.ascontiguousarray(z, dtype=np.float32), y


# --------------------------------------------------------------------------------------------
# per-model and pairwise quantities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pairwise:
    """What the variability metrics of one model set are computed from.

    Attributes:
        accuracy: top-1 accuracy per model, in % ([M]).
        cross_entropy: mean softmax cross-entropy per model, in nats ([M]).
        disagreement: % of examples whose argmax differs, per pair ([M, M], zero diagonal).
        spearman: Spearman correlation of the flattened logits per pair (no tie correction).
        pearson: Pearson correlation of the flattened logits per pair.
        ensemble_gain: acc(mean of the two logit arrays) − mean of the two members' accuracies,
            in % per pair (the average of the two entries acc_ens − acc_i, acc_ens − acc_j).
        ensemble_gain_ce: CE(ensemble) − mean of the two members' CE, per pair.
        n_examples: test examples behind every number.
    """

    accuracy: np.ndarray
    cross_entropy: np.ndarray
    disagreement: np.ndarray
    spearman: np.ndarray
    pearson: np.ndarray
    ensemble_gain: np.ndarray
    ensemble_gain_ce: np.ndarray
    n_examples: int

    @property
    def n_models(self) -> int:
        """Number of models M."""
        return int(self.accuracy.shape[0])

    def matrix(self, metric: str) -> np.ndarray:
        """The [M, M] matrix behind a pairwise metric name (``correlation`` is Spearman)."""
        return getattr(self, _PAIR_FIELDS[metric])


def _identical_pairs(z: np.ndarray) -> np.ndarray:
    """[M, M] booleans: True where two models' logits are bit-for-bit identical."""
    digests = [hashlib.blake2b(z[i].tobytes(), digest_size=16).digest() for i in range(z.shape[0])]
    same = np.array([[a == b for b in digests] for a in digests], dtype=bool)
    for i, j in zip(*np.nonzero(np.triu(same, 1))):  # confirm hash matches byte for byte
        same[i, j] = same[j, i] = bool(np.array_equal(z[i], z[j]))
    return same


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Top-1 accuracy in % along the last axis of ``pred`` (argmax indices)."""
    return 100.0 * np.mean(pred == labels, axis=-1)


def _cross_entropy_parts(z: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per model: row maxima [M, N], exp(½(z − max)) [M, N, C] (float64) and mean label logit [M].

    The softmax CE of the ensemble ½(z_i + z_j) factorises: with E_k = exp(½(z_k − m_k)),
    logsumexp(½(z_i + z_j)) = ½(m_i + m_j) + log Σ_c E_i,c·E_j,c, so the pairwise logsumexp needs
    one small matrix product per example instead of an exp per pair. For i = j it is the member's
    own logsumexp, so members and ensembles share one formula. (Float64 products underflow only
    when two models' logit gaps together exceed ~1,400 nats: far outside trained networks.)
    """
    m = z.max(axis=2).astype(np.float64)
    e = np.exp(0.5 * (z.astype(np.float64) - m[:, :, None]))
    label_logit = np.take_along_axis(z, labels[None, :, None], axis=2)[:, :, 0].astype(np.float64)
    return m, e, label_logit.mean(axis=1)


def _pair_logsumexp(m: np.ndarray, e: np.ndarray) -> np.ndarray:
    """[M, M] mean over examples of logsumexp(½(z_i + z_j)), chunked over examples."""
    n_models, n = m.shape
    total = np.zeros((n_models, n_models))
    step = max(1, _CHUNK_ELEMENTS // max(1, n_models * n_models))
    for s in range(0, n, step):
        block = np.transpose(e[:, s : s + step, :], (1, 0, 2))  # [n_b, M, C]
        dots = np.matmul(block, np.transpose(block, (0, 2, 1)))  # [n_b, M, M]
        total += np.log(dots).sum(axis=0)
    mean_m = m.mean(axis=1)
    return total / n + 0.5 * (mean_m[:, None] + mean_m[None, :])


def _ensemble_accuracy(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[M, M] top-1 accuracy (%) of the pair ensembles argmax(z_i + z_j) (= argmax of the mean)."""
    n_models, n, c = z.shape
    acc = np.zeros((n_models, n_models))
    rows = max(1, _CHUNK_ELEMENTS // (n * c))
    for i in range(n_models):
        for s in range(i, n_models, rows):
            block = z[i][None] + z[s : s + rows]  # [b, N, C]
            acc[i, s : s + rows] = _accuracy(block.argmax(axis=2), labels)
    return np.triu(acc) + np.triu(acc, 1).T


def _ranks(z: np.ndarray) -> np.ndarray:
    """Per model, the ranks 0..n−1 of its flattened logits (ties broken by position: no tie
    correction, as ranks from ``argsort`` in the original code), centred on their mean."""
    flat = z.reshape(z.shape[0], -1)
    n = flat.shape[1]
    ranks = np.empty(flat.shape, dtype=np.float64)
    base = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    for i in range(flat.shape[0]):
        ranks[i, np.argsort(flat[i], kind="stable")] = base
    return ranks


def _spearman(z: np.ndarray) -> np.ndarray:
    """[M, M] Spearman ρ = 1 − 6Σd²/(n(n²−1)) of the flattened logits, without tie correction.

    Ranks r are permutations of 0..n−1, so Σd² = 2Σr² − 2Σr_i·r_j and, with centred ranks r',
    ρ = 12·Σr'_i·r'_j / (n(n²−1)): the same number from one matrix product, in float64 (exact
    while n³/12 < 2⁵¹, i.e. up to about 10⁵·⁵ numbers per model; relative rounding ~1e-16 beyond).
    """
    r = _ranks(z)
    n = r.shape[1]
    return 12.0 * (r @ r.T) / (n * (float(n) ** 2 - 1.0))


def _pearson(z: np.ndarray) -> np.ndarray:
    """[M, M] Pearson correlation of the flattened logits (float64)."""
    flat = z.reshape(z.shape[0], -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (flat @ flat.T) / np.outer(norms, norms)


def _disagreement(pred: np.ndarray) -> np.ndarray:
    """[M, M] % of examples whose argmax predictions differ, one row of pairs at a time."""
    n_models = pred.shape[0]
    dis = np.zeros((n_models, n_models))
    for i in range(n_models - 1):
        dis[i, i + 1 :] = 100.0 * np.mean(pred[i][None, :] != pred[i + 1 :], axis=1)
    return dis + dis.T


def pairwise_stats(logits: Any, labels: Any) -> Pairwise:
    """Computes every per-model and pairwise quantity of one model set, once.

    Pairs of bit-identical logit arrays get exactly 0 disagreement, correlation 1 and ensemble
    gains 0 (their ensemble *is* each member), so deterministic training shows exactly no
    variability instead of floating-point residue.

    Args:
        logits: [models, examples, classes], float (numpy or torch).
        labels: [examples] true class indices.

    Returns:
        The :class:`Pairwise` quantities (matrices have a meaningless diagonal, set to the
        self-pair value and never used by the metrics).

    Raises:
        RestudyError: on bad shapes or no models.
    """
    z, y = _check_inputs(logits, labels)
    pred = z.argmax(axis=2)
    acc = _accuracy(pred, y)
    m, e, label_logit = _cross_entropy_parts(z, y)
    lse = _pair_logsumexp(m, e)
    ce = np.diag(lse) - label_logit
    ens_ce = lse - 0.5 * (label_logit[:, None] + label_logit[None, :])
    same = _identical_pairs(z)
    gain = _ensemble_accuracy(z, y) - 0.5 * (acc[:, None] + acc[None, :])
    gain_ce = ens_ce - 0.5 * (ce[:, None] + ce[None, :])
    spearman, pearson, dis = _spearman(z), _pearson(z), _disagreement(pred)
    for mat, exact in ((gain, 0.0), (gain_ce, 0.0), (spearman, 1.0), (pearson, 1.0), (dis, 0.0)):
        mat[same] = exact
    return Pairwise(
        accuracy=acc,
        cross_entropy=ce,
        disagreement=dis,
        spearman=spearman,
        pearson=pearson,
        ensemble_gain=gain,
        ensemble_gain_ce=gain_ce,
        n_examples=int(z.shape[1]),
    )


# --------------------------------------------------------------------------------------------
# point values and bootstrap
# --------------------------------------------------------------------------------------------


def _population_sd(x: np.ndarray) -> float:
    """``np.std`` (ddof = 0); exactly 0 when all values are equal (no rounding residue)."""
    if x.size < 2:
        return math.nan
    if np.all(x == x[0]):
        return 0.0
    return float(np.std(x))


def _pair_mean(mat: np.ndarray) -> float:
    """Mean of a symmetric matrix over the pairs i < j (NaN for fewer than two models)."""
    iu = np.triu_indices(mat.shape[0], 1)
    return float(np.mean(mat[iu])) if iu[0].size else math.nan


def summarize(pw: Pairwise) -> dict[str, float]:
    """The point value of every metric of :data:`SUMMARY_METRICS` (NaN when M < 2)."""
    out = {"sd_accuracy": _population_sd(pw.accuracy), "sd_cross_entropy": _population_sd(pw.cross_entropy)}
    for metric in PAIRWISE_METRICS:
        out[metric] = _pair_mean(pw.matrix(metric))
    return out


def resample_weights(n_models: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[resamples, M] counts of each model in a resample of M models drawn with replacement."""
    return rng.multinomial(n_models, np.full(n_models, 1.0 / n_models), size=resamples)


def jackknife_weights(n_models: int) -> np.ndarray:
    """[M, M] counts of the M leave-one-out sets (row i leaves model i out), for BCa's
    acceleration: :func:`bootstrap_draws` on them gives every metric's jackknife values."""
    return np.ones((n_models, n_models), dtype=np.int64) - np.eye(n_models, dtype=np.int64)


def _weighted_sd(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Population SD of each resampled multiset (rows of weights ``w``) of values ``x``."""
    if x.size and np.all(x == x[0]):
        return np.zeros(w.shape[0])  # exactly no spread, without rounding residue
    total = w.sum(axis=1)
    # einsum, not BLAS: small products on many threads oversubscribe a loaded CPU (30x slower)
    mean = np.einsum("bi,i->b", w, x) / total
    var = (w * (x[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
    return np.sqrt(np.maximum(var, 0.0))


def _weighted_pair_mean(mat: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean over the pairs of distinct models in each resampled multiset.

    A resample with counts w has w_k·w_l position pairs drawing models k ≠ l, so the mean is
    Σ_{k≠l} w_k w_l D_kl / Σ_{k≠l} w_k w_l = wᵀD₀w / ((Σw)² − Σw²) with D₀ = D with a zero
    diagonal. Resamples that draw a single model only have no such pair: NaN.
    """
    d0 = mat.copy()
    np.fill_diagonal(d0, 0.0)
    wf = w.astype(np.float64)
    num = np.einsum("bj,bj->b", np.einsum("bi,ij->bj", wf, d0), wf)  # no BLAS threads (see _weighted_sd)
    den = wf.sum(axis=1) ** 2 - (wf**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_draws(pw: Pairwise, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of :data:`SUMMARY_METRICS` on each model resample.

    Args:
        pw: the model set's pairwise quantities.
        weights: [B, M] counts (:func:`resample_weights`).

    Returns:
        metric → [B] values (NaN where a resample has no pair of distinct models).
    """
    out = {
        "sd_accuracy": _weighted_sd(pw.accuracy, weights),
        "sd_cross_entropy": _weighted_sd(pw.cross_entropy, weights),
    }
    for metric in PAIRWISE_METRICS:
        out[metric] = _weighted_pair_mean(pw.matrix(metric), weights)
    return out


def percentile_ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap draws (NaN draws — resamples without a pair of
    distinct models — are dropped; infinite ones are kept). (NaN, NaN) below 2 draws."""
    keep = draws[~np.isnan(draws)]
    if keep.size < 2:
        return (math.nan, math.nan)
    a = 100.0 * (1.0 - confidence) / 2.0
    # Interpolating between infinite draws (a ratio over a resample with no variability) gives
    # inf - inf = NaN: then take sample points themselves.
    method = "linear" if np.all(np.isfinite(keep)) else "inverted_cdf"
    low, high = np.percentile(keep, [a, 100.0 - a], method=method)
    return (float(low), float(high))


def bootstrap_sd(draws: np.ndarray) -> float:
    """SD (ddof = 1) of the finite bootstrap draws: the SE of the estimate; NaN below 2."""
    keep = draws[np.isfinite(draws)]
    return float(np.std(keep, ddof=1)) if keep.size >= 2 else math.nan


def variability(
    logits: Any, labels: Any, *, bootstrap: int = 1000, seed: int = 1, confidence: float = 0.95
) -> dict[str, Any]:
    """Run-to-run variability of a set of models (Summers & Dinneen 2021; their ``evaluate.py``).

    Args:
        logits: [models, examples, classes] test logits (numpy or torch, float32).
        labels: [examples] true labels.
        bootstrap: model resamples for the CIs (0 disables them).
        seed: seed of ``np.random.default_rng`` for the resampling.
        confidence: two-sided level of the CIs (:func:`restudy.stats.bootstrap_interval`:
            log-scale for positive spreads, BCa otherwise; percentile intervals of an SD from ~20
            models cover only 82–92 %).

    Returns:
        ``n_models, n_examples, mean_accuracy, mean_cross_entropy, accuracies, cross_entropies``
        and, for each metric of :data:`SUMMARY_METRICS`, its value, ``<metric>_ci`` (low, high)
        and ``<metric>_se`` (bootstrap SD of the estimate). With one model the SDs and pairwise
        metrics are NaN: one model has no run-to-run variability to measure.

    Raises:
        RestudyError: with no models or badly shaped inputs.
    """
    pw = pairwise_stats(logits, labels)
    return summarize_with_ci(pw, bootstrap=bootstrap, seed=seed, confidence=confidence)


def summarize_with_ci(
    pw: Pairwise, *, bootstrap: int = 1000, seed: int = 1, confidence: float = 0.95
) -> dict[str, Any]:
    """:func:`variability` from already computed :class:`Pairwise` quantities."""
    out: dict[str, Any] = {
        "n_models": pw.n_models,
        "n_examples": pw.n_examples,
        "mean_accuracy": float(np.mean(pw.accuracy)),
        "mean_cross_entropy": float(np.mean(pw.cross_entropy)),
        "accuracies": pw.accuracy.tolist(),
        "cross_entropies": pw.cross_entropy.tolist(),
        "bootstrap": int(bootstrap),
        "seed": int(seed),
        "confidence": float(confidence),
    }
    values = summarize(pw)
    draws: dict[str, np.ndarray] = {}
    jack: dict[str, np.ndarray] = {}
    if bootstrap > 0 and pw.n_models >= 2:
        rng = np.random.default_rng(seed)
        draws = bootstrap_draws(pw, resample_weights(pw.n_models, bootstrap, rng))
        if pw.n_models >= 3:
            jack = bootstrap_draws(pw, jackknife_weights(pw.n_models))
    for metric, value in values.items():
        d = draws.get(metric)
        out[metric] = value
        out[f"{metric}_ci"] = (
            bootstrap_interval(value, d, [jack.get(metric, np.zeros(0))], confidence, n=pw.n_models)
            if d is not None
            else (math.nan, math.nan)
        )
        out[f"{metric}_se"] = bootstrap_sd(d) if d is not None else math.nan
    return out


# --------------------------------------------------------------------------------------------
# variability values, reductions
# --------------------------------------------------------------------------------------------


def variability_value(metric: str, value: Any) -> Any:
    """The metric as an amount of variability V (larger = more variable): 1 − correlation for
    the correlations, the value itself otherwise. Works on floats and arrays."""
    return 1.0 - value if metric.startswith("correlation") else value


def _per_metric(method: Mapping[str, Any], baseline: Mapping[str, Any], recalculated: bool) -> dict[str, Any]:
    out = {}
    for metric in REDUCTION_METRICS:
        m, b = np.asarray(method[metric], dtype=float), np.asarray(baseline[metric], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            if metric == "correlation" and recalculated:
                r = 100.0 * (m - b) / b
            else:
                r = 100.0 * (1.0 - variability_value(metric, m) / variability_value(metric, b))
        out[metric] = float(r) if r.ndim == 0 else r
    return out


def _mean_of(per: dict[str, Any]) -> Any:
    stacked = np.mean(np.stack([np.asarray(v, dtype=float) for v in per.values()]), axis=0)
    return float(stacked) if np.ndim(stacked) == 0 else stacked


def reduction_percent(method: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Variability reduction % of ``method`` against ``baseline``, both ways the sources use.

    Neither formula is given in the paper or its code (the [Re] Nondeterminism and Instability report,
    Sec. 4.1, says so too); both are re-derived from that report's numbers, Tables 6–7:

    * ``original`` — the paper's figure: the mean over the five metrics (SD accuracy, SD CE,
      disagreement, correlation, ensemble Δ) of 100·(1 − V_method/V_baseline), where V is the
      metric itself and, for the correlation, V = 1 − correlation. Table 6, Acc. Ens. vs Single
      Model gives 48.2 (the paper's struck-through "48"); Flip-TTA gives 21.
    * ``recalculated`` — the reproduction's recalculation: the same mean, but the correlation
      enters as 100·(corr_method − corr_baseline)/corr_baseline (Acc. Ens.: 36.8 ≈ its "37";
      Flip-TTA: 16.9 ≈ "17").

    Args:
        method: metric → value (floats, or equally shaped arrays of bootstrap draws), with at
            least the five metrics above (e.g. a :func:`variability` result).
        baseline: the same for the baseline (single models, all sources of nondeterminism).

    Returns:
        ``original`` and ``recalculated`` (%), ``per_metric`` {``original``: metric → %,
        ``recalculated``: metric → %} and ``labels`` (what each formula is, for reports).

    Raises:
        KeyError: if a metric is missing.
    """
    per = {
        "original": _per_metric(method, baseline, recalculated=False),
        "recalculated": _per_metric(method, baseline, recalculated=True),
    }
    return {
        "original": _mean_of(per["original"]),
        "recalculated": _mean_of(per["recalculated"]),
        "per_metric": per,
        "labels": dict(REDUCTION_LABELS),
    }
