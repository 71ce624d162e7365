"""MobileNetV2 for CIFAR (kuangliu style) with BN or ND (the original code's ``models/mobilenetv2.py``).

CIFAR strides: stem 3×3 stride 1 → 32 (ND: ``FastDeconv(freeze=True, n_iter=10)``) and the second
stage at stride 1. Blocks (expansion, out, n, stride): (1,16,1,1) (6,24,2,1) (6,32,3,2) (6,64,4,2)
(6,96,3,1) (6,160,3,2) (6,320,1,1). Block: ``relu(cn1)`` expand 1×1 → planes, ``relu(cn2)``
depthwise 3×3 (groups = planes; ND ``n_iter=1``: a 9×9 spatial whitening per channel), ``cn3``
project 1×1 (ND ``block=in_planes, n_iter=1``, ``in_planes`` being the block's input channels); at
stride 1 plus the shortcut (identity, or a 1×1 conv-norm when the width changes). Head: 1×1
320 → 1280 conv-norm + ReLU, global average pool (kuangliu ``avg_pool2d(4)``), linear.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["MobileNetV2", "mobilenetv2"]

CFG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class Block(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion: int, stride: int, make: Layers) -> None:
        super().__init__()
        planes = expansion * in_ch
        self.stride = stride
        self.cn1 = make.conv_norm(in_ch, planes, 1)
        self.cn2 = make.conv_norm(planes, planes, 3, stride, 1, groups=planes, n_iter=1)
        self.cn3 = make.conv_norm(planes, out_ch, 1, block=in_ch, n_iter=1)
        self.shortcut: nn.Module | None = None
        if stride == 1:
            self.shortcut = make.conv_norm(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cn3(F.relu(self.cn2(F.relu(self.cn1(x)))))
        return out + self.shortcut(x) if self.shortcut is not None else out


class MobileNetV2(nn.Module):
    def __init__(self, in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        ch = make.ch(32)
        self.stem = make.conv_norm(in_ch, ch, 3, 1, 1, freeze=True, n_iter=10)
        layers = []
        for expansion, out, n, stride in CFG:
            out = make.ch(out)
            for j in range(n):
                layers.append(Block(ch, out, expansion, stride if j == 0 else 1, make))
                ch = out
        self.layers = nn.Sequential(*layers)
        last = make.ch(1280)
        self.head = make.conv_norm(ch, last, 1)
        self.linear = make.linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.stem(x)))
        return self.linear(global_pool(F.relu(self.head(out))))


@register("model", "mobilenetv2")
def mobilenetv2(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> MobileNetV2:
    """CIFAR MobileNetV2 (Table 1, Params 2.28M: the ND network's count); ``norm`` bn or nd."""
    return MobileNetV2(check_input(input_shape, "mobilenetv2"), num_classes, Layers(norm, width, **kw))
