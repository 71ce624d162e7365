"""Batch-wise data augmentation driven by an explicit generator (the ``augment`` stream).

Augmentations act on whole batches of in-memory tensors; they draw only from the generator they
are given, so the augmentation stream is independent of data order and initialisation.
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import RestudyError

AUGMENTATIONS = ("none", "flip", "crop", "flip_crop")


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
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])            # (n, h)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])            # (n, w)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


def make_augment(name: str, g: torch.Generator, pad: int = 4) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The batch augmentation ``name`` drawing from ``g``; None for ``"none"``."""
    if name == "none":
        return None
    if name not in AUGMENTATIONS:
        raise RestudyError("unknown augmentation", where="augment", got=name, allowed=AUGMENTATIONS)

    def augment(x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise RestudyError("image augmentation needs (N, C, H, W) inputs", where="augment",
                               got=tuple(x.shape))
        if "crop" in name:
            x = random_crop(x, g, pad)
        if "flip" in name:
            x = random_flip(x, g)
        return x

    return augment
