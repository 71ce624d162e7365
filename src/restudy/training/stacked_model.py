"""K fully connected nets as one batched model (:class:`StackedMLP`): every weight and buffer
carries the model index as its first dimension, each net keeps its own BatchNorm statistics
(:class:`StackedBatchNorm`), and a forward pass is one ``bmm`` per layer. Built from K ``fc``
models and read back slice by slice, so a stacked run's weights are those of the model it stands
for. Which runs may be stacked, and how a stack is built and run: :mod:`restudy.execution.stacked`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RestudyError


class StackedBatchNorm(nn.Module):
    """K ``BatchNorm1d(width)`` side by side, each with its own batch statistics.

    The input ``[K, B, W]`` is laid out as ``[B, K·W]``: one ``batch_norm`` call then normalises
    each (model, channel) column over that model's own batch, exactly as K separate layers would.
    """

    def __init__(self, norms: Sequence[nn.BatchNorm1d]) -> None:
        super().__init__()
        first = norms[0]
        if not (first.affine and first.track_running_stats) or first.momentum is None:
            raise RestudyError(
                "only affine BatchNorm1d with running statistics and a fixed momentum can be stacked",
                where="model.norm",
            )
        self.momentum = float(first.momentum)
        self.eps = float(first.eps)
        self.weight = nn.Parameter(torch.stack([n.weight.detach() for n in norms]).clone())
        self.bias = nn.Parameter(torch.stack([n.bias.detach() for n in norms]).clone())
        self.register_buffer("running_mean", torch.stack([n.running_mean for n in norms]).clone())
        self.register_buffer("running_var", torch.stack([n.running_var for n in norms]).clone())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        k, b, w = h.shape
        flat = h.transpose(0, 1).reshape(b, k * w)
        # view(-1) of the buffers: batch_norm updates the running statistics in place.
        out = F.batch_norm(
            flat,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.view(-1),
            self.bias.view(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        return out.view(b, k, w).transpose(0, 1)

    def eval_one(self, k: int, h: torch.Tensor) -> torch.Tensor:
        """Model ``k``'s layer in eval mode (running statistics) on ``[B, W]``."""
        return F.batch_norm(
            h, self.running_mean[k], self.running_var[k], self.weight[k], self.bias[k], False, 0.0, self.eps
        )


def _fc_layout(model: nn.Module) -> list[tuple[nn.Linear, nn.BatchNorm1d | None]]:
    """(Linear, BatchNorm or None) per layer of an ``fc`` net: Flatten, (Linear [BN] ReLU)*, Linear.

    Raises:
        RestudyError: the module does not have that layout.
    """
    mods = list(model.children())
    bad = RestudyError(
        "model is not an fc net (Flatten, Linear [BatchNorm1d] ReLU ..., Linear)",
        where="model",
        got=[type(m).__name__ for m in mods],
    )
    if not mods or not isinstance(mods[0], nn.Flatten):
        raise bad
    layers: list[tuple[nn.Linear, nn.BatchNorm1d | None]] = []
    i = 1
    while i < len(mods):
        if not isinstance(mods[i], nn.Linear):
            raise bad
        lin, i = mods[i], i + 1
        norm = mods[i] if i < len(mods) and isinstance(mods[i], nn.BatchNorm1d) else None
        i += norm is not None
        if i < len(mods):  # a hidden layer ends with its ReLU
            if not isinstance(mods[i], nn.ReLU):
                raise bad
            i += 1
        elif norm is not None:
            raise bad
        layers.append((lin, norm))
    return layers


class StackedMLP(nn.Module):
    """K ``fc`` nets of one architecture as batched matmuls.

    Attributes:
        weights: per layer, ``[K, in, out]`` (the transposed ``nn.Linear`` weights).
        biases: per layer, ``[K, 1, out]``; empty when the nets have no bias.
        norms: per hidden layer, a :class:`StackedBatchNorm`; empty without BatchNorm.
    Input: ``[K, B, features]``; output: logits ``[K, B, classes]``.
    """

    def __init__(
        self,
        weights: Sequence[torch.Tensor],
        biases: Sequence[torch.Tensor] = (),
        norms: Sequence[StackedBatchNorm] = (),
    ) -> None:
        super().__init__()
        if (biases and len(biases) != len(weights)) or (norms and len(norms) != len(weights) - 1):
            raise RestudyError(
                "one bias per layer and one norm per hidden layer, or none", got=(len(weights), len(biases), len(norms))
            )
        self.weights = nn.ParameterList([nn.Parameter(w) for w in weights])
        self.biases = nn.ParameterList([nn.Parameter(b) for b in biases])
        self.norms = nn.ModuleList(norms)

    @classmethod
    def from_models(cls, models: Sequence[nn.Module]) -> StackedMLP:
        """Stack (copies of) the weights of K ``fc`` nets of the same architecture."""
        layouts = [_fc_layout(m) for m in models]
        shapes = {
            tuple((tuple(lin.weight.shape), lin.bias is not None, bn is not None) for lin, bn in lay) for lay in layouts
        }
        if len(shapes) != 1:
            raise RestudyError("the stacked nets differ in architecture", got=sorted(shapes))
        n_layers = len(layouts[0])
        weights = [
            torch.stack([lay[i][0].weight.detach().t() for lay in layouts]).contiguous() for i in range(n_layers)
        ]
        biases = (
            [torch.stack([lay[i][0].bias.detach()[None, :] for lay in layouts]).clone() for i in range(n_layers)]
            if layouts[0][0][0].bias is not None
            else []
        )
        norms = (
            [StackedBatchNorm([lay[i][1] for lay in layouts]) for i in range(n_layers - 1)]
            if layouts[0][0][1] is not None
            else []
        )
        return cls(weights, biases, norms)

    @property
    def size(self) -> int:
        """K, the number of stacked models."""
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        h = x
        for i, w in enumerate(self.weights):
            h = torch.baddbmm(self.biases[i], h, w) if self.biases else torch.bmm(h, w)
            if i < last:
                h = torch.relu(self.norms[i](h) if self.norms else h)
        return h

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits ``[K, N, classes]`` of every model for every row of ``x``, as in eval mode
        (BatchNorm uses its running statistics), whatever the module's mode.

        One model at a time with plain matmuls: at evaluation's large batches the per-op overhead
        that stacking saves is small, and one model's activations stay in cache while a stack's
        ``[K, batch, width]`` ones do not (measured 2x faster than the stacked forward).
        """
        flat = x.reshape(x.shape[0], -1)
        return torch.stack(
            [
                torch.cat([self._forward_one(k, flat[i : i + batch_size]) for i in range(0, flat.shape[0], batch_size)])
                for k in range(self.size)
            ]
        ).float()

    @torch.no_grad()
    def features(self, k: int, x: torch.Tensor) -> torch.Tensor:
        """Model ``k``'s penultimate features (the input of its last layer), as
        :func:`restudy.execution.worker.penultimate_features` gives for the single-run path."""
        return self._forward_one(k, x.reshape(x.shape[0], -1), penultimate=True).float()

    def _forward_one(self, k: int, h: torch.Tensor, penultimate: bool = False) -> torch.Tensor:
        """Model ``k`` alone on ``[B, in]`` (BatchNorm with running statistics: eval only)."""
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            if penultimate and i == last:
                return h
            h = torch.addmm(self.biases[i][k, 0], h, w[k]) if self.biases else h @ w[k]
            if i < last:
                h = torch.relu(self.norms[i].eval_one(k, h) if self.norms else h)
        return h

    def _slices(self) -> list[torch.Tensor]:
        """Every parameter and buffer; all have the model index as their first dimension."""
        return list(self.parameters()) + list(self.buffers())

    @torch.no_grad()
    def slice_state(self, k: int) -> list[torch.Tensor]:
        """A copy of model ``k``'s parameters and buffers (in :meth:`_slices` order)."""
        return [t[k].clone() for t in self._slices()]

    @torch.no_grad()
    def load_slice(self, k: int, state: Sequence[torch.Tensor]) -> None:
        """Write a :meth:`slice_state` back into model ``k``."""
        for t, s in zip(self._slices(), state):
            t[k].copy_(s)

    @torch.no_grad()
    def zero_slice(self, k: int) -> None:
        """Set model ``k``'s parameters and buffers to zero."""
        for t in self._slices():
            t[k].zero_()

    def linear_weights(self, k: int) -> list[torch.Tensor]:
        """Model ``k``'s weights in ``nn.Linear`` layout ``[out, in]`` (views)."""
        return [w[k].t() for w in self.weights]
