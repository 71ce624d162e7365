"""The CIFAR-10 networks of Zhang et al. (ICLR 2017), Small Inception and Small AlexNet
(Appendix A, Fig. 3; parameter counts of Table 1), registered as models ``small_inception`` and ``small_alexnet``.

Both take 28×28×3 inputs at paper size and reproduce the paper's parameter counts exactly with
``width=1`` (Small Inception 1,649,402 without BN parameters; Small AlexNet 1,387,786). The MLPs
(1×512: 1,209,866; 3×512: 1,735,178) are the engine's ``fc`` net with biases. ``width`` scales
every channel count for the CPU stand-in; any input size works (the spatial size is halved twice).
Initialization is PyTorch's default (the paper states none; the reproduction used PyTorch).
"""

from __future__ import annotations

import torch
from torch import nn

from restudy.api import RestudyError, register

__all__ = ["small_alexnet", "small_inception"]


def _ch(c: int, width: float) -> int:
    return max(1, round(c * width))


class ConvModule(nn.Sequential):
    """conv (with bias, 'same' padding) → BN (no learned scale/offset: the paper's count has no BN
    parameters) → ReLU (Zhang et al., Appendix A, Fig. 3)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, bn: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2)]
        if bn:
            layers.append(nn.BatchNorm2d(c_out, affine=False))
        layers.append(nn.ReLU())
        super().__init__(*layers)


class Inception(nn.Module):
    """1×1 ConvModule(ch1) ‖ 3×3 ConvModule(ch3), concatenated on channels."""

    def __init__(self, c_in: int, ch1: int, ch3: int, bn: bool) -> None:
        super().__init__()
        self.b1, self.b3 = ConvModule(c_in, ch1, 1, bn=bn), ConvModule(c_in, ch3, 3, bn=bn)
        self.out = ch1 + ch3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x)], 1)


class Downsample(nn.Module):
    """3×3 stride-2 ConvModule(ch3) ‖ 3×3 stride-2 max-pool, concatenated on channels."""

    def __init__(self, c_in: int, ch3: int, bn: bool) -> None:
        super().__init__()
        self.conv = ConvModule(c_in, ch3, 3, stride=2, bn=bn)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.out = ch3 + c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv(x), self.pool(x)], 1)


# (kind, channels): the paper's Fig. 3 sequence after the first 3×3 ConvModule(96).
_INCEPTION_PLAN = (
    ("inc", 32, 32),
    ("inc", 32, 48),
    ("down", 80),
    ("inc", 112, 48),
    ("inc", 96, 64),
    ("inc", 80, 80),
    ("inc", 48, 96),
    ("down", 96),
    ("inc", 176, 160),
    ("inc", 176, 160),
)


@register("model", "small_inception")
def small_inception(
    input_shape: tuple[int, ...],
    num_classes: int,
    bn: bool | str = True,
    width: float = 1.0,
    dropout: float = 0.0,
) -> nn.Module:
    """Small Inception (paper Fig. 3): 1,649,402 parameters at ``width=1`` on 3 channels, 10 classes.

    Args:
        bn: True (BatchNorm everywhere), False ("Inception w/o BatchNorm") or "downsample" (BN in
            the two downsample modules only: the reproduction's third model, epfl2024 §V.B, after
            its no-BN Inception stayed at chance).
        width: channel multiplier (> 0); 1 is the paper's network.
        dropout: probability that masks the output of every block (the reproduction's
            regularizer ablation, epfl2024 §V.A); 0 is none.
    """
    _check(input_shape, width, dropout, "small_inception")
    if bn not in (True, False, "downsample"):
        raise RestudyError(
            "bn must be true, false or 'downsample'",
            where="model.small_inception.bn",
            got=bn,
            allowed=(True, False, "downsample"),
        )
    everywhere = bn is True
    layers: list[nn.Module] = [ConvModule(input_shape[0], _ch(96, width), 3, bn=everywhere)]
    c = _ch(96, width)
    for kind, *chs in _INCEPTION_PLAN:
        block = (
            Inception(c, _ch(chs[0], width), _ch(chs[1], width), everywhere)
            if kind == "inc"
            else Downsample(c, _ch(chs[0], width), bool(bn))
        )
        layers.append(block)
        if dropout:
            layers.append(nn.Dropout(dropout))
        c = block.out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


@register("model", "small_alexnet")
def small_alexnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: float = 1.0,
    dropout: float = 0.0,
    lrn_size: int = 9,
    lrn_alpha: float = 0.001,
    lrn_beta: float = 0.75,
    lrn_k: float = 1.0,
) -> nn.Module:
    """Small AlexNet: two modules of conv 5×5 (64 filters) → max-pool 3×3 stride 2 → local
    response normalization, then FC 384 → FC 192 → linear; 1,387,786 parameters at ``width=1`` on
    28×28×3.

    Args:
        width: channel and unit multiplier (> 0); 1 is the paper's network.
        dropout: probability that masks the two hidden FC outputs; 0 is none.
        lrn_size, lrn_alpha, lrn_beta, lrn_k: the local response normalization's size, alpha,
            beta and k: the TensorFlow CIFAR-10 tutorial's in PyTorch's convention (an assumption,
            unverified).
    """
    _check(input_shape, width, dropout, "small_alexnet")
    c, h, w = input_shape
    k = _ch(64, width)
    f1, f2 = _ch(384, width), _ch(192, width)
    for _ in range(2):  # 'same' 5×5 convs keep the size; each pool halves it (rounding up)
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    drop = [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(
        nn.Conv2d(c, k, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.LocalResponseNorm(lrn_size, alpha=lrn_alpha, beta=lrn_beta, k=lrn_k),
        nn.Conv2d(k, k, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.LocalResponseNorm(lrn_size, alpha=lrn_alpha, beta=lrn_beta, k=lrn_k),
        nn.Flatten(),
        nn.Linear(k * h * w, f1),
        nn.ReLU(),
        *drop,
        nn.Linear(f1, f2),
        nn.ReLU(),
        *drop,
        nn.Linear(f2, num_classes),
    )


def _check(input_shape: tuple[int, ...], width: float, dropout: float, name: str) -> None:
    if len(input_shape) != 3:
        raise RestudyError(f"{name} needs image inputs (C, H, W)", where=f"model.{name}", got=tuple(input_shape))
    if not width > 0:
        raise RestudyError("width must be > 0", where=f"model.{name}.width", got=width)
    if not 0 <= dropout < 1:
        raise RestudyError("dropout must be in [0, 1)", where=f"model.{name}.dropout", got=dropout)
