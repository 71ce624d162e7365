"""ENorm: equi-normalization of a ReLU network by balancing consecutive layers.

Re-implemented from Stock et al., "Equi-normalization of Neural Networks" (ICLR 2019,
arXiv:1902.10416), Algorithms 1-2, and the behaviour of the original code (facebookresearch/enorm,
``enorm/enorm.py``), without copying that code. A hidden ReLU unit j sits between two weight
matrices: its incoming weights are row j of the layer before it, its outgoing weights are column j
of the layer after it. Scaling the row by d_j > 0 and the column by 1/d_j leaves the network's
function unchanged (the paper's abstract). One ENorm *cycle* picks, for every balanced unit, the d_j
that minimizes the depth-weighted energy Σ_k c^{-p·k}·‖W_k‖_p^p over that unit's scale alone (the
original ``enorm.py`` update, see :func:`energy`) and applies all of them at once.

The training loop calls :meth:`ENorm.step` once after every ``optimizer.step()`` (Algorithm 2; the
original ``main.py``).

Semantics (each a choice documented where it is made):

* Weights are the ``weight`` of every :class:`torch.nn.Linear` and :class:`torch.nn.Conv2d`, in module
  order (:func:`balanced_layers`).
* Norms are taken from the weights as they were at the start of the cycle (a Jacobi sweep, as the
  original ``enorm.py``).
* The last hidden layer (the one feeding the classifier) is not balanced (the original ``enorm.py``).
* Conv nets always use p = 2 (the original's conv path hard-codes it).
* SGD momentum buffers are rescaled with their weights whenever they exist (the original
  ``enorm.py`` does it on the conv path only).
* Biases are rescaled with their unit's incoming row when ``balance_bias`` is true (paper §3.5, used
  by the Reproducibility of Equi-normalization report); the original code balances no bias.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from ..errors import RestudyError

__all__ = ["ENorm", "balanced_layers", "energy"]

_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)


def balanced_layers(model: nn.Module) -> list[nn.Linear | nn.Conv2d]:
    """The layers whose weights ENorm sees, W_0 … W_{L-1}, in module order.

    The original (``enorm.py``) selects parameters whose name contains "weight" and not "bn".
    Our models are ``nn.Sequential`` whose BatchNorm parameters are named like ``"3.weight"``, so the
    name filter would pick them up. We select the weights of ``nn.Linear`` and ``nn.Conv2d`` modules
    instead: same intent (BatchNorm parameters are skipped), robust to naming. Module order must be
    forward order, which holds for ``nn.Sequential``.

    Args:
        model: the network.

    Returns:
        The Linear and Conv2d modules in ``model.modules()`` order.
    """
    return [m for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)]


def energy(model: nn.Module, c: float = 1.0, p: float = 2) -> float:
    """Depth-weighted weight energy Σ_k c^{-p·k}·‖W_k‖_p^p that one ENorm cycle decreases.

    Derived from the update of the original ``enorm.py``: each d_j of a cycle is the exact
    minimizer of this quantity over that unit's scale alone. ‖·‖_p^p is entry-wise; k is the
    0-based index of the weight in :func:`balanced_layers`. Biases are not included.

    Args:
        model: the network.
        c: asymmetry factor (> 0); 1 gives the plain ℓp energy.
        p: exponent of the norm (> 0).

    Returns:
        The energy as a Python float (accumulated in float64).
    """
    total = 0.0
    for k, layer in enumerate(balanced_layers(model)):
        w = layer.weight.detach().double()
        total += c ** (-p * k) * float(w.abs().pow(p).sum())
    return total


def _incoming_norms(weight: Tensor, p: float) -> Tensor:
    """ℓ_j = ‖W[j, …]‖_p: the norm of row j (for a conv, all of output channel j's kernel, as in the
    original)."""
    return torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), ord=p, dim=1)


def _unit_view(weight: Tensor, units: int) -> Tensor:
    """``weight`` seen as (out, units, rest): the slice [:, j, :] holds input unit j's weights.

    For a conv, rest is the kernel (C_out·k·k entries per input channel, as the original). For a
    Linear after a flattened conv output, rest is the channel's H·W positions (``nn.Flatten`` is
    channel-major).
    """
    return weight.reshape(weight.shape[0], units, -1)


def _outgoing_norms(weight: Tensor, units: int, p: float) -> Tensor:
    """r_j = ‖W[:, j, …]‖_p: the norm of everything input unit j feeds in the next layer."""
    return torch.linalg.vector_norm(_unit_view(weight, units), ord=p, dim=(0, 2))


def _scales(incoming: Tensor, outgoing: Tensor, c: float) -> Tensor:
    """d_j = (r_j / (c·ℓ_j))^{1/2} (the original ``enorm.py``), with d_j = 1 where that is not usable.

    A dead unit (ℓ_j = 0), a unit feeding nothing (r_j = 0) or non-finite norms would give d_j of
    0, inf or NaN, which breaks function preservation; such units are left alone.
    """
    d = torch.sqrt(outgoing / (c * incoming))
    ok = torch.isfinite(d) & (d > 0)
    return torch.where(ok, d, torch.ones_like(d))


def _scale_rows(t: Tensor, d: Tensor) -> None:
    """t[j, …] *= d_j in place."""
    t.mul_(d.reshape((-1,) + (1,) * (t.dim() - 1)))


def _scale_units(t: Tensor, units: int, d: Tensor) -> None:
    """t[:, j, …] *= d_j in place, with ``t`` seen as (out, units, rest).

    Broadcasts d over ``t``'s own shape rather than writing through a reshaped view, which could be
    a copy for a non-contiguous (e.g. channels_last) tensor and silently drop the update.
    """
    if t.shape[1] != units:  # Linear after Flatten: unit j owns a block of in_features / units
        d = d.repeat_interleave(t.shape[1] // units)
    t.mul_(d.reshape((1, -1) + (1,) * (t.dim() - 2)))


class ENorm:
    """One ENorm balancing cycle per :meth:`step` (Stock et al., Algorithm 1; the original ``enorm.py``).

    With weights W_0 … W_{L-1} (from :func:`balanced_layers`), hidden layer i (between W_{i-1} and
    W_i) is balanced for i = 1 … L-2: the last hidden layer, between W_{L-2} and W_{L-1}, is not
    ("we do not balance the last layer", a comment of the original ``enorm.py``). Consequently
    W_{L-1} is never changed, W_{L-2} only has its columns rescaled, and a net with two weight layers
    (one hidden layer) is left untouched.

    Args:
        model: an ``nn.Sequential``-like chain of Linear / Conv2d layers with positively homogeneous
            layers between them (ReLU, max / average pooling, Flatten). BatchNorm between two layers
            is allowed and skipped, but then a cycle is no longer function-preserving (the case of the
            original ``models/fully_connected.py``, which has BatchNorm in every hidden layer).
        optimizer: the optimizer training ``model``; if it is ``torch.optim.SGD`` its momentum
            buffers are rescaled with the weights. Other optimizers' states are left untouched.
        c: asymmetry factor (> 0). At the fixed point r_j = c·ℓ_j (the original's ``--enorm c``).
        p: norm exponent (> 0) for fully connected nets. Any net containing a Conv2d uses p = 2, as
            the original's conv path hard-codes it; a warning says so if another p is given.
        balance_bias: when a balanced layer has a bias, scale b_j by d_j together with row j
            (function-preserving; paper §3.5 extension, used by the Reproducibility of
            Equi-normalization report for its "with bias" runs). False mirrors the original, which
            balances no bias; with biases present a cycle then changes the function. d_j is computed
            from weights only.

    Attributes:
        layers: the Linear / Conv2d layers, W_0 … W_{L-1}.
        p: the exponent actually used.
        scales: the d vectors of the last cycle, one per balanced hidden layer (i = 1 … L-2).

    Raises:
        RestudyError: on c or p ≤ 0, grouped convolutions, or consecutive layers whose shapes do not
            chain (the model is not a plain feed-forward chain).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        c: float = 1.2,
        p: float = 2,
        balance_bias: bool = True,
    ) -> None:
        if not c > 0:
            raise RestudyError(
                "ENorm's c must be positive (use method 'none' to turn ENorm off)",
                where="method.enorm.c",
                got=c,
                allowed="c > 0",
            )
        if not p > 0:
            raise RestudyError("ENorm's p must be positive", where="method.enorm.p", got=p, allowed="p > 0")
        self.model = model
        self.optimizer = optimizer
        self.c = float(c)
        self.balance_bias = balance_bias
        self.layers = balanced_layers(model)
        self._units = _check_chain(self.layers)
        self.p = _effective_p(self.layers, p)
        self.scales: list[Tensor] = []

    @torch.no_grad()
    def step(self) -> None:
        """Run one balancing cycle in place (call after every ``optimizer.step()``)."""
        self.scales = self._compute_scales()
        for i, d in enumerate(self.scales, start=1):
            self._apply(i, d)

    def _compute_scales(self) -> list[Tensor]:
        """All d_i from the pre-cycle weights (Jacobi sweep, as the original ``enorm.py``).

        The original reads the next pair's norms before rescaling the current pair, so no d sees an
        already rescaled neighbour; computing every d before applying any reproduces that.
        """
        weights = [layer.weight for layer in self.layers]
        return [
            _scales(
                _incoming_norms(weights[i - 1], self.p), _outgoing_norms(weights[i], self._units[i], self.p), self.c
            )
            for i in range(1, len(weights) - 1)
        ]

    def _apply(self, i: int, d: Tensor) -> None:
        """Scale hidden layer i: W_{i-1}[j] (and b_{i-1}[j]) by d_j, W_i[:, j] by 1/d_j."""
        before, after = self.layers[i - 1], self.layers[i]
        _scale_rows(before.weight, d)
        _scale_units(after.weight, self._units[i], 1 / d)
        if before.bias is not None and self.balance_bias:
            before.bias.mul_(d)
        self._rescale_momentum(i, d)

    def _rescale_momentum(self, i: int, d: Tensor) -> None:
        """Rescale SGD momentum buffers inversely to their weights (Stock et al., Algorithm 2).

        Gradients scale as 1/d when weights scale as d, so the buffer of W_{i-1}[j] (and of b_{i-1}[j]
        when the bias was rescaled) is multiplied by 1/d_j and the buffer of W_i[:, j] by d_j. The
        original does this on its conv path only; we do it whenever an SGD momentum buffer exists
        (the correction is right for any layer type, and there is no buffer with momentum 0).
        """
        before, after = self.layers[i - 1], self.layers[i]
        buf = self._momentum_buffer(before.weight)
        if buf is not None:
            _scale_rows(buf, 1 / d)
        buf = self._momentum_buffer(after.weight)
        if buf is not None:
            _scale_units(buf, self._units[i], d)
        if before.bias is not None and self.balance_bias:
            buf = self._momentum_buffer(before.bias)
            if buf is not None:
                buf.mul_(1 / d)

    def _momentum_buffer(self, param: Tensor) -> Tensor | None:
        """SGD's momentum buffer for ``param``, or None (no SGD, momentum 0, or no step yet)."""
        if not isinstance(self.optimizer, torch.optim.SGD):
            return None
        return self.optimizer.state.get(param, {}).get("momentum_buffer")


def _check_chain(layers: list[nn.Linear | nn.Conv2d]) -> list[int]:
    """Input units of each layer as seen by ENorm; errors if the layers do not form a chain.

    Layer i's input units are layer i-1's output units (features or channels). A Linear after a
    conv may take the flattened map, whose in_features is a multiple of the channel count.
    """
    units = [layers[0].weight.shape[1]] if layers else []
    for prev, layer in zip(layers, layers[1:]):
        if isinstance(layer, nn.Conv2d) and layer.groups != 1:
            raise RestudyError("ENorm does not support grouped convolutions", got=layer)
        n_out, n_in = prev.weight.shape[0], layer.weight.shape[1]
        flattened = isinstance(prev, nn.Conv2d) and isinstance(layer, nn.Linear) and n_in % n_out == 0
        if n_in != n_out and not flattened:
            raise RestudyError(
                "ENorm needs a feed-forward chain: a layer's inputs must be the previous layer's outputs",
                got=f"{prev} -> {layer}",
            )
        units.append(n_out)
    return units


def _effective_p(layers: list[nn.Linear | nn.Conv2d], p: float) -> float:
    """p for fully connected nets, 2 for any net with a conv (the original's conv path uses 2)."""
    if any(isinstance(layer, nn.Conv2d) for layer in layers):
        if not math.isclose(p, 2):
            warnings.warn(f"ENorm uses p=2 on convolutional nets (as the original); p={p} ignored", stacklevel=3)
        return 2.0
    return float(p)
