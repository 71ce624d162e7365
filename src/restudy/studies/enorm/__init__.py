"""Equi-normalization of neural networks (Stock et al., ICLR 2019), as reproduced by the ICLR 2019
reproducibility report (document ``rep2019``): the study's parts, registered on import.

* model ``fc_softmax_output``: the engine's ``fc`` net with a softmax on its output, the change
  rep2019 §4.1 tried against the NaN loss ("We attempted to reduce this instability by adding a
  softmax to the final layer"). The training loss (cross-entropy on the net's output) then sees
  ``log_softmax(softmax(z))``, as a softmax layer placed before PyTorch's ``CrossEntropyLoss``
  does. The prediction (the arg max) is unchanged; only the gradients are.

  ENorm balances the net's ``Linear`` layers in module order, which the softmax does not change.
* run metric ``enorm_fixed_point``: whether ENorm's cycles, iterated on a trained bias-free,
  unnormalized net, reach one and the same parameterization from two function-equivalent starting
  points (the uniqueness in "a proof of convergence to a unique parameterization of the network
  that minimizes the global p norm of the weights", rep2019 §1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from restudy.api import create, register

if TYPE_CHECKING:  # torch loads only when a part is built or measured: reading the study needs none
    import torch
    from torch import nn

__all__ = ["balance_to_fixed_point", "enorm_fixed_point", "fc_softmax_output"]


@register("model", "fc_softmax_output")
def fc_softmax_output(
    input_shape: tuple[int, ...],
    num_classes: int,
    hidden: int = 1,
    width: int = 500,
    bias: bool = False,
    norm: str = "none",
    init: str = "kaiming_normal",
    generator: Any = None,
) -> nn.Sequential:
    """The ``fc`` net (same arguments, same initialization from the same generator) followed by
    ``nn.Softmax(dim=1)``: its outputs are class probabilities, not logits (rep2019 §4.1).

    Args:
        hidden: number of width→width linear layers, as ``fc``'s.
        width: units per hidden layer, as ``fc``'s.
        bias: give every Linear a bias, as ``fc``'s.
        norm: "none" or "bn", as ``fc``'s.
        init: "kaiming_normal" or "torch_default", as ``fc``'s.
        generator: random source for the initialization, as ``fc``'s.
    """
    from torch import nn

    net = create(
        "model",
        "fc",
        input_shape=input_shape,
        num_classes=num_classes,
        hidden=hidden,
        width=width,
        bias=bias,
        norm=norm,
        init=init,
        generator=generator,
    )
    net.append(nn.Softmax(dim=1))
    return net


FIXED_POINT_METRICS = ("enorm_uniqueness_gap", "enorm_energy_rise", "enorm_cycles")


def balance_to_fixed_point(
    weights: list[torch.Tensor], max_cycles: int = 5000, tol: float = 1e-12
) -> tuple[list[torch.Tensor], float, int]:
    """Iterate ENorm's rescaling (p = 2, c = 1: the global 2-norm, sum of ||W_k||^2) to its fixed
    point.

    One cycle visits the hidden layers in order; hidden unit i between W_k (its incoming row) and
    W_{k+1} (its outgoing column) is rescaled by d_i = (||W_{k+1}[:, i]||^2 / ||W_k[i, :]||^2)^(1/4),
    the exact minimizer of the energy over that layer's scalings (a block-coordinate descent, so
    the energy never rises). The net's function is unchanged (ReLU is positively homogeneous).

    Args:
        weights: the Linear weights, input layer first, each (out, in); copied, in float64.
        max_cycles: the most cycles.
        tol: stop when no unit's |log d_i| exceeds it.

    Returns:
        ``(weights at the fixed point, largest relative energy rise between cycles, cycles run)``.
    """
    import torch

    ws = [w.detach().to(torch.float64).clone() for w in weights]

    def energy() -> float:
        return float(sum((w * w).sum() for w in ws))

    rise, e_prev, cycles = -math.inf, energy(), 0
    while cycles < max_cycles:
        cycles += 1
        step = 0.0
        for k in range(len(ws) - 1):
            a = (ws[k] * ws[k]).sum(dim=1)
            b = (ws[k + 1] * ws[k + 1]).sum(dim=0)
            ok = (a > 0) & (b > 0)
            d = torch.where(ok, (b / torch.where(ok, a, 1.0)) ** 0.25, torch.ones_like(a))
            ws[k] = ws[k] * d[:, None]
            ws[k + 1] = ws[k + 1] / d[None, :]
            step = max(step, float(d.log().abs().max()))
        e = energy()
        rise = max(rise, (e - e_prev) / e_prev)
        e_prev = e
        if step < tol:
            break
    return ws, rise, cycles


@register("run_metric", "enorm_fixed_point")
def enorm_fixed_point(model: nn.Module, settings: Any = None, **_: Any) -> dict[str, float]:
    """Uniqueness of ENorm's fixed point on the trained net (bias-free, no BatchNorm: rescaling
    through a bias or a BatchNorm changes the function, and the theorem is about the weights).

    The net's Linear weights W, and W with every hidden unit rescaled by a random factor in
    [0.5, 2] (the same function; a generator with a fixed seed), are each balanced to their fixed
    point (:func:`balance_to_fixed_point`).

    Returns:
        ``enorm_uniqueness_gap``: ||W*_1 - W*_2|| / ||W*_1|| over all layers (0 at a unique fixed
        point); ``enorm_energy_rise``: the largest relative energy rise between cycles of either
        start (<= 0 when the descent is monotone); ``enorm_cycles``: the cycles the slower start needed.
    """
    import torch
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if any(m.bias is not None for m in layers) or any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()
    ):
        nan = float("nan")
        return dict.fromkeys(FIXED_POINT_METRICS, nan)
    ws = [m.weight.detach().cpu() for m in layers]
    gen = torch.Generator().manual_seed(20190506)
    moved = [w.to(torch.float64).clone() for w in ws]
    for k in range(len(moved) - 1):
        d = torch.exp((torch.rand(moved[k].shape[0], generator=gen, dtype=torch.float64) * 2 - 1) * math.log(2.0))
        moved[k] = moved[k] * d[:, None]
        moved[k + 1] = moved[k + 1] / d[None, :]
    one, rise1, c1 = balance_to_fixed_point(ws)
    two, rise2, c2 = balance_to_fixed_point(moved)
    num = math.sqrt(sum(float(((x - y) ** 2).sum()) for x, y in zip(one, two)))
    den = math.sqrt(sum(float((x * x).sum()) for x in one))
    return {
        "enorm_uniqueness_gap": num / den if den > 0 else float("nan"),
        "enorm_energy_rise": max(rise1, rise2),
        "enorm_cycles": float(max(c1, c2)),
    }


enorm_fixed_point.metrics = FIXED_POINT_METRICS  # type: ignore[attr-defined]
