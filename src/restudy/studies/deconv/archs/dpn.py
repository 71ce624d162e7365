"""DPN-92 for CIFAR (kuangliu style) with BN or ND (the original code's ``models/dpn.py``).

Stem 3×3 stride 1 → 64 + norm + ReLU (ND: ``FastDeconv(freeze=True, n_iter=10)``). Four stages
(strides 1/2/2/2) of 3/4/20/3 dual-path bottlenecks with inner widths 96/192/384/768, residual
widths 256/512/1024/2048 and dense growth 16/32/24/128. Bottleneck: ``relu(cn1)`` 1×1 → inner,
``relu(cn2)`` 3×3 groups=32, ``cn3`` 1×1 → residual + growth; the first block of a stage projects
its input with a 1×1 conv-norm. Output: the residual parts added, the dense parts concatenated
(``[x_res + out_res, x_dense, out_dense]``), then ReLU. Global average pool (kuangliu
``avg_pool2d(4)``), linear from 2048 + 4·128 = 2560 features.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["DPN", "dpn92"]

GROUPS = 32
DPN92 = {
    "inner": (96, 192, 384, 768),
    "out": (256, 512, 1024, 2048),
    "blocks": (3, 4, 20, 3),
    "dense": (16, 32, 24, 128),
}


class Bottleneck(nn.Module):
    def __init__(self, last: int, inner: int, out: int, dense: int, stride: int, first: bool, make: Layers) -> None:
        super().__init__()
        self.out = out
        self.cn1 = make.conv_norm(last, inner, 1)
        self.cn2 = make.conv_norm(inner, inner, 3, stride, 1, groups=GROUPS)
        self.cn3 = make.conv_norm(inner, out + dense, 1)
        self.shortcut = make.conv_norm(last, out + dense, 1, stride) if first else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cn3(F.relu(self.cn2(F.relu(self.cn1(x)))))
        x = self.shortcut(x)
        d = self.out
        return F.relu(torch.cat([x[:, :d] + out[:, :d], x[:, d:], out[:, d:]], 1))


class DPN(nn.Module):
    def __init__(self, cfg: dict[str, tuple[int, ...]], in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        last = make.ch(64)
        self.stem = make.conv_norm(in_ch, last, 3, 1, 1, freeze=True, n_iter=10)
        layers = []
        for i, (inner, out, n, dense) in enumerate(zip(cfg["inner"], cfg["out"], cfg["blocks"], cfg["dense"])):
            inner, out, dense = make.ch(inner, GROUPS), make.ch(out), make.ch(dense)
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(Bottleneck(last, inner, out, dense, stride, j == 0, make))
                last = out + (j + 2) * dense
        self.layers = nn.Sequential(*layers)
        self.linear = make.linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.layers(F.relu(self.stem(x)))))


@register("model", "dpn92")
def dpn92(input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any) -> DPN:
    """CIFAR DPN-92 (Table 1, Params 34.18M: the ND network's count); ``norm`` bn or nd; ``width`` keeps 32 groups."""
    return DPN(DPN92, check_input(input_shape, "dpn92"), num_classes, Layers(norm, width, **kw))
