"""Linear CKA (centred kernel alignment) between the representations of trained models.

Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited", ICML
2019. Used on the penultimate features a run stores (setting ``cka_examples``). Pure numpy; re-exported
by :mod:`restudy.stats.variability`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import RestudyError

_GRAM_ELEMENTS = 1 << 25  # models × examples² of the Gram route of mean_pairwise_cka (256 MiB in float64)


def _as_numpy(x: Any) -> np.ndarray:
    """Returns ``x`` (numpy array, torch tensor or nested lists) as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def linear_cka(x: Any, y: Any) -> float:
    """Linear centred kernel alignment of two representations of the same examples.

    Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
    ICML 2019, Eq. 5 (linear kernel): with column-centred X [n, d₁] and Y [n, d₂],
    CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F). Invariant to orthogonal transforms and isotropic
    scaling of either representation; 1 for identical ones.

    ASSUMED: the released code of Summers & Dinneen computes no CKA (the [Re] Nondeterminism and
    Instability report, Sec. 3.5, found none either), and whether the paper reports one, on which
    layer and with which variant is unverified. Linear CKA is the most likely form; a study using it
    must mark it "assumed".

    Args:
        x: [n, d₁] features.
        y: [n, d₂] features of the same n examples.

    Returns:
        CKA in [0, 1]; NaN if either representation is constant.

    Raises:
        RestudyError: if the shapes do not match.
    """
    a = _as_numpy(x).astype(np.float64)
    b = _as_numpy(y).astype(np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise RestudyError(
            "CKA needs two (n, d) matrices of the same n examples", where="metrics.linear_cka", got=(a.shape, b.shape)
        )
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / norm) if norm > 0 else math.nan


def mean_pairwise_cka(features: Any) -> float:
    """Mean linear CKA over the model pairs i < j of ``features`` [models, n, d] (ASSUMED
    variant and layer: see :func:`linear_cka`); NaN for fewer than two models.

    Vectorized: each model's features are centred and its ‖XᵀX‖_F computed once; the cross terms
    ‖X_jᵀX_i‖²_F of model i against every later model come from one batched product."""
    f = _as_numpy(features)
    if f.ndim != 3:
        raise RestudyError(
            "features must be shaped (models, examples, dims)", where="metrics.mean_pairwise_cka", got=tuple(f.shape)
        )
    m = f.shape[0]
    if m < 2:
        return math.nan
    c = f.astype(np.float64)
    c = c - c.mean(axis=1, keepdims=True)
    n, d = c.shape[1], c.shape[2]
    if n < d * d and m * n * n <= _GRAM_ELEMENTS:
        # ‖YᵀX‖²_F = ⟨XXᵀ, YYᵀ⟩_F: one Gram matrix per model and one product for every pair
        grams = (c @ c.transpose(0, 2, 1)).reshape(m, n * n)
        g = grams @ grams.T
        norms = np.sqrt(np.diag(g))
        with np.errstate(invalid="ignore", divide="ignore"):
            cka = g / np.outer(norms, norms)
        iu = np.triu_indices(m, 1)
        return float(np.mean(cka[iu]))
    ct = np.ascontiguousarray(c.transpose(0, 2, 1))
    self_norm = np.sqrt(np.einsum("mij,mij->m", ct @ c, ct @ c))
    values = []
    for i in range(m - 1):
        cross = ct[i + 1 :] @ c[i]  # [later models, d_j, d_i]
        num = np.einsum("kij,kij->k", cross, cross)
        den = self_norm[i] * self_norm[i + 1 :]
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan))
    return float(np.mean(np.concatenate(values)))
