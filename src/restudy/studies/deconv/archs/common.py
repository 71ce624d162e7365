"""The conv-norm factory: how every Network Deconvolution architecture makes its layers with BN or ND.

One :class:`Layers` object per network decides, from ``norm``, what each layer becomes, as in
the CIFAR models of the original code (yechengxi/deconvolution, ``models/*.py``):

* ``norm="bn"`` -- the BN baseline: a bias-free ``Conv2d`` followed by ``BatchNorm2d`` (PyTorch
  defaults) and a plain ``nn.Linear`` classifier;
* ``norm="nd"`` -- network deconvolution: one ``FastDeconv(in, out, k, stride, padding, groups,
  bias=True)`` replaces each conv + BN pair (per-layer overrides such as a frozen first layer are
  passed where the architecture makes the layer), and the classifier is ``Delinear(in, classes,
  block=fc_block)``;
* ``norm="none"`` -- plain convs with bias and no normalisation (VGG-11 "w/o BN" of Table 2 only).

ReLUs stay where they were: a network calls ``relu`` around what :meth:`Layers.conv_norm` returns
exactly as the BN network does, so the two variants differ in the normalisation only.

Pre-activation designs (PreAct ResNet, SENet, DenseNet) put BN *before* a conv. For them
:meth:`Layers.pre` is ``BN + ReLU`` (bn) or ``ReLU`` (nd) and :meth:`Layers.conv` is a bias-free
conv (bn: the BN lives in ``pre``) or a FastDeconv (nd: it whitens its own input).

Width: ``width`` multiplies every channel count for CPU stand-ins; a count ``c`` becomes
``max(m, round(c * width / m) * m)`` where ``m`` is the multiple a grouped conv needs (its number of
groups; 1 otherwise). ``width=1`` is the paper's network, channel for channel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from restudy.api import Delinear, FastDeconv, RestudyError

__all__ = ["Layers", "NORMS", "DECONV_ARGS", "check_input", "count_layers", "global_pool"]

NORMS = ("bn", "nd")
# FastDeconv hyper-parameters a study may set for every deconvolution layer of a network (per-layer
# overrides of the original models/*.py still win); the defaults are the paper's values, those of the
# original arg_parser.py.
DECONV_ARGS = ("eps", "n_iter", "momentum", "block", "sampling_stride")


def check_input(input_shape: tuple[int, ...], model: str) -> int:
    """Input channels of an image input ``(C, H, W)``; a clear error otherwise."""
    if len(input_shape) != 3:
        raise RestudyError(f"{model} needs image inputs (C, H, W)", where="model", got=tuple(input_shape))
    return int(input_shape[0])


class Layers:
    """Makes a network's conv, norm and classifier layers for one ``norm`` (see the module docstring).

    Args:
        norm: ``"bn"``, ``"nd"`` or, where ``allowed`` includes it, ``"none"``.
        width: channel multiplier (> 0); 1 is the paper's network.
        fc_block: Delinear block size of the ND classifier (512 on CIFAR: the README commands' ``--block-fc 512``).
        allowed: the norms this architecture supports.
        deconv_args: FastDeconv hyper-parameters for every deconvolution layer (names in
            ``DECONV_ARGS``).
    """

    def __init__(
        self,
        norm: str,
        width: float = 1.0,
        fc_block: int = 512,
        allowed: tuple[str, ...] = NORMS,
        **deconv_args: Any,
    ) -> None:
        if norm not in allowed:
            raise RestudyError("unknown normalisation", where="model.norm", got=norm, allowed=allowed)
        if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
            raise RestudyError("width must be a positive number", where="model.width", got=width)
        unknown = sorted(set(deconv_args) - set(DECONV_ARGS))
        if unknown:
            raise RestudyError(
                "unknown model argument",
                where=f"model.{unknown[0]}",
                got=unknown[0],
                allowed=("norm", "width", "fc_block", *DECONV_ARGS),
            )
        self.norm = norm
        self.width = float(width)
        self.fc_block = int(fc_block)
        self.deconv_args = dict(deconv_args)

    # ------------------------------------------------------------------ sizes
    def ch(self, c: int, multiple: int = 1) -> int:
        """Channel count ``c`` at this width, a multiple of ``multiple`` (groups)."""
        if self.width == 1.0:
            return c
        return max(multiple, int(round(c * self.width / multiple)) * multiple)

    # ------------------------------------------------------------------ layers
    def _deconv(
        self, in_ch: int, out_ch: int, k: int, stride: int, padding: int, groups: int, **over: Any
    ) -> nn.Module:
        args = {**self.deconv_args, **over}
        return FastDeconv(in_ch, out_ch, k, stride=stride, padding=padding, groups=groups, bias=True, **args)

    def conv_norm(
        self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1, **nd: Any
    ) -> nn.Module:
        """A conv followed by its normalisation: conv + BN (bn), one FastDeconv with the per-layer
        overrides ``nd`` (nd), or a conv with bias (none)."""
        if self.norm == "nd":
            return self._deconv(in_ch, out_ch, k, stride, padding, groups, **nd)
        if self.norm == "none":
            return nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=True)
        return nn.Sequential(
            nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=False), nn.BatchNorm2d(out_ch)
        )

    def conv(
        self,
        in_ch: int,
        out_ch: int,
        k: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = False,
        **nd: Any,
    ) -> nn.Module:
        """A conv whose normalisation sits elsewhere (pre-activation designs, SE layers): a plain
        conv (``bias`` as the BN network has it) or a FastDeconv with the overrides ``nd``."""
        if self.norm == "nd":
            return self._deconv(in_ch, out_ch, k, stride, padding, groups, **nd)
        return nn.Conv2d(in_ch, out_ch, k, stride, padding, groups=groups, bias=bias or self.norm == "none")

    def pre(self, ch: int) -> nn.Module:
        """The pre-activation before a :meth:`conv`: BN + ReLU (bn) or ReLU alone (nd, none)."""
        if self.norm == "bn":
            return nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU())
        return nn.ReLU()

    def linear(self, in_features: int, out_features: int) -> nn.Module:
        """A classifier layer: ``nn.Linear`` (bn, none) or ``Delinear(block=fc_block)`` (nd)."""
        if self.norm == "nd":
            return Delinear(in_features, out_features, bias=True, block=self.fc_block)
        return nn.Linear(in_features, out_features)


def count_layers(model: nn.Module) -> dict[str, int]:
    """How many layers of each kind a network holds (by class name), e.g. ``FastDeconv``,
    ``Conv2d``, ``BatchNorm2d``, ``Delinear``, ``Linear``: what tests and reports check the
    replacement rules with."""
    counts: dict[str, int] = {}
    for m in model.modules():
        name = type(m).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pool and flatten: the kuangliu models' fixed ``avg_pool2d(4 or 8)`` on their
    last 4×4 / 8×8 map at 32×32 input, written so other input sizes work too."""
    return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
