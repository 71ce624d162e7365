"""VGG-16 for CIFAR (kuangliu style) with BN or ND (the original code's ``models/vgg.py``).

cfg 64,64,M,128,128,M,256×3,M,512×3,M,512×3,M; every conv 3×3 padding 1 followed by its norm and
a ReLU; 2×2 max pools; the kuangliu ``AvgPool2d(1)`` is a no-op at 32×32 (here a global average
pool, the same thing on the final 1×1 map); Linear 512 → classes. ND: the first conv is
``FastDeconv(freeze=True, n_iter=15)``; every other conv + BN is one FastDeconv.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["VGG", "vgg16", "VGG16_CFG"]

VGG16_CFG: tuple[int | str, ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)
FIRST_LAYER = {"freeze": True, "n_iter": 15}


def vgg_features(
    cfg: tuple[int | str, ...], in_ch: int, make: Layers, first: dict[str, Any]
) -> tuple[nn.Sequential, int]:
    """The conv stack of a VGG config and its output channels; ``first`` overrides the first conv (ND)."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = make.ch(int(v))
        layers += [make.conv_norm(in_ch, out, 3, 1, 1, **(first if not layers else {})), nn.ReLU()]
        in_ch = out
    return nn.Sequential(*layers), in_ch


class VGG(nn.Module):
    """VGG conv stack, global pool, one linear classifier (CIFAR)."""

    def __init__(self, cfg: tuple[int | str, ...], in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        self.features, ch = vgg_features(cfg, in_ch, make, FIRST_LAYER)
        self.classifier = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(global_pool(self.features(x)))


@register("model", "vgg16")
def vgg16(input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any) -> VGG:
    """VGG-16 (Table 1, Params 14.71M; the ND network has 14,719,818); ``norm`` bn or nd; ``kw``:
    ``fc_block`` and FastDeconv hyper-parameters (common.DECONV_ARGS)."""
    return VGG(VGG16_CFG, check_input(input_shape, "vgg16"), num_classes, Layers(norm, width, **kw))
