"""The randomization tests of Zhang et al. (ICLR 2017, Sec. 2.1) as data transforms (registry kind
``transform``), applied once to a loaded data set before training and drawing from the run's
``data`` seed stream (``restudy.training.build.load_data``); they compose with any data set the engine knows.

* ``corrupt_labels`` (argument ``transform.p``): independently for each *training* example, with
  probability p, the label is replaced by a class drawn uniformly from all classes (it may equal
  the true one, so about (1 − 1/C)·p of the labels change). Every example's uniform draw and class
  are drawn whatever p is, so with the same seed the examples corrupted at p are a subset of those
  corrupted at any larger p.
* ``random_labels``: ``corrupt_labels`` at p = 1.
* ``shuffled_pixels``: one permutation of the pixel positions (channels kept together, epfl2024
  footnote 1), the same for every training and test image.
* ``random_pixels``: a different permutation for each image (training and test).
* ``gaussian``: every image (training and test) replaced by Gaussian noise with the per-channel
  mean and standard deviation of the training inputs (per channel is an assumption, §2.1).

Test labels are never changed. Inputs ``[N, C, H, W]`` permute the H·W positions; flat inputs
``[N, F]`` permute the F features. The transformed data set's description says what was done.
"""

from __future__ import annotations

import dataclasses

import torch

from restudy.api import Dataset, RestudyError, register

__all__ = ["corrupt_labels", "gaussian", "random_labels", "random_pixels", "shuffled_pixels"]


def _note(data: Dataset, what: str) -> str:
    return f"{data.description}; transform: {what}"


@register("transform", "corrupt_labels")
def corrupt_labels(data: Dataset, generator: torch.Generator, p: float) -> Dataset:
    """Training labels corrupted with probability ``p`` (a uniform class); test labels untouched.

    Args:
        p: the probability that a training label is replaced by a class drawn uniformly.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise RestudyError("the corruption probability must be in [0, 1]", where="transform.p", got=p)
    y = data.y_train
    draw = torch.rand(y.shape[0], generator=generator)
    new = torch.randint(0, data.num_classes, (y.shape[0],), generator=generator)
    y_new = torch.where(draw < p, new, y)
    changed = int((y_new != y).sum())
    what = f"train labels corrupted with p={p:g} (uniform class): {changed} of {y.shape[0]} changed"
    return dataclasses.replace(data, y_train=y_new, description=_note(data, what))


@register("transform", "random_labels")
def random_labels(data: Dataset, generator: torch.Generator) -> Dataset:
    """Every training label replaced by a uniform random class (``corrupt_labels`` at p = 1)."""
    return corrupt_labels(data, generator, 1.0)


def _positions(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``x`` as ``[N, C, P]`` (P positions, channels kept together) and P."""
    flat = x.reshape(x.shape[0], x.shape[1], -1) if x.dim() >= 3 else x.reshape(x.shape[0], 1, -1)
    return flat, flat.shape[2]


@register("transform", "shuffled_pixels")
def shuffled_pixels(data: Dataset, generator: torch.Generator) -> Dataset:
    """One permutation of pixel positions, applied to every training and test image."""
    xtr, n_pos = _positions(data.x_train)
    perm = torch.randperm(n_pos, generator=generator)
    xte, _ = _positions(data.x_test)
    return dataclasses.replace(
        data,
        x_train=xtr[:, :, perm].reshape(data.x_train.shape).contiguous(),
        x_test=xte[:, :, perm].reshape(data.x_test.shape).contiguous(),
        description=_note(data, f"pixels shuffled by one permutation of {n_pos} positions (train and test)"),
    )


shuffled_pixels.seeded_inputs = True  # type: ignore[attr-defined]


def _permute_each(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flat, n_pos = _positions(x)
    perms = torch.argsort(torch.rand(flat.shape[0], n_pos, generator=generator), dim=1)
    idx = perms.unsqueeze(1).expand(-1, flat.shape[1], -1)
    return torch.gather(flat, 2, idx).reshape(x.shape).contiguous()


@register("transform", "random_pixels")
def random_pixels(data: Dataset, generator: torch.Generator) -> Dataset:
    """A different permutation of pixel positions for every training and test image."""
    return dataclasses.replace(
        data,
        x_train=_permute_each(data.x_train, generator),
        x_test=_permute_each(data.x_test, generator),
        description=_note(data, "pixels permuted by a different permutation per image (train and test)"),
    )


random_pixels.seeded_inputs = True  # type: ignore[attr-defined]


def channel_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of ``[N, C, ...]`` inputs (one channel for flat
    inputs), in float64."""
    flat, _ = _positions(x)
    v = flat.double().transpose(0, 1).reshape(flat.shape[1], -1)
    return v.mean(1), v.std(1, correction=0)


@register("transform", "gaussian")
def gaussian(data: Dataset, generator: torch.Generator) -> Dataset:
    """Every image replaced by Gaussian noise with the training inputs' per-channel mean and std."""
    mean, std = channel_moments(data.x_train)

    def noise(x: torch.Tensor) -> torch.Tensor:
        flat, _ = _positions(x)
        z = torch.randn(flat.shape, generator=generator, dtype=torch.float64)
        return (z * std.view(1, -1, 1) + mean.view(1, -1, 1)).float().reshape(x.shape).contiguous()

    what = "images replaced by Gaussian noise with the train inputs' per-channel mean and std (train and test)"
    return dataclasses.replace(
        data, x_train=noise(data.x_train), x_test=noise(data.x_test), description=_note(data, what)
    )


gaussian.seeded_inputs = True  # type: ignore[attr-defined]
