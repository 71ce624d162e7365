"""Training-time methods: a hook the training loop runs after every ``optimizer.step()``.

The loop builds one with ``create("method", name, model=model, optimizer=opt, **args)`` and, when it
is not None, calls ``hook.step()`` after each optimizer step (as ENorm's Algorithm 2 and its original
``main.py`` do).
"""

from __future__ import annotations

import torch
from torch import nn

from ..plugins import register
from .enorm import ENorm, balanced_layers, energy

__all__ = ["ENorm", "balanced_layers", "energy", "make_enorm", "make_none"]


@register("method", "enorm")
def make_enorm(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    c: float = 1.2,
    p: float = 2,
    balance_bias: bool = True,
) -> ENorm:
    """ENorm, one balancing cycle per optimizer step (Stock et al., ICLR 2019, Algorithm 2); see :class:`ENorm`.

    Named ``make_enorm`` so that it does not shadow the ``restudy.methods.enorm`` submodule.

    Args:
        model: the network to balance.
        optimizer: its optimizer (SGD momentum buffers are rescaled with the weights).
        c: asymmetry factor; the paper's FC runs use 1.2, its conv runs 1.1 (the original README's commands).
        p: norm exponent for fully connected nets (conv nets use 2).
        balance_bias: scale biases with their unit's incoming weights (paper §3.5).

    Returns:
        The hook.
    """
    return ENorm(model, optimizer, c=c, p=p, balance_bias=balance_bias)


@register("method", "none")
def make_none(model: nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None) -> None:
    """No method: the plain baseline. The loop skips the hook.

    Args:
        model: ignored.
        optimizer: ignored.

    Returns:
        None.
    """
    return None
