"""CIFAR ResNets: ResNet-14 as in Summers & Dinneen's code (``resnet_cifar.py``) and a ResNet-34.

ResNet-14 (``resnet_cifar.py``, ``resnet14``):

* stem: 3×3 conv 3→16 (no bias) → BN → ReLU;
* three stages of 2 BasicBlocks, widths 16/32/64, strides 1/2/2 (1 + 12 + 1 = 14 layers);
* BasicBlock: conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU;
* downsampling shortcut without a 1×1 conv: take every other pixel (AvgPool2d(1, stride 2)) →
  BatchNorm2d(in) → concatenate as many zero channels to double the width;
* head: global average pool → Linear 64→classes (with bias, PyTorch's default init);
* init: convs ``kaiming_normal_(fan_out, relu)``, BN weight 1 / bias 0, and the **second BN of
  every block zero-initialised** (each residual branch starts at 0).

Parameter names keep "bn" in every BatchNorm of the blocks and the stem (``bn1``, ``bn2``) and the
downsampling BatchNorm is ``shortcut.1`` (no "bn"), so name-based parameter groups (bias and BN
scales at 0.1× lr, their ``train.py``) fall exactly where the original code's fall.

ResNet-34 (the Summers & Dinneen reproduction's Table 1: stages of 3/4/6/3 blocks, widths
64/128/256/512) was written by the reproducers themselves; its stem and shortcut are not
published, so this one uses a 3×3 stem and 1×1 conv + BN projection shortcuts (the usual CIFAR
ResNet-34) — an assumption a study must mark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RestudyError
from ..plugins import register

__all__ = ["resnet14", "resnet34", "CifarResNet"]


class ZeroPadShortcut(nn.Module):
    """Every other pixel, BatchNorm, then zero channels up to ``out_ch`` (as ``resnet_cifar.py``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.pad = out_ch - in_ch
        # An nn.Sequential so the BatchNorm is named "shortcut.1" as "downsample.1" in the original.
        self.body = nn.Sequential(nn.AvgPool2d(kernel_size=1, stride=stride), nn.BatchNorm2d(in_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return F.pad(y, (0, 0, 0, 0, 0, self.pad)) if self.pad else y


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        if stride == 1 and in_ch == out_ch:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "zero_pad":
            self.shortcut = ZeroPadShortcut(in_ch, out_ch, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem, stages of BasicBlocks, global average pool, linear head."""

    def __init__(
        self, blocks: list[int], widths: list[int], num_classes: int, in_ch: int = 3, shortcut: str = "zero_pad"
    ) -> None:
        super().__init__()
        if shortcut not in ("zero_pad", "conv"):
            raise RestudyError("unknown shortcut", where="model.shortcut", got=shortcut, allowed=("zero_pad", "conv"))
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, ch = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(ch, w, stride, shortcut))
                ch = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(ch, num_classes)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)  # residual branch starts at 0 (as resnet_cifar.py)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (after global average pooling), e.g. for CKA."""
        x = F.relu(self.bn1(self.conv1(x)))
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(x), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _check(input_shape: tuple[int, ...]) -> int:
    if len(input_shape) != 3:
        raise RestudyError("a CIFAR ResNet needs image inputs (C, H, W)", where="model", got=tuple(input_shape))
    return int(input_shape[0])


@register("model", "resnet14")
def resnet14(
    input_shape: tuple[int, ...], num_classes: int, width: int = 16, shortcut: str = "zero_pad"
) -> CifarResNet:
    """ResNet-14 of Summers & Dinneen's ``resnet_cifar.py``.

    Args:
        width: channels of the first stage; the three stages have width, 2·width, 4·width (16/32/64).
        shortcut: where the shape changes, "zero_pad" (every other pixel, BatchNorm, zero channels
            added: ``resnet_cifar.py``) or "conv" (a 1×1 strided convolution with BatchNorm).
    """
    return CifarResNet([2, 2, 2], [width, 2 * width, 4 * width], num_classes, _check(input_shape), shortcut)


@register("model", "resnet34")
def resnet34(input_shape: tuple[int, ...], num_classes: int, width: int = 64, shortcut: str = "conv") -> CifarResNet:
    """ResNet-34 for CIFAR (Summers & Dinneen, Table 1): 3/4/6/3 blocks.

    Args:
        width: channels of the first stage; the four stages have width ×1, ×2, ×4, ×8 (64/128/256/512).
        shortcut: where the shape changes, "conv" (a 1×1 strided convolution with BatchNorm) or
            "zero_pad" (every other pixel, BatchNorm, zero channels added).
    """
    return CifarResNet(
        [3, 4, 6, 3], [width, 2 * width, 4 * width, 8 * width], num_classes, _check(input_shape), shortcut
    )


# How a report names the runs' models (declared by the part; report/provenance.py reads it).
resnet14.display_name = "ResNet-14"  # type: ignore[attr-defined]
resnet34.display_name = "ResNet-34"  # type: ignore[attr-defined]
