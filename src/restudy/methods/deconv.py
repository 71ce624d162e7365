"""Network deconvolution layers: convolutions and linear layers that whiten their input patches.

Re-implemented from Ye et al., "Network Deconvolution" (ICLR 2020, arXiv:1905.11926), Algorithm 1
and Fig. 3, and the behaviour of the original code (yechengxi/deconvolution, ``models/deconv.py``),
without copying that code. Before the convolution, every input patch x (the im2col column the kernel
sees) is mapped to D(x − μ) with D ≈ (Cov + eps·I)^(−1/2) estimated from the minibatch; the whitening
is folded into the kernel (W' = W·D, b' = b − W'·μ) and an ordinary convolution runs on the raw input
(the paper's implicit deconvolution, as the original ``FastDeconv`` computes it).

* :func:`isqrt_newton_schulz`: the coupled Newton–Schulz inverse square root, differentiated by
  plain autograd through every iteration (the original ``isqrt_newton_schulz_autograd``).
* :class:`FastDeconv`: a drop-in :class:`torch.nn.Conv2d` (same weight, bias and constructor
  arguments, plus the deconvolution ones) that replaces a Conv2d + BatchNorm2d pair (the original
  class ``FastDeconv``, used so in its CIFAR models ``models/*.py``).
* :class:`Delinear`: the decorrelated linear classifier (the original class ``Delinear``).

Quirks of the original ``FastDeconv`` that are kept on purpose:

* statistics come from a strided im2col sample (stride ``sampling_stride`` × the conv stride, zero
  padding included); a 1×1 conv keeps every (stride²)-th row of the flattened NHWC input instead;
* for ``groups == 1`` the C·k² patch columns are split into blocks **interleaved** (block g holds the
  columns whose index is ≡ g mod C/B), and one F×F matrix, F = k²·B, is shared by all blocks;
* running averages are taken of μ and of D (not of the covariance), momentum 0.1, initialised at 0
  and I with no copy of the first batch;
* ``freeze``: a counter of training forward passes wraps at 10·freeze_iter; a frozen layer
  recomputes its statistics only while the counter (before its increment) is ≤ freeze_iter.

``ChannelDeconv`` (also in the original ``models/deconv.py``) is not provided: the paper-table
commands of the original README use the Delinear head, ChannelDeconv only runs with ``--delinear
False``, and its details were not pinned down well enough to copy exactly (how the leftover
channels' scalar statistics are tracked, for one).

Deviation: ``bias=False`` is accepted (the original ``FastDeconv`` fails on it): the folded bias is
then −W'·μ.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from ..errors import RestudyError

__all__ = ["Delinear", "FastDeconv", "isqrt_newton_schulz"]


def isqrt_newton_schulz(A: Tensor, n_iter: int) -> Tensor:
    """Approximate A^(−1/2) of a symmetric positive-definite matrix by coupled Newton–Schulz.

    s = ‖A‖_F, Y₀ = A/s, Z₀ = I; then ``n_iter`` times M = ½(3I − Z·Y), Y ← Y·M, Z ← M·Z; the result
    is Z / √s. With a leading batch dimension every matrix is treated alone, with its own norm.
    Autograd differentiates through all iterations (there is no custom backward).

    Two products whose result is known are skipped; the values are bit-identical to the plain
    iteration: the first Z₀·Y₀ and M·Z₀ (Z₀ = I), and the last Y update (Y_T is not returned).

    Args:
        A: (n, n) or (batch, n, n) symmetric positive-definite matrices.
        n_iter: the number of iterations T (the original's default is 5); 0 returns I/√s.

    Returns:
        The approximate inverse square roots, shaped like ``A``.
    """
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise RestudyError("isqrt_newton_schulz needs square matrices", got=tuple(A.shape), allowed="(..., n, n)")
    if n_iter < 0:
        raise RestudyError("isqrt_newton_schulz needs n_iter >= 0", where="n_iter", got=n_iter, allowed=">= 0")
    norm = torch.linalg.matrix_norm(A, keepdim=True)  # Frobenius, per matrix
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    Y = A / norm
    Z: Tensor | None = None  # None stands for the identity
    for t in range(n_iter):
        M = 0.5 * (3.0 * eye - (Y if Z is None else Z @ Y))
        if t < n_iter - 1:
            Y = Y @ M
        Z = M if Z is None else M @ Z
    if Z is None:
        Z = eye.expand_as(A)
    return Z / torch.sqrt(norm)


def _check(name: str, value: float, low: float, allowed: str) -> None:
    if not value >= low:
        raise RestudyError(f"{name} out of range", where=name, got=value, allowed=allowed)


def _block_size(block: int, features: int) -> int:
    """The original's block rule (``FastDeconv`` and ``Delinear``): all features if block > features,
    else block if it divides them, else gcd(block, features)."""
    if block > features:
        return features
    return block if features % block == 0 else math.gcd(block, features)


def _update(running: Tensor, value: Tensor, momentum: float) -> None:
    """running ← (1 − m)·running + m·value, in place, on the detached value."""
    with torch.no_grad():
        running.mul_(1.0 - momentum).add_(value.detach(), alpha=momentum)


def _whitening(X: Tensor, eps: float, n_iter: int) -> tuple[Tensor, Tensor]:
    """μ and D ≈ (Cov + eps·I)^(−1/2) of the rows of X, (M, F) or per group (G, M, F).

    Cov = XcᵀXc / M with Xc = X − μ: the biased covariance of the sampled rows.
    """
    mean = X.mean(-2)
    Xc = X - mean.unsqueeze(-2)
    eye = torch.eye(X.shape[-1], dtype=X.dtype, device=X.device)
    if X.dim() == 2:
        cov = torch.addmm(eye, Xc.T, Xc, beta=eps, alpha=1.0 / X.shape[0])
    else:
        cov = torch.baddbmm(eye.expand(X.shape[0], -1, -1), Xc.transpose(1, 2), Xc, beta=eps, alpha=1.0 / X.shape[1])
    return mean, isqrt_newton_schulz(cov, n_iter)


class FastDeconv(nn.Conv2d):
    """A Conv2d whose input patches are whitened, the whitening folded into its kernel (the original ``FastDeconv``).

    Weight (C_out, C/groups, kh, kw) and bias (C_out) are those of the :class:`torch.nn.Conv2d` with
    the same arguments, with its default initialisation, so parameter counts and the ``weight`` and
    ``bias`` entries of a state dict match. Buffers: ``running_mean`` and ``running_deconv`` — (F,)
    and (F, F) for ``groups == 1``, (k²·C,) and (groups, F, F) otherwise. The freeze counter is a
    plain attribute, as in the original, and is not saved. The original subclasses ``_ConvNd``; this
    one subclasses Conv2d, so code that picks out ``nn.Conv2d`` modules (initialisation loops, ENorm)
    picks this layer too.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as Conv2d.
        eps: added to the covariance's diagonal before the inverse square root.
        n_iter: Newton–Schulz iterations (5; the original's first layers use 10-15, see its ``models/*.py``).
        momentum: of the running μ and D.
        block: channels per whitening block B for ``groups == 1`` (see :func:`_block_size`); a
            grouped conv whitens each group's C/groups channels.
        sampling_stride: the statistics use every (sampling_stride × stride)-th patch position.
        freeze: recompute the statistics only in freeze_iter + 1 of every 10·freeze_iter training
            steps; the others use the running μ and D as constants.
        freeze_iter: see ``freeze``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        eps: float = 1e-5,
        n_iter: int = 5,
        momentum: float = 0.1,
        block: int = 64,
        sampling_stride: int = 3,
        freeze: bool = False,
        freeze_iter: int = 100,
    ) -> None:
        if isinstance(padding, str):
            raise RestudyError("FastDeconv needs numeric padding", where="padding", got=padding, allowed="int or pair")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        _check("eps", eps, 0.0, ">= 0")
        _check("n_iter", n_iter, 0, "an integer >= 0")
        _check("block", block, 1, "an integer >= 1")
        _check("sampling_stride", sampling_stride, 1, "an integer >= 1")
        _check("freeze_iter", freeze_iter, 1, "an integer >= 1")
        if not 0.0 <= momentum <= 1.0:
            raise RestudyError("momentum out of range", where="momentum", got=momentum, allowed="0 <= momentum <= 1")
        self.eps = float(eps)
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.freeze = bool(freeze)
        self.freeze_iter = int(freeze_iter)
        self.counter = 0
        self.track_running_stats = True
        kh, kw = self.kernel_size
        self.block = in_channels // groups if groups > 1 else _block_size(block, in_channels)
        self.num_features = kh * kw * self.block  # F
        self.sampling_stride = tuple(sampling_stride * s for s in _pair(stride))
        if groups == 1:
            self.register_buffer("running_mean", torch.zeros(self.num_features))
            self.register_buffer("running_deconv", torch.eye(self.num_features))
        else:
            self.register_buffer("running_mean", torch.zeros(kh * kw * in_channels))
            self.register_buffer("running_deconv", torch.eye(self.num_features).repeat(groups, 1, 1))

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", eps={self.eps}, n_iter={self.n_iter}, momentum={self.momentum}, block={self.block}"
            + f", sampling_stride={self.sampling_stride}, freeze={self.freeze}, freeze_iter={self.freeze_iter}"
        )

    def frozen(self) -> bool:
        """Whether the next training forward pass uses the running μ and D (the original's freeze rule)."""
        return self.freeze and self.counter > self.freeze_iter

    def sample_patches(self, x: Tensor) -> Tensor:
        """The sampled patch rows, (M, C·k²) in unfold order (channel-major), before any regrouping."""
        C = x.shape[1]
        if self.kernel_size == (1, 1):
            step = self.sampling_stride[0] * self.sampling_stride[1]
            return x.permute(0, 2, 3, 1).reshape(-1, C)[::step]
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.sampling_stride)
        return cols.transpose(1, 2).reshape(-1, C * self.kernel_size[0] * self.kernel_size[1])

    def statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """μ and D from this batch, differentiable, shaped like the buffers."""
        X = self.sample_patches(x)
        nf = self.num_features
        if self.groups == 1:
            # Interleaved split: the C·k² columns viewed as (F, C/B) and transposed, as the original.
            X = X.reshape(X.shape[0], nf, -1).transpose(1, 2).reshape(-1, nf)
            return _whitening(X, self.eps, self.n_iter)
        # One contiguous chunk of F columns per group; the mean covers all of them at once.
        X = X.reshape(X.shape[0], self.groups, nf).transpose(0, 1)
        mean, deconv = _whitening(X, self.eps, self.n_iter)
        return mean.reshape(-1), deconv

    def folded(self, mean: Tensor, deconv: Tensor) -> tuple[Tensor, Tensor]:
        """W' = W·D and b' = b − Σ_blocks W'·μ, the weight shaped like ``self.weight``."""
        w = self.weight
        out, nf = w.shape[0], self.num_features
        if self.groups == 1:
            rows = w.reshape(out, nf, -1).transpose(1, 2)  # (C_out, C/B, F), the same interleaving
            w_new = rows @ deconv
            shift = (w_new @ mean).sum(1)
            w_new = w_new.transpose(1, 2).reshape(w.shape)
        else:
            w_new = torch.bmm(w.reshape(self.groups, out // self.groups, nf), deconv)
            shift = torch.bmm(w_new, mean.reshape(self.groups, nf, 1)).reshape(out)
            w_new = w_new.reshape(w.shape)
        bias = -shift if self.bias is None else self.bias - shift
        return w_new, bias

    def forward(self, x: Tensor) -> Tensor:
        frozen = self.frozen()
        if self.training and self.track_running_stats:
            self.counter = (self.counter + 1) % (self.freeze_iter * 10)
        if self.training and not frozen:
            mean, deconv = self.statistics(x)
            _update(self.running_mean, mean, self.momentum)
            _update(self.running_deconv, deconv, self.momentum)
        else:
            mean, deconv = self.running_mean, self.running_deconv
        weight, bias = self.folded(mean, deconv)
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Delinear(nn.Linear):
    """A Linear layer whose input is whitened in blocks, the whitening folded into W and b (the original ``Delinear``).

    The input (N, in_features) is viewed as rows of length B (each sample gives in/B contiguous
    rows sharing one B×B matrix); μ and D ≈ (Cov + eps·I)^(−1/2) come from all rows (no
    subsampling); W' = W·D per block of B inputs, b' = b − Σ_blocks W'·μ. Training updates the
    running μ and D (momentum, init 0 and I); evaluation uses them. Weight and bias are those of the
    :class:`torch.nn.Linear` with the same arguments.

    Args:
        in_features, out_features, bias: as Linear.
        eps: added to the covariance's diagonal.
        n_iter: Newton–Schulz iterations.
        momentum: of the running μ and D.
        block: B = in_features if block > in_features, else block if it divides in_features, else
            gcd(block, in_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        eps: float = 1e-5,
        n_iter: int = 5,
        momentum: float = 0.1,
        block: int = 512,
    ) -> None:
        super().__init__(in_features, out_features, bias)
        _check("eps", eps, 0.0, ">= 0")
        _check("n_iter", n_iter, 0, "an integer >= 0")
        _check("block", block, 1, "an integer >= 1")
        if not 0.0 <= momentum <= 1.0:
            raise RestudyError("momentum out of range", where="momentum", got=momentum, allowed="0 <= momentum <= 1")
        self.eps = float(eps)
        self.n_iter = int(n_iter)
        self.momentum = float(momentum)
        self.track_running_stats = True
        self.block = _block_size(block, in_features)
        self.register_buffer("running_mean", torch.zeros(self.block))
        self.register_buffer("running_deconv", torch.eye(self.block))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps}, n_iter={self.n_iter}, block={self.block}"

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mean, deconv = _whitening(x.reshape(-1, self.block), self.eps, self.n_iter)
            if self.track_running_stats:
                _update(self.running_mean, mean, self.momentum)
                _update(self.running_deconv, deconv, self.momentum)
        else:
            mean, deconv = self.running_mean, self.running_deconv
        w = (self.weight.reshape(-1, self.block) @ deconv).reshape(self.weight.shape)
        shift = (w.reshape(self.out_features, -1, self.block) @ mean).sum(1)
        bias = -shift if self.bias is None else self.bias - shift
        return F.linear(x, w, bias)
