"""Fully connected ReLU network of the ENorm paper's CIFAR-10 experiments (Stock et al., ICLR 2019;
the original ``models/fully_connected.py``).

``Flatten → Linear(in, width) → [BN] → ReLU → hidden × (Linear(width, width) → [BN] → ReLU) →
Linear(width, num_classes)``, bias-free and He-initialized by default.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import RestudyError
from ..plugins import register

__all__ = ["fc", "NORMS", "INITS"]

NORMS = ("none", "bn")
INITS = ("kaiming_normal", "torch_default")


@register("model", "fc")
def fc(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 1,
    width: int = 500,
    bias: bool = False,
    norm: str = "none",
    init: str = "kaiming_normal",
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """The FC net of the original ``models/fully_connected.py`` and of the ICLR 2019 report
    "Reproducibility of Equi-normalization of Neural Networks": hidden + 2 linear layers in all.

    ``hidden`` is the number of width→width layers: the report's "p intermediary layers". The
    original's ``--n-layers L`` counts all linear layers, i.e. ``hidden = L - 2``
    (``FullyConnected(n_layers=L)`` in ``models/fully_connected.py``).

    Args:
        input_shape: shape of one example; it is flattened to ``prod(input_shape)`` features.
        num_classes: output size.
        hidden: number of width→width linear layers (≥ 0).
        width: units per hidden layer (≥ 1); 500 in the paper.
        bias: give every Linear a bias (zero-initialized). The paper's net has none (``bias=False``
            in the original); the reproducibility report also ran "with bias" variants.
        norm: "none", or "bn" for BatchNorm1d(width) after every non-final Linear, before its ReLU
            (the layout of the released ``models/fully_connected.py``; the report's "BN" variant).
        init: "kaiming_normal" (He: normal, fan_in, ReLU gain, std √(2/fan_in), applied to every
            Linear as the original does) or "torch_default" (PyTorch's own Linear init; biases
            still zero).
        generator: random source for the initialization (None: torch's global one).

    Returns:
        The network, an ``nn.Sequential`` starting with ``nn.Flatten()``.

    Raises:
        RestudyError: on an unknown ``norm`` or ``init`` or a non-positive size.
    """
    _check_choice("norm", norm, NORMS)
    _check_choice("init", init, INITS)
    if hidden < 0 or width < 1 or num_classes < 1:
        raise RestudyError(
            "fc needs hidden >= 0, width >= 1 and num_classes >= 1",
            where="model.fc",
            got={"hidden": hidden, "width": width, "num_classes": num_classes},
        )
    sizes = [math.prod(input_shape)] + [width] * (hidden + 1)
    layers: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers.append(nn.Linear(n_in, n_out, bias=bias))
        if norm == "bn":
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(width, num_classes, bias=bias))
    model = nn.Sequential(*layers)
    _init_linears(model, init, generator)
    return model


def _stackable(args: dict[str, Any]) -> str:
    """Why fc nets built with ``args`` cannot be trained as one stacked model ("" when they can):
    every fc net is a ReLU MLP (Linear, optional BatchNorm1d, ReLU, ..., Linear) that
    ``restudy.training.stacked_model.StackedMLP`` stacks, for each of its norms."""
    norm = args.get("norm", "none")
    return "" if norm in NORMS else f"model.norm {norm!r}: only model.norm {' or '.join(NORMS)} is stacked"


def _layer_sizes(args: dict[str, Any], input_shape: tuple[int, ...], num_classes: int) -> list[int]:
    """Widths of the net's activations, input first: [in, width, ..., width, classes]."""
    hidden, width = int(args["hidden"]), int(args["width"])
    return [math.prod(input_shape)] + [width] * (hidden + 1) + [num_classes]


# The stacked form, declared by the part (restudy.execution.stacked reads these): seeds of a tiny
# fc net train as one stacked model with batched matmuls.
fc.stackable = _stackable  # type: ignore[attr-defined]
fc.layer_sizes = _layer_sizes  # type: ignore[attr-defined]
fc.display_name = "MLP"  # type: ignore[attr-defined]  # how a report names it


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise a RestudyError naming the allowed values if ``value`` is not one of them."""
    if value not in allowed:
        raise RestudyError(f"unknown {name} for model fc", where=f"model.fc.{name}", got=value, allowed=allowed)


@torch.no_grad()
def _init_linears(model: nn.Module, init: str, generator: torch.Generator | None) -> None:
    """He-initialize every Linear weight (as the original ENorm code) and zero every bias (as the
    ENorm reproducibility report)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            if init == "kaiming_normal":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if m.bias is not None:
                m.bias.zero_()
