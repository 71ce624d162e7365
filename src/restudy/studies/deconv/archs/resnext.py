"""ResNeXt-29 (32×4d) for CIFAR (kuangliu style) with BN or ND (the original code's ``models/resnext.py``).

Stem: 1×1 conv 3 → 64 + norm + ReLU (ND: ``FastDeconv(freeze=True, n_iter=10)``). Three stages of
three bottlenecks, strides 1/2/2; the bottleneck width doubles every stage (4 → 8 → 16 channels per
group, 32 groups). Block: ``relu(cn1)`` 1×1 → 32·w, ``relu(cn2)`` 3×3 **groups=32** (ND: per-group
whitening, ``n_iter=3``), ``cn3`` 1×1 → 2·32·w, plus the shortcut (1×1 conv-norm when the shape
changes), then ReLU. Global average pool (kuangliu ``avg_pool2d(8)`` on the final 8×8 map), linear.
``width`` scales the per-group bottleneck width and the stem; the 32 groups stay.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["ResNeXt", "resnext29_32x4d"]


class Block(nn.Module):
    def __init__(self, in_ch: int, cardinality: int, group_width: int, stride: int, make: Layers) -> None:
        super().__init__()
        inner = cardinality * group_width
        out = 2 * inner
        self.cn1 = make.conv_norm(in_ch, inner, 1)
        self.cn2 = make.conv_norm(inner, inner, 3, stride, 1, groups=cardinality, n_iter=3)
        self.cn3 = make.conv_norm(inner, out, 1)
        project = stride != 1 or in_ch != out
        self.shortcut = make.conv_norm(in_ch, out, 1, stride) if project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cn3(F.relu(self.cn2(F.relu(self.cn1(x)))))
        return F.relu(out + self.shortcut(x))


class ResNeXt(nn.Module):
    def __init__(
        self, blocks: tuple[int, ...], cardinality: int, bottleneck: int, in_ch: int, num_classes: int, make: Layers
    ) -> None:
        super().__init__()
        ch = make.ch(64)
        self.stem = make.conv_norm(in_ch, ch, 1, freeze=True, n_iter=10)
        group_width = make.ch(bottleneck)
        layers = []
        for i, n in enumerate(blocks):
            for j in range(n):
                layers.append(Block(ch, cardinality, group_width, 2 if i > 0 and j == 0 else 1, make))
                ch = 2 * cardinality * group_width
            group_width *= 2
        self.layers = nn.Sequential(*layers)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.layers(F.relu(self.stem(x)))))


@register("model", "resnext29_32x4d")
def resnext29_32x4d(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> ResNeXt:
    """CIFAR ResNeXt-29 32×4d (Table 1, Params 4.76M: the ND network's count); ``norm`` bn or nd."""
    make = Layers(norm, width, **kw)
    return ResNeXt((3, 3, 3), 32, 4, check_input(input_shape, "resnext29_32x4d"), num_classes, make)
