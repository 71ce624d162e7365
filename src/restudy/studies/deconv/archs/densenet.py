"""DenseNet-121 for CIFAR (kuangliu style) with BN or ND (the original code's ``models/densenet.py``).

Growth 32, dense blocks of 6/12/24/16 bottlenecks, reduction 0.5, a 3×3 stem conv to 64 channels
(bare: the first bottleneck's pre-activation normalises it; ND: a FastDeconv with the default
n_iter 5, not frozen). Bottleneck: ``conv1(pre(x))`` 1×1 → 4·growth, ``conv2(pre(·))`` 3×3 →
growth, concatenated with ``x``. Transition: ``avgpool2(conv(pre(x)))`` 1×1. Head: ``pre`` (BN +
ReLU; ND: ReLU alone), global average pool (kuangliu ``avg_pool2d(4)`` on the final 4×4 map),
linear. ``pre`` = BN + ReLU (bn) or ReLU (nd).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["DenseNet", "densenet121"]


class Bottleneck(nn.Module):
    def __init__(self, in_ch: int, growth: int, make: Layers) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            make.pre(in_ch),
            make.conv(in_ch, 4 * growth, 1),
            make.pre(4 * growth),
            make.conv(4 * growth, growth, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch(x), x], 1)


class Transition(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, make: Layers) -> None:
        super().__init__()
        self.body = nn.Sequential(make.pre(in_ch), make.conv(in_ch, out_ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.body(x), 2)


class DenseNet(nn.Module):
    """CIFAR DenseNet-BC: stem, dense blocks with transitions, pre-activation head, linear."""

    def __init__(
        self, blocks: tuple[int, ...], growth: int, reduction: float, in_ch: int, num_classes: int, make: Layers
    ) -> None:
        super().__init__()
        growth = make.ch(growth)
        ch = 2 * growth
        self.stem = make.conv(in_ch, ch, 3, 1, 1)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            for _ in range(n):
                stages.append(Bottleneck(ch, growth, make))
                ch += growth
            if i < len(blocks) - 1:
                out = int(math.floor(ch * reduction))
                stages.append(Transition(ch, out, make))
                ch = out
        self.features = nn.Sequential(*stages)
        self.head = make.pre(ch)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.head(self.features(self.stem(x)))))


@register("model", "densenet121")
def densenet121(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> DenseNet:
    """CIFAR DenseNet-121 (Table 1, Params 6.88M: the ND network's count); ``norm`` bn or nd;
    ``width`` scales the growth rate."""
    make = Layers(norm, width, **kw)
    return DenseNet((6, 12, 24, 16), 32, 0.5, check_input(input_shape, "densenet121"), num_classes, make)
