"""EfficientNet-B0 for CIFAR as the Network Deconvolution code has it (``models/efficientnet.py``), with BN or ND.

Structure (the early kuangliu CIFAR variant): stem 3×3 stride 1 → 32 + norm + ReLU; blocks
(expansion, out, n, stride) (1,16,1,2) (6,24,2,1) (6,40,2,2) (6,80,3,2) (6,112,3,1) (6,192,4,2)
(6,320,1,2); no 1×1 head conv; the final map (1×1 at 32×32 input) is flattened into a linear
320 → classes (here through a global average pool, the same thing on a 1×1 map). Block: ``relu(cn1)``
expand 1×1, ``relu(cn2)`` depthwise 3×3, ``cn3`` project 1×1; squeeze-excitation ``w =
sigmoid(fc2(relu(fc1(avgpool(out)))))`` with 1×1 convs out → out/16 → out (with bias);
``out = out * w + shortcut``, where the shortcut at stride 1 is the input (or a 1×1 conv-norm when
the width changes) and **at stride 2 is ``out`` itself** (the original's quirk, kept).

**Quirk flag -- ``faithful_quirks=True`` (default):** in the original code only the stem becomes a
FastDeconv (``freeze=True, n_iter=10``); every MBConv block is built without deconvolution and
keeps its BatchNorm; the classifier becomes Delinear. So "ND" EfficientNet is BN blocks with a
whitened stem and classifier. ``faithful_quirks=False`` applies the general rule instead: every
conv + BN of the blocks (and the SE 1×1 convs) becomes a FastDeconv with the default settings.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["EfficientNet", "efficientnet_b0"]

B0 = ((1, 16, 1, 2), (6, 24, 2, 1), (6, 40, 2, 2), (6, 80, 3, 2), (6, 112, 3, 1), (6, 192, 4, 2), (6, 320, 1, 2))


class Block(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expansion: int, stride: int, make: Layers) -> None:
        super().__init__()
        planes = expansion * in_ch
        self.stride = stride
        self.cn1 = make.conv_norm(in_ch, planes, 1)
        self.cn2 = make.conv_norm(planes, planes, 3, stride, 1, groups=planes)
        self.cn3 = make.conv_norm(planes, out_ch, 1)
        self.shortcut = make.conv_norm(in_ch, out_ch, 1) if stride == 1 and in_ch != out_ch else nn.Identity()
        squeezed = max(1, out_ch // 16)
        self.fc1 = make.conv(out_ch, squeezed, 1, bias=True)
        self.fc2 = make.conv(squeezed, out_ch, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cn3(F.relu(self.cn2(F.relu(self.cn1(x)))))
        shortcut = self.shortcut(x) if self.stride == 1 else out
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(out, 1)))))
        return out * w + shortcut


class EfficientNet(nn.Module):
    def __init__(
        self, cfg: tuple[tuple[int, int, int, int], ...], in_ch: int, num_classes: int, make: Layers, blocks: Layers
    ) -> None:
        super().__init__()
        ch = make.ch(32)
        self.stem = make.conv_norm(in_ch, ch, 3, 1, 1, freeze=True, n_iter=10)
        layers = []
        for expansion, out, n, stride in cfg:
            out = make.ch(out)
            for j in range(n):
                layers.append(Block(ch, out, expansion, stride if j == 0 else 1, blocks))
                ch = out
        self.layers = nn.Sequential(*layers)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.layers(F.relu(self.stem(x)))))


@register("model", "efficientnet_b0")
def efficientnet_b0(
    input_shape: tuple[int, ...],
    num_classes: int,
    norm: str = "bn",
    width: float = 1.0,
    faithful_quirks: bool = True,
    **kw: Any,
) -> EfficientNet:
    """CIFAR EfficientNet-B0 of the ND code (Table 1, Params 2.91M: the ND network's count).

    Args:
        norm: "bn" or "nd".
        width: channel multiplier (> 0); 1 is the paper's network.
        faithful_quirks: as the original code, ND whitens only the stem and the classifier (module
            docstring); False whitens every convolution.
    """
    make = Layers(norm, width, **kw)
    blocks = Layers("bn", width) if norm == "nd" and faithful_quirks else make
    return EfficientNet(B0, check_input(input_shape, "efficientnet_b0"), num_classes, make, blocks)
