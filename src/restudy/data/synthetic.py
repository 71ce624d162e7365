"""``"synthetic"``: a seeded Gaussian-mixture classification task (fast; for tests and smoke runs).

Every random draw comes from a local ``torch.Generator`` seeded by ``seed``: the global RNG is never
touched, so loading the data does not perturb (or depend on) the seeds of a training run.
"""

from __future__ import annotations

import torch

from ..errors import DataError
from ..plugins import register
from .dataset import Dataset, maybe_flatten

_DEFAULT_N_TRAIN = 1000
_DEFAULT_N_TEST = 500


def _check_args(n_train: int, n_test: int, dim: int, num_classes: int, noise: float, label_noise: float) -> None:
    """Raise :class:`DataError` for arguments that cannot describe a dataset."""
    for name, value in (("n_train", n_train), ("n_test", n_test), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{name} must be a positive integer", where="dataset 'synthetic'", got=value)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise DataError("num_classes must be an integer >= 2", where="dataset 'synthetic'", got=num_classes)
    if not noise > 0:
        raise DataError("noise must be > 0", where="dataset 'synthetic'", got=noise)
    if not 0.0 <= label_noise <= 1.0:
        raise DataError(
            "label_noise must be a fraction", where="dataset 'synthetic'", got=label_noise, allowed="0.0..1.0"
        )


def _sample(means: torch.Tensor, n: int, noise: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points with (near-)balanced labels around ``means``."""
    k, dim = means.shape
    # Balanced classes (counts differ by at most one), in a random order.
    y = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    x = means[y] + noise * torch.randn(n, dim, generator=gen)
    return x, y


def _corrupt_labels(
    y: torch.Tensor, fraction: float, num_classes: int, gen: torch.Generator
) -> tuple[torch.Tensor, int]:
    """Replace ``round(fraction * len(y))`` labels, chosen at random, by a *different* class.

    Drawing among the other classes (not all classes) makes ``fraction`` exactly the share of
    wrong labels, which is the quantity label-noise experiments report.
    """
    n_flip = round(fraction * y.numel())
    if n_flip == 0:
        return y, 0
    where = torch.randperm(y.numel(), generator=gen)[:n_flip]
    shift = torch.randint(1, num_classes, (n_flip,), generator=gen)
    y = y.clone()
    y[where] = (y[where] + shift) % num_classes
    return y, n_flip


@register("dataset", "synthetic")
def synthetic(
    n_train: int | None = 1000,
    n_test: int | None = 500,
    dim: int = 20,
    num_classes: int = 4,
    separation: float = 2.0,
    noise: float = 1.0,
    seed: int = 0,
    label_noise: float = 0.0,
    flatten: bool = False,
) -> Dataset:
    """A Gaussian mixture: class ``c`` is ``N(mu_c, noise^2 I)`` in ``dim`` dimensions.

    The class means are drawn once as ``N(0, separation^2 / dim * I)``, so each mean has norm about
    ``separation`` whatever ``dim`` is, and two means are about ``separation * sqrt(2)`` apart.
    Means, train set and test set use three generators derived from ``seed``, so changing
    ``n_train`` does not change the class means or the test set.

    Args:
        n_train: number of train examples (drawn, not subset: the whole split is this size);
            ``None`` means the default, 1000, so a caller can pass ``None`` to every factory.
        n_test: number of test examples (``None``: 500).
        dim: input dimension.
        num_classes: number of mixture components / classes.
        separation: typical norm of a class mean (larger is easier).
        noise: standard deviation of the isotropic noise around each mean.
        seed: seed of every random draw.
        label_noise: fraction of *train* labels replaced by a different class chosen at random
            (test labels stay clean).
        flatten: accepted for a uniform interface; the inputs are already ``[N, dim]``.

    Returns:
        The dataset; inputs are not re-standardised (they are unit-scale by construction).
    """
    n_train = _DEFAULT_N_TRAIN if n_train is None else n_train
    n_test = _DEFAULT_N_TEST if n_test is None else n_test
    _check_args(n_train, n_test, dim, num_classes, noise, label_noise)
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(num_classes, dim, generator=gen) * (separation / dim**0.5)
    seed_train, seed_test = torch.randint(0, 2**62, (2,), generator=gen).tolist()
    gen_train = torch.Generator().manual_seed(seed_train)
    x_train, y_train = _sample(means, n_train, noise, gen_train)
    y_train, n_flip = _corrupt_labels(y_train, label_noise, num_classes, gen_train)
    x_test, y_test = _sample(means, n_test, noise, torch.Generator().manual_seed(seed_test))

    noise_note = f", {n_flip} train labels ({label_noise:g}) replaced by another class" if n_flip else ""
    description = (
        f"synthetic Gaussian mixture ({num_classes} classes, dim {dim}, "
        f"separation {separation:g}, noise {noise:g}, seed {seed}), "
        f"train: {n_train}, test: {n_test}{noise_note}; no normalisation"
    )
    return Dataset(
        name="synthetic",
        x_train=maybe_flatten(x_train, flatten),
        y_train=y_train,
        x_test=maybe_flatten(x_test, flatten),
        y_test=y_test,
        num_classes=num_classes,
        idx_train=torch.arange(n_train),
        idx_test=torch.arange(n_test),
        description=description,
        normalization={"kind": "none", "note": "unit-scale by construction"},
    )
