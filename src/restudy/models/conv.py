"""A tiny bias-free CNN whose layers ENorm can balance (the conv path of the original ``enorm/enorm.py``).

``blocks × (Conv3×3 → ReLU → MaxPool2) → Conv1×1 head → global average pool → Flatten``. Every layer
between two convs is positively homogeneous, so ENorm's rescaling preserves the function (Stock et
al., ICLR 2019). Meant for tests and smoke runs, not for the paper's conv results.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import RestudyError
from ..plugins import register

__all__ = ["small_cnn"]


@register("model", "small_cnn")
def small_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    width: int = 8,
    blocks: int = 2,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Build the small CNN; block b has ``width · 2^b`` channels.

    Args:
        input_shape: (C, H, W) of one example; H and W must be ≥ 2^blocks.
        num_classes: output size (channels of the 1×1 head).
        width: channels of the first block (≥ 1).
        blocks: number of conv-ReLU-maxpool blocks (≥ 1).
        generator: random source for the He-normal initialization (None: torch's global one).

    Returns:
        The network, mapping (N, C, H, W) to (N, num_classes).

    Raises:
        RestudyError: if ``input_shape`` is not (C, H, W) or too small, or a size is not positive.
    """
    if len(input_shape) != 3 or min(input_shape[1:]) < 2 ** max(blocks, 0):
        raise RestudyError(
            "small_cnn needs input_shape (C, H, W) with H, W >= 2**blocks",
            where="model.small_cnn.input_shape",
            got=tuple(input_shape),
        )
    if width < 1 or blocks < 1 or num_classes < 1:
        raise RestudyError(
            "small_cnn needs width, blocks and num_classes >= 1",
            where="model.small_cnn",
            got={"width": width, "blocks": blocks},
        )
    layers: list[nn.Module] = []
    channels = input_shape[0]
    for b in range(blocks):
        out = width * 2**b
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2)]
        channels = out
    layers += [nn.Conv2d(channels, num_classes, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    model = nn.Sequential(*layers)
    _init_convs(model, generator)
    return model


@torch.no_grad()
def _init_convs(model: nn.Module, generator: torch.Generator | None) -> None:
    """He-normal (fan_in, ReLU) for every conv, like the FC net of the original ENorm code."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)


small_cnn.display_name = "small CNN"  # type: ignore[attr-defined]  # how a report names it
