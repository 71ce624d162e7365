"""The ImageNet networks of Table 2 (torchvision layouts) with BN, ND or, for VGG-11, no norm.

* ``vgg11_imagenet`` -- VGG-11 (config A: 64,M,128,M,256,256,M,512,512,M,512,512,M), 3×3 convs
  with their norm and ReLU, adaptive average pool to 7×7, classifier Linear 25088 → 4096, ReLU,
  Dropout, Linear 4096 → 4096, ReLU, Dropout, Linear 4096 → classes. ``norm="none"`` is "VGG-11 w/o
  BN" (convs with bias); ND's first conv is ``FastDeconv(freeze=True, n_iter=15)``.
* ``resnet18_imagenet`` -- 7×7 stride-2 stem conv-norm + ReLU + 3×3 stride-2 max pool, BasicBlocks
  [2,2,2,2] of widths 64/128/256/512 with 1×1 conv-norm projections, global average pool, linear.
* ``densenet121_imagenet`` -- 7×7 stride-2 stem conv-norm + ReLU + max pool, dense blocks
  [6,12,24,16] with growth 32 (bottleneck BN-ReLU-conv1×1 → 128, BN-ReLU-conv3×3 → 32), transitions
  BN-ReLU-conv1×1 (halving) + 2×2 average pool, a final norm + ReLU, global pool, linear.

ND (the original ``main_imagenet.py`` and ``models/*_imagenet.py``): the stem is
``FastDeconv(freeze=True, n_iter=15)``; every other conv + BN a FastDeconv. Assumption, not read
from the original: every ``nn.Linear`` of a classifier becomes ``Delinear(block=fc_block)`` with
``fc_block=64`` (the ImageNet command's ``--block-fc 64``).
Initialisation as torchvision's: convs Kaiming-normal (fan_out, ReLU), norm weight 1 / bias 0, VGG's
linears N(0, 0.01) with bias 0. Smallest input: 32×32 (five stride-2 steps; VGG's adaptive pool
then repeats the 1×1 map to 7×7).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool
from .densenet import Bottleneck, Transition
from .resnet import BasicBlock
from .vgg import vgg_features

__all__ = [
    "ImageNetVGG",
    "ImageNetResNet",
    "ImageNetDenseNet",
    "vgg11_imagenet",
    "resnet18_imagenet",
    "densenet121_imagenet",
]

VGG11_CFG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
STEM = {"freeze": True, "n_iter": 15}
FC_BLOCK = 64


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class ImageNetVGG(nn.Module):
    def __init__(self, cfg: tuple[int | str, ...], in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        self.features, ch = vgg_features(cfg, in_ch, make, STEM)
        hidden = make.ch(4096)
        self.classifier = nn.Sequential(
            make.linear(ch * 49, hidden),
            nn.ReLU(),
            nn.Dropout(),
            make.linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(),
            make.linear(hidden, num_classes),
        )
        _init(self)
        for m in self.classifier.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 7), 1)
        return self.classifier(x)


class ImageNetResNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        ch = make.ch(64)
        self.stem = make.conv_norm(in_ch, ch, 7, 2, 3, **STEM)
        layers = []
        for i, (n, w) in enumerate(zip(blocks, (64, 128, 256, 512))):
            out = make.ch(w)
            for j in range(n):
                layers.append(BasicBlock(ch, out, 2 if i > 0 and j == 0 else 1, make))
                ch = out
        self.layers = nn.Sequential(*layers)
        self.fc = make.linear(ch, num_classes)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
        return self.fc(global_pool(self.layers(x)))


class ImageNetDenseNet(nn.Module):
    def __init__(self, blocks: tuple[int, ...], growth: int, in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        growth = make.ch(growth)
        ch = 2 * growth
        self.stem = make.conv_norm(in_ch, ch, 7, 2, 3, **STEM)
        stages: list[nn.Module] = []
        for i, n in enumerate(blocks):
            for _ in range(n):
                stages.append(Bottleneck(ch, growth, make))
                ch += growth
            if i < len(blocks) - 1:
                stages.append(Transition(ch, ch // 2, make))
                ch //= 2
        self.features = nn.Sequential(*stages)
        self.head = make.pre(ch)
        self.classifier = make.linear(ch, num_classes)
        _init(self)
        if isinstance(self.classifier, nn.Linear):
            nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
        return self.classifier(global_pool(self.head(self.features(x))))


@register("model", "vgg11_imagenet")
def vgg11_imagenet(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> ImageNetVGG:
    """VGG-11 for ImageNet (Table 2); ``norm`` bn, nd or none ("w/o BN"); 132.87M parameters with
    BN, 132.86M without."""
    kw.setdefault("fc_block", FC_BLOCK)
    make = Layers(norm, width, allowed=("bn", "nd", "none"), **kw)
    return ImageNetVGG(VGG11_CFG, check_input(input_shape, "vgg11_imagenet"), num_classes, make)


@register("model", "resnet18_imagenet")
def resnet18_imagenet(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> ImageNetResNet:
    """ResNet-18 for ImageNet (Table 2, 11.69M parameters); ``norm`` bn or nd."""
    kw.setdefault("fc_block", FC_BLOCK)
    return ImageNetResNet(
        (2, 2, 2, 2), check_input(input_shape, "resnet18_imagenet"), num_classes, Layers(norm, width, **kw)
    )


@register("model", "densenet121_imagenet")
def densenet121_imagenet(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> ImageNetDenseNet:
    """DenseNet-121 for ImageNet (Table 2, 7.98M parameters); ``norm`` bn or nd."""
    kw.setdefault("fc_block", FC_BLOCK)
    make = Layers(norm, width, **kw)
    return ImageNetDenseNet((6, 12, 24, 16), 32, check_input(input_shape, "densenet121_imagenet"), num_classes, make)
