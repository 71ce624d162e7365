"""The one part of the Batch Normalization study that restudy does not have: the sigmoid MLP of
Ioffe & Szegedy (2015), §4.1.

The built-in ``fc`` model is a ReLU network with He initialization; §4.1's network computes
``y = g(Wu + b)`` with the sigmoid as ``g`` and weights "initialized to small random Gaussian
values". restudy imports this module (the study file's ``module: batchnorm_parts``) before it plans
the runs, and each worker imports it before it builds a run.
"""

import math

from torch import nn

from restudy.api import register


@register("model", "sigmoid_mlp")
def sigmoid_mlp(input_shape, num_classes, hidden: int = 3, width: int = 100, norm: str = "none", init_std: float = 0.1):
    """Fully connected sigmoid network: ``hidden`` layers of ``width`` units, then a linear classifier.

    With ``norm: bn`` every hidden layer computes ``sigmoid(BN(Wu))``: Batch Normalization before
    the nonlinearity and no bias, whose role BN's shift takes over (§3.2); without it,
    ``sigmoid(Wu + b)``. Weights are drawn from N(0, init_std²), biases start at zero. The engine
    builds the model under the run's ``init`` seed, so torch's global generator is the run's own.

    Args:
        hidden: number of hidden layers (§4.1: 3).
        width: units per hidden layer (§4.1: 100).
        norm: "none", or "bn" for BatchNorm1d before every sigmoid.
        init_std: standard deviation of the Gaussian initial weights.
    """
    if norm not in ("none", "bn"):
        raise ValueError(f"norm must be 'none' or 'bn', not {norm!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    n_in = math.prod(input_shape)
    for _ in range(hidden):
        layers.append(nn.Linear(n_in, width, bias=norm == "none"))
        if norm == "bn":
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.Sigmoid())
        n_in = width
    layers.append(nn.Linear(n_in, num_classes))
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, init_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


sigmoid_mlp.display_name = "sigmoid MLP"  # how the report names it
