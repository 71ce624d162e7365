"""PNASNet-A for CIFAR (kuangliu style) with BN or ND (the original code's ``models/pnasnet.py``).

Stem 3×3 → 44 + norm + ReLU (ND: ``FastDeconv(freeze=True, n_iter=10)``); 6 cells at 44 channels,
a stride-2 cell to 88, 6 cells, a stride-2 cell to 176, 6 cells; global average pool (kuangliu
``avg_pool2d(8)`` on the final 8×8 map), linear 176 → classes. Cell A: ``relu(sep(x) + pool(x))``
with ``sep`` a 7×7 conv-norm with groups = input channels (the kuangliu "SepConv"; ND: one
FastDeconv whitening each group on its own) and ``pool`` a 3×3 max pool, followed at stride 2 by a
1×1 conv-norm to the new width.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["PNASNet", "pnasnet_a"]


class CellA(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, make: Layers) -> None:
        super().__init__()
        self.stride = stride
        self.sep = make.conv_norm(in_ch, out_ch, 7, stride, 3, groups=in_ch)
        self.project = make.conv_norm(in_ch, out_ch, 1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y2 = self.project(F.max_pool2d(x, 3, self.stride, 1))
        return F.relu(self.sep(x) + y2)


class PNASNet(nn.Module):
    def __init__(self, cells: int, planes: int, in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        ch = make.ch(planes)
        self.stem = make.conv_norm(in_ch, ch, 3, 1, 1, freeze=True, n_iter=10)
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(CellA(ch, 2 * ch, 2, make))
                ch *= 2
            layers += [CellA(ch, ch, 1, make) for _ in range(cells)]
        self.layers = nn.Sequential(*layers)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.layers(F.relu(self.stem(x)))))


@register("model", "pnasnet_a")
def pnasnet_a(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> PNASNet:
    """CIFAR PNASNet-A, 6 cells per stage, 44 planes (Table 1, Params 0.13M: the ND network's count);
    ``norm`` bn or nd."""
    return PNASNet(6, 44, check_input(input_shape, "pnasnet_a"), num_classes, Layers(norm, width, **kw))
