"""The CPU stand-in of the Network Deconvolution study: a three-layer CNN with batch normalization
or with deconvolution, registered as model ``deconv_small_cnn``.

It follows the replacement rule of the original code's CIFAR models (``models/*.py``) on a network small
enough for the ``small`` and ``smoke`` scales:

* ``norm="bn"``: ``Conv3×3 (no bias) → BatchNorm2d → ReLU`` three times (strides 1, 2, 2; widths
  w, 2w, 4w), global average pooling, ``nn.Linear`` classifier;
* ``norm="nd"``: each conv + BN pair becomes one ``FastDeconv`` (with bias; the first layer
  ``freeze=True, n_iter=15`` as VGG-16's and SENet-18's first layers), ReLU after it, and the
  classifier a ``Delinear(block=512)``.

Initialisation is PyTorch's default, as in the original (its ``--init`` argument is unused).
"""

from __future__ import annotations

from torch import nn

from restudy.api import Delinear, FastDeconv, RestudyError, register

__all__ = ["deconv_small_cnn"]

NORMS = ("bn", "nd")


def _layer(c_in: int, c_out: int, stride: int, norm: str, first: bool) -> list[nn.Module]:
    """One conv stage: conv + BN + ReLU, or FastDeconv + ReLU."""
    if norm == "bn":
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    extra = {"freeze": True, "n_iter": 15} if first else {}
    return [FastDeconv(c_in, c_out, 3, stride, 1, bias=True, **extra), nn.ReLU()]


@register("model", "deconv_small_cnn")
def deconv_small_cnn(
    input_shape: tuple[int, int, int], num_classes: int, norm: str = "bn", width: int = 16
) -> nn.Sequential:
    """Build the stand-in CNN.

    Args:
        input_shape: (C, H, W) of one example (H, W ≥ 4: two stride-2 stages).
        num_classes: outputs of the classifier.
        norm: ``"bn"`` (batch normalization) or ``"nd"`` (network deconvolution).
        width: channels of the first stage (the next two have 2× and 4×).

    Returns:
        The network, mapping (N, C, H, W) to (N, num_classes).

    Raises:
        RestudyError: an unknown ``norm``, a non-positive ``width`` or an input that is not (C, H, W)
            with H, W ≥ 4.
    """
    if norm not in NORMS:
        raise RestudyError("unknown normalization", where="model.norm", got=norm, allowed=NORMS)
    if not isinstance(width, int) or width < 1:
        raise RestudyError("width must be a positive integer", where="model.width", got=width, allowed=">= 1")
    if len(input_shape) != 3 or min(input_shape[1:]) < 4:
        raise RestudyError(
            "deconv_small_cnn needs (C, H, W) inputs with H, W >= 4", where="model", got=tuple(input_shape)
        )
    c = input_shape[0]
    widths = [width, 2 * width, 4 * width]
    layers: list[nn.Module] = []
    for i, (c_in, c_out, stride) in enumerate(zip([c, *widths[:-1]], widths, (1, 2, 2))):
        layers += _layer(c_in, c_out, stride, norm, first=i == 0)
    head = Delinear(widths[-1], num_classes, block=512) if norm == "nd" else nn.Linear(widths[-1], num_classes)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)
