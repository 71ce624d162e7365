"""The paper's preprocessing (Zhang et al., ICLR 2017, Appendix A): pixels on [0, 1], center crop
28×28 from 32×32, per-image whitening as TensorFlow's ``per_image_whitening``, registered as the
data set ``cifar10_zhang`` (CIFAR-10 read from disk by the engine's ``cifar10`` loader, then
preprocessed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from restudy.api import Dataset, RestudyError, create, register

__all__ = ["center_crop", "cifar10_zhang", "whiten"]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size``×``size`` window of images ``[N, C, H, W]`` (offset (H − size) // 2)."""
    h, w = x.shape[-2:]
    if not 1 <= size <= min(h, w):
        raise RestudyError("crop size must fit the image", where="data.crop", got=size, allowed=f"1..{min(h, w)}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size].contiguous()


def whiten(x: torch.Tensor) -> torch.Tensor:
    """Per image: (x − mean(x)) / max(std(x), 1/√n), n the values per image, population std."""
    flat = x.reshape(x.shape[0], -1).double()
    n = flat.shape[1]
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, correction=0, keepdim=True).clamp_min(1.0 / math.sqrt(n))
    return ((flat - mean) / std).float().reshape(x.shape).contiguous()


@register("dataset", "cifar10_zhang")
def cifar10_zhang(crop: int = 28, **cifar_args: Any) -> Dataset:
    """CIFAR-10 as Zhang et al. feed it: pixels / 255, center crop, per-image whitening.

    Args:
        crop: the side of the center crop, in pixels (28 in the paper).
        cifar_args: the other arguments (``root``, ``n_train``, ``n_test``, ...), passed to ``cifar10``.
    """
    if "normalize" in cifar_args or "flatten" in cifar_args:
        raise RestudyError("cifar10_zhang normalizes per image itself", got=sorted(cifar_args))
    raw = create("dataset", "cifar10", normalize="none", **cifar_args)
    return dataclasses.replace(
        raw,
        name="cifar10_zhang",
        x_train=whiten(center_crop(raw.x_train, crop)),
        x_test=whiten(center_crop(raw.x_test, crop)),
        description=f"{raw.description}; center crop {crop}x{crop}, per-image whitening",
        normalization={"kind": "per_image_whitening", "note": "per_image_whitening after a center crop"},
    )
