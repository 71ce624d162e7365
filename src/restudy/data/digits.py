"""``"digits"``: scikit-learn's 8x8 handwritten digits (1797 images, shipped with scikit-learn).

The source has no train/test split, so we make one with a seeded permutation; ``idx_train`` and
``idx_test`` are indices into the 1797 images in scikit-learn's order.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..errors import DataError
from ..plugins import register
from .dataset import Dataset, maybe_flatten, split_note, standardize_scalar, subset_size

_NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def _load_source() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 images ``[N, 8, 8]`` (values 0..16) and labels, read-only; cached in-process."""
    # Imported lazily: scikit-learn takes a noticeable time to import and only this loader needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_indices(n: int, test_fraction: float, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of ``range(n)`` into sorted train and test indices."""
    n_test = round(test_fraction * n)
    if not 0 < n_test < n:
        raise DataError(
            "test_fraction must leave both splits non-empty",
            where="dataset 'digits'",
            got=test_fraction,
            allowed="0 < test_fraction < 1",
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    # Sorted so the split is a plain subset in source order; training shuffles on its own.
    return perm[n_test:].sort().values, perm[:n_test].sort().values


@register("dataset", "digits")
def digits(
    split_seed: int = 0,
    test_fraction: float = 0.25,
    n_train: int | None = None,
    n_test: int | None = None,
    flatten: bool = False,
) -> Dataset:
    """scikit-learn's digits, split by a seeded permutation, standardised with train statistics.

    Args:
        split_seed: seed of the train/test permutation.
        test_fraction: share of the 1797 images in the test split.
        n_train: keep the first ``n_train`` train examples (``None``: all).
        n_test: keep the first ``n_test`` test examples (``None``: all).
        flatten: return ``[N, 64]`` instead of ``[N, 1, 8, 8]``.

    Returns:
        The dataset; a scalar mean/std over all train pixels is used (pixels share one scale).
    """
    images, labels = _load_source()
    idx_tr, idx_te = _split_indices(len(labels), test_fraction, split_seed)
    n_tr_all, n_te_all = len(idx_tr), len(idx_te)
    k_tr = subset_size(n_train, n_tr_all, "train", "digits")
    k_te = subset_size(n_test, n_te_all, "test", "digits")
    idx_tr, idx_te = idx_tr[:k_tr], idx_te[:k_te]
    x_all = torch.tensor(images).unsqueeze(1)  # [N, 1, 8, 8]; a copy, the cache stays intact
    y_all = torch.tensor(labels)
    x_train, x_test, norm = standardize_scalar(x_all[idx_tr], x_all[idx_te])
    description = (
        f"scikit-learn digits 8x8 (seeded split: seed {split_seed}, test fraction "
        f"{test_fraction:g}), {split_note('train', k_tr, n_tr_all)}, "
        f"{split_note('test', k_te, n_te_all)}; "
        "scalar standardisation with train-split statistics"
    )
    return Dataset(
        name="digits",
        x_train=maybe_flatten(x_train, flatten),
        y_train=y_all[idx_tr],
        x_test=maybe_flatten(x_test, flatten),
        y_test=y_all[idx_te],
        num_classes=_NUM_CLASSES,
        idx_train=idx_tr,
        idx_test=idx_te,
        description=description,
        normalization=norm,
    )
