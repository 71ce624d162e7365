"""The in-memory :class:`Dataset` every loader returns, and helpers the loaders share.

A dataset is small enough (CIFAR-10 is about 0.7 GB as float32) to live in memory as tensors, so a
loader reads, splits and normalises once and the engine indexes tensors directly. One too large for
memory (ImageNet) holds :class:`restudy.data.images.LazyImages` instead, which stand in for the
input tensors and decode batch by batch (:attr:`Dataset.streamed`). Every loader:

* keeps the source's own train/test split and records, per example, its index in that split
  (``idx_train``/``idx_test``) so predictions can be stored per example and compared across runs;
* takes deterministic subsets: ``n_train``/``n_test`` keep the *first* n examples of each split;
* computes normalisation statistics on the train subset actually used (never on test data);
* describes what it did in one line (:attr:`Dataset.description`) for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import DataError
from ..plugins import create


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset held in memory, already split and normalised.

    ``eq=False`` because comparing tensors element-wise is neither cheap nor a bool; identity
    equality (and hashing) is what callers need when they cache by dataset.

    Attributes:
        name: registry name, e.g. ``"cifar10"`` or ``"mnist1d"``.
        x_train: float32 inputs ``[N, ...]``, normalised (or a streamed stand-in, see above).
        y_train: int64 labels ``[N]`` in ``[0, num_classes)``.
        x_test: float32 inputs ``[M, ...]``, normalised with the train statistics.
        y_test: int64 labels ``[M]``.
        num_classes: number of classes.
        idx_train: int64 ``[N]``: index of each train example in the source's train split.
        idx_test: int64 ``[M]``: index of each test example in the source's test split.
        description: one line for the report (source, subsets, normalisation).
        x_val, y_val, idx_val: the validation split held out of the training data
            (:func:`hold_out`), or None.
        normalization: ``{"mean": [...], "std": [...], "computed_on": "train"|"fixed"}`` or
            ``{"kind": ...}`` for data that is not standardised.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    idx_train: torch.Tensor
    idx_test: torch.Tensor
    description: str
    normalization: dict[str, Any]
    # a validation split held out of the training data (setting data.val_fraction; see hold_out)
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    idx_val: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Catch a loader bug here, once, rather than as a shape error deep inside training.
        for split in ("train", "test"):
            x, y, idx = (getattr(self, f"{p}_{split}") for p in ("x", "y", "idx"))
            where = f"dataset '{self.name}' ({split})"
            if x.dtype != torch.float32:
                raise DataError("inputs must be float32", where=where, got=str(x.dtype))
            if y.dtype != torch.int64 or idx.dtype != torch.int64:
                raise DataError("labels and indices must be int64", where=where, got=(str(y.dtype), str(idx.dtype)))
            if not (x.shape[0] == y.shape[0] == idx.shape[0]) or y.ndim != 1 or idx.ndim != 1:
                raise DataError(
                    "inputs, labels and indices disagree in length",
                    where=where,
                    got=(tuple(x.shape), tuple(y.shape), tuple(idx.shape)),
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
                raise DataError(
                    "label out of range",
                    where=where,
                    got=(int(y.min()), int(y.max())),
                    allowed=f"0..{self.num_classes - 1}",
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                "train and test inputs differ in shape",
                where=f"dataset '{self.name}'",
                got=(tuple(self.x_train.shape), tuple(self.x_test.shape)),
            )

    @property
    def streamed(self) -> bool:
        """Whether the inputs are decoded batch by batch rather than held as tensors."""
        return not isinstance(self.x_train, torch.Tensor)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example, e.g. ``(3, 32, 32)`` or ``(40,)``."""
        return tuple(self.x_train.shape[1:])


def hold_out(data: Dataset, fraction: float, seed: int) -> Dataset:
    """``data`` with ``round(fraction · N)`` training examples moved to a validation split, chosen
    by a permutation drawn from ``seed``; the rest stay the training set, in their order. The test
    split is untouched (post-hoc steps such as temperature scaling fit on the validation split,
    never on test data). Normalisation statistics stay those of the loaded training split.

    Raises:
        DataError: a streamed data set, or a fraction that leaves no example on one side.
    """
    import dataclasses

    if data.streamed:
        raise DataError("a streamed data set holds out no validation split", where=f"dataset '{data.name}'")
    n = int(data.y_train.shape[0])
    k = round(fraction * n)
    if not 0 < k < n:
        raise DataError(
            f"a validation fraction of {fraction} holds out {k} of {n} training examples",
            where="data.val_fraction",
            got=fraction,
            allowed=f"a fraction leaving at least one example on each side of {n}",
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    val, keep = perm[:k].sort().values, perm[k:].sort().values
    return dataclasses.replace(
        data,
        x_train=data.x_train[keep],
        y_train=data.y_train[keep],
        idx_train=data.idx_train[keep],
        x_val=data.x_train[val],
        y_val=data.y_train[val],
        idx_val=data.idx_train[val],
        description=f"{data.description}; {k} of {n} training examples held out for validation",
    )


def load_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build the dataset registered as ``name`` with keyword arguments ``kwargs``.

    Args:
        name: registry name (``"synthetic"``, ``"mnist1d"``, ``"digits"``, ``"cifar10"``, ...).
        **kwargs: the factory's keyword arguments, e.g. ``n_train=1000, flatten=True``.

    Returns:
        The loaded :class:`Dataset`.

    Raises:
        RestudyError: unknown name or bad arguments.
        DataError: the data is missing, corrupt or fails its checksum.
    """
    return create("dataset", name, **kwargs)


# --- helpers shared by the loaders -------------------------------------------------------------


def subset_size(n: int | None, available: int, split: str, dataset: str) -> int:
    """How many examples to keep from a split: ``n`` if given (validated), else all.

    Args:
        n: requested count or ``None`` for the whole split.
        available: examples in the split.
        split: ``"train"`` or ``"test"`` (for the error message).
        dataset: dataset name (for the error message).

    Raises:
        DataError: ``n`` is not a positive integer no larger than ``available``.
    """
    if n is None:
        return available
    # bool is an int subclass; n_train=True is a config mistake, not "1 example".
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= available:
        raise DataError(f"n_{split} must be an integer in 1..{available}", where=f"dataset '{dataset}'", got=n)
    return n


def split_note(split: str, used: int, available: int) -> str:
    """``"train: first 40960 of 50000"`` for a subset, ``"train: 50000"`` for a whole split."""
    return f"{split}: first {used} of {available}" if used < available else f"{split}: {available}"


def standardize_scalar(
    x_train: torch.Tensor, x_test: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Standardise both splits with one mean/std computed over every train value.

    Returns:
        ``(x_train, x_test, normalization)`` with float32 tensors and
        ``{"mean": [m], "std": [s], "computed_on": "train"}``.
    """
    # float64 accumulation so the statistics do not depend on summation order / size.
    mean = float(x_train.double().mean())
    std = float(x_train.double().std(correction=0))
    if not std > 0:
        raise DataError("train inputs are constant; cannot standardise", got=std)
    norm = {"mean": [mean], "std": [std], "computed_on": "train"}
    return ((x_train - mean) / std).float(), ((x_test - mean) / std).float(), norm


def normalize_channels_(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> None:
    """Normalise ``x`` of layout ``[N, C, ...]`` in place, channel by channel."""
    shape = (1, len(mean)) + (1,) * (x.ndim - 2)
    x.sub_(torch.tensor(mean, dtype=x.dtype).view(shape))
    x.div_(torch.tensor(std, dtype=x.dtype).view(shape))


def maybe_flatten(x: torch.Tensor, flatten: bool) -> torch.Tensor:
    """``x`` as ``[N, features]`` when ``flatten`` is true, else unchanged."""
    return x.reshape(x.shape[0], -1) if flatten else x
