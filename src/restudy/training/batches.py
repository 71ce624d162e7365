"""Batch-wise data augmentation driven by an explicit generator (the ``augment`` stream).

Augmentations act on whole batches of in-memory tensors; they draw only from the generator they
are given, so the augmentation stream is independent of data order and initialisation. They are
registered by name (kind ``augment``: ``none``, ``flip``, ``crop``, ``flip_crop`` here), as models
and datasets are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import plugins
from ..errors import RestudyError
from ..plugins import register

Augment = Callable[[torch.Tensor], torch.Tensor]


def random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Flip each image (N, C, H, W) horizontally with probability 1/2."""
    mask = torch.rand(x.shape[0], generator=g, device=g.device) < 0.5
    mask = mask.to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def random_crop(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random translation by up to ``pad`` pixels with zero padding (RandomCrop(size, padding=pad))."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=g, device=g.device).to(x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]  # (n, w)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


@register("augment", "none")
def no_augment(generator: torch.Generator, pad: int) -> None:
    """No augmentation: the training loop uses the batch as it is."""
    return None


@register("augment", "flip")
def flip(generator: torch.Generator, pad: int) -> Augment:
    """Horizontal flip of each image with probability 1/2 (``pad`` is not used)."""
    return _images(lambda x: random_flip(x, generator))


@register("augment", "crop")
def crop(generator: torch.Generator, pad: int) -> Augment:
    """Random translation by up to ``pad`` pixels with zero padding."""
    return _images(lambda x: random_crop(x, generator, pad))


@register("augment", "flip_crop")
def flip_crop(generator: torch.Generator, pad: int) -> Augment:
    """Random crop (translation by up to ``pad`` pixels), then horizontal flip; both draw from
    ``generator``, in that order."""
    return _images(lambda x: random_flip(random_crop(x, generator, pad), generator))


def _images(fn: Augment) -> Augment:
    """``fn`` for batches of images (N, C, H, W) only, with a clear error for other inputs."""

    def augment(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise RestudyError("image augmentation needs (N, C, H, W) inputs", where="augment", got=tuple(x.shape))
        return fn(x)

    return augment


def make_augment(name: str, g: torch.Generator, pad: int) -> Augment | None:
    """The batch augmentation registered as ``name`` (kind ``augment``), drawing from ``g``; None
    when the batch is used as it is (``"none"``).

    An augmentation is a factory ``fn(generator, pad) -> callable(batch) -> batch | None``; a study
    module registers its own with ``@register("augment", name)``.

    Raises:
        RestudyError: no augmentation is registered as ``name`` (the error lists the known ones).
    """
    return plugins.create("augment", name, generator=g, pad=pad)
