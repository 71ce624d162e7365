"""ResNet-18, PreAct ResNet-18 and SENet-18 for CIFAR (kuangliu style) with BN or ND (the original code's
``models/resnet.py``, ``models/preact_resnet.py``, ``models/senet.py``).

All three: 3×3 stride-1 stem to 64 channels, four stages of two blocks (widths 64/128/256/512,
strides 1/2/2/2), global average pool (the kuangliu ``avg_pool2d(4)`` on the final 4×4 map), a
linear classifier.

* ResNet-18 -- BasicBlock ``relu(cn1(x)) → cn2 → + shortcut(x) → relu``, ``cn`` a conv-norm pair
  (one FastDeconv in ND); projection shortcut 1×1 conv + BN (1×1 FastDeconv). ND first layer: the
  defaults (n_iter 5, not frozen).
* PreAct ResNet-18 -- ``out = pre(x)``; ``shortcut = conv1×1(out)`` when projecting, else ``x``;
  ``out = conv2(pre(conv1(out))) + shortcut``, ``pre`` = BN + ReLU (bn) or ReLU (nd). The stem is a
  bare conv (bn) or ``FastDeconv(freeze=True, n_iter=10)`` (nd); no norm after the last stage.
* SENet-18 -- pre-activation blocks as above plus squeeze-excitation: ``w = sigmoid(fc2(relu(fc1(
  avgpool(out)))))``, ``out = out * w + shortcut``, with fc1/fc2 1×1 convs (planes → planes/16 →
  planes, with bias) that are FastDeconv layers in ND. Stem: conv + BN + ReLU (bn),
  ``FastDeconv(freeze=True, n_iter=15)`` + ReLU (nd). Quirk worth knowing (the original
  ``models/senet.py`` with ``models/deconv.py``): the SE FastDeconv layers see 1×1 maps, so with
  sampling stride 3 their covariance comes from about a ninth of the batch and eps dominates it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restudy.api import register

from .common import Layers, check_input, global_pool

__all__ = ["ResNet", "PreActResNet", "resnet18", "preact_resnet18", "senet18"]

WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, make: Layers) -> None:
        super().__init__()
        self.cn1 = make.conv_norm(in_ch, out_ch, 3, stride, 1)
        self.cn2 = make.conv_norm(out_ch, out_ch, 3, 1, 1)
        project = stride != 1 or in_ch != out_ch
        self.shortcut = make.conv_norm(in_ch, out_ch, 1, stride) if project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.cn2(F.relu(self.cn1(x)))
        return F.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation block; with ``se`` a squeeze-excitation branch (SENet)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, make: Layers, se: bool = False) -> None:
        super().__init__()
        self.pre1 = make.pre(in_ch)
        self.conv1 = make.conv(in_ch, out_ch, 3, stride, 1)
        self.pre2 = make.pre(out_ch)
        self.conv2 = make.conv(out_ch, out_ch, 3, 1, 1)
        self.shortcut = make.conv(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else None
        self.se = se
        if se:
            squeezed = max(1, out_ch // 16)
            self.fc1 = make.conv(out_ch, squeezed, 1, bias=True)
            self.fc2 = make.conv(squeezed, out_ch, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pre1(x)
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv2(self.pre2(self.conv1(out)))
        if self.se:
            w = F.adaptive_avg_pool2d(out, 1)
            w = torch.sigmoid(self.fc2(F.relu(self.fc1(w))))
            out = out * w
        return out + shortcut


def _stages(make: Layers, block: Any, ch: int, blocks: tuple[int, ...], **kw: Any) -> tuple[nn.Sequential, int]:
    layers = []
    for i, (n, w) in enumerate(zip(blocks, WIDTHS)):
        out = make.ch(w)
        for j in range(n):
            layers.append(block(ch, out, 2 if i > 0 and j == 0 else 1, make, **kw))
            ch = out
    return nn.Sequential(*layers), ch


class ResNet(nn.Module):
    """CIFAR ResNet with BasicBlocks; stem conv-norm + ReLU."""

    def __init__(self, blocks: tuple[int, ...], in_ch: int, num_classes: int, make: Layers) -> None:
        super().__init__()
        stem = make.ch(64)
        self.stem = make.conv_norm(in_ch, stem, 3, 1, 1)
        self.layers, ch = _stages(make, BasicBlock, stem, blocks)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(global_pool(self.layers(F.relu(self.stem(x)))))


class PreActResNet(nn.Module):
    """CIFAR pre-activation ResNet (``se=False``) or SENet (``se=True``)."""

    def __init__(self, blocks: tuple[int, ...], in_ch: int, num_classes: int, make: Layers, se: bool) -> None:
        super().__init__()
        stem = make.ch(64)
        self.se = se
        if se:  # SENet: conv + BN + ReLU stem; ND first layer freeze, n_iter 15
            self.stem = make.conv_norm(in_ch, stem, 3, 1, 1, freeze=True, n_iter=15)
        else:  # PreAct: a bare conv; ND first layer freeze, n_iter 10
            self.stem = make.conv(in_ch, stem, 3, 1, 1, freeze=True, n_iter=10)
        self.layers, ch = _stages(make, PreActBlock, stem, blocks, se=se)
        self.linear = make.linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        if self.se:
            out = F.relu(out)
        return self.linear(global_pool(self.layers(out)))


@register("model", "resnet18")
def resnet18(input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any) -> ResNet:
    """CIFAR ResNet-18 (Table 1, Params 11.17M: the ND network's count); ``norm`` bn or nd."""
    return ResNet((2, 2, 2, 2), check_input(input_shape, "resnet18"), num_classes, Layers(norm, width, **kw))


@register("model", "preact_resnet18")
def preact_resnet18(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> PreActResNet:
    """CIFAR PreAct ResNet-18 (Table 1, Params 11.17M: the ND network's count); ``norm`` bn or nd."""
    make = Layers(norm, width, **kw)
    return PreActResNet((2, 2, 2, 2), check_input(input_shape, "preact_resnet18"), num_classes, make, se=False)


@register("model", "senet18")
def senet18(
    input_shape: tuple[int, ...], num_classes: int, norm: str = "bn", width: float = 1.0, **kw: Any
) -> PreActResNet:
    """CIFAR SENet-18 with pre-activation blocks (Table 1, Params 11.26M: the ND network's count); ``norm`` bn or nd."""
    make = Layers(norm, width, **kw)
    return PreActResNet((2, 2, 2, 2), check_input(input_shape, "senet18"), num_classes, make, se=True)


# How a report names the runs' models.
resnet18.display_name = "ResNet-18"  # type: ignore[attr-defined]
