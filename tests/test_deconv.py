"""Network deconvolution layers (Ye et al., ICLR 2020; the original ``models/deconv.py``): whitening,
folding, running stats, freeze."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restudy.errors import RestudyError
from restudy.methods.deconv import Delinear, FastDeconv, isqrt_newton_schulz

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _spd(n: int, seed: int = 0, batch: tuple[int, ...] = ()) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(*batch, 4 * n, n, generator=g, dtype=torch.float64)
    return X.transpose(-1, -2) @ X / (4 * n) + 0.05 * torch.eye(n, dtype=torch.float64)


def _eig_isqrt(A: torch.Tensor) -> torch.Tensor:
    e, v = torch.linalg.eigh(A)
    return v @ torch.diag_embed(e.rsqrt()) @ v.transpose(-1, -2)


def _plain_newton_schulz(A: torch.Tensor, n_iter: int) -> torch.Tensor:
    """The original ``isqrt_newton_schulz_autograd`` step by step: s = ‖A‖_F, Y = A/s, Z = I;
    M = ½(3I − ZY), Y = YM, Z = MZ; Z/√s."""
    s = A.norm()
    Y, Z = A / s, torch.eye(A.shape[0], dtype=A.dtype)
    for _ in range(n_iter):
        M = 0.5 * (3 * torch.eye(A.shape[0], dtype=A.dtype) - Z @ Y)
        Y, Z = Y @ M, M @ Z
    return Z / s.sqrt()


def _correlated(shape: tuple[int, int, int, int], seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Images whose channels are mixed and whose pixels are smoothed: strongly correlated patches."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    z = torch.randn(n, c, h + 2, w + 2, generator=g, dtype=dtype)
    z = F.avg_pool2d(z, 3, stride=1)  # neighbouring pixels share 2/3 of their inputs
    mix = torch.eye(c, dtype=dtype) + 0.8 * torch.randn(c, c, generator=g, dtype=dtype)
    return torch.einsum("dc,nchw->ndhw", mix, z) + 0.5


def _patches(x: torch.Tensor, layer: FastDeconv, stride: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Every patch at ``stride`` as rows (N·H'·W', C·kh·kw), channel-major, built by explicit
    slicing of the zero-padded input (no ``F.unfold``)."""
    (kh, kw), (ph, pw), (dh, dw) = layer.kernel_size, layer.padding, layer.dilation
    xp = F.pad(x, (pw, pw, ph, ph))
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // stride[0] + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // stride[1] + 1
    cols = [
        xp[
            :,
            c,
            a * dh : a * dh + stride[0] * (ho - 1) + 1 : stride[0],
            b * dw : b * dw + stride[1] * (wo - 1) + 1 : stride[1],
        ]
        for c in range(x.shape[1])
        for a in range(kh)
        for b in range(kw)
    ]
    return torch.stack(cols, -1).reshape(-1, len(cols)), (ho, wo)


def _slow_deconv(
    layer: FastDeconv, x: torch.Tensor, isqrt=_eig_isqrt
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training-mode output the slow way: sample patches (every s-th position, or every s²-th
    NHWC row for 1×1), split them into blocks, estimate μ and D = (Cov + eps·I)^(−1/2), whiten every
    full-resolution patch and apply the un-folded conv. Returns (output, μ, D)."""
    C, G = x.shape[1], layer.groups
    s = layer.sampling_stride
    if layer.kernel_size == (1, 1):
        sampled = x.permute(0, 2, 3, 1).reshape(-1, C)[:: s[0] * s[1]]
    else:
        sampled, _ = _patches(x, layer, s)
    full, (ho, wo) = _patches(x, layer, layer.stride)
    nf, width = layer.num_features, full.shape[1]
    eye = torch.eye(nf, dtype=x.dtype)
    if G == 1:
        nb = width // nf
        blocks = [list(range(g, width, nb)) for g in range(nb)]  # interleaved: index ≡ g (mod C/B)
        rows = torch.cat([sampled[:, idx] for idx in blocks])
        mu = rows.mean(0)
        cov = (rows - mu).T @ (rows - mu) / rows.shape[0] + layer.eps * eye
        D = isqrt(cov)
        white = torch.empty_like(full)
        for idx in blocks:
            white[:, idx] = (full[:, idx] - mu) @ D.T
        y = white @ layer.weight.reshape(layer.out_channels, -1).T
    else:
        mus, Ds, parts = [], [], []
        per_out = layer.out_channels // G
        for g in range(G):
            idx = slice(g * nf, (g + 1) * nf)  # contiguous per-group chunk
            rows = sampled[:, idx]
            mu = rows.mean(0)
            cov = (rows - mu).T @ (rows - mu) / rows.shape[0] + layer.eps * eye
            D = isqrt(cov)
            w = layer.weight[g * per_out : (g + 1) * per_out].reshape(per_out, -1)
            parts.append((full[:, idx] - mu) @ D.T @ w.T)
            mus.append(mu)
            Ds.append(D)
        y, mu, D = torch.cat(parts, 1), torch.cat(mus), torch.stack(Ds)
    y = y + layer.bias
    return y.reshape(x.shape[0], ho, wo, -1).permute(0, 3, 1, 2), mu, D


CASES = {
    # name: (constructor kwargs, input shape)
    "3x3 interleaved blocks C/B=2, stride 2": (
        dict(in_channels=8, out_channels=6, kernel_size=3, stride=2, padding=1, block=4),
        (4, 8, 9, 9),
    ),
    "first layer C=3": (dict(in_channels=3, out_channels=5, kernel_size=3, padding=1), (4, 3, 10, 10)),
    "block gcd C=6 block 4": (dict(in_channels=6, out_channels=4, kernel_size=3, padding=1, block=4), (3, 6, 10, 10)),
    "dilated, unpadded": (dict(in_channels=4, out_channels=3, kernel_size=3, dilation=2, block=2), (4, 4, 12, 12)),
    "1x1": (dict(in_channels=8, out_channels=5, kernel_size=1, block=4), (6, 8, 6, 6)),
    "1x1 stride 2": (dict(in_channels=4, out_channels=6, kernel_size=1, stride=2), (8, 4, 7, 7)),
    "grouped": (dict(in_channels=8, out_channels=4, kernel_size=3, padding=1, groups=2), (6, 8, 8, 8)),
    "depthwise": (dict(in_channels=4, out_channels=4, kernel_size=3, padding=1, groups=4), (6, 4, 9, 9)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_folded_layer_is_the_conv_of_whitened_patches(name):
    kwargs, shape = CASES[name]
    torch.manual_seed(0)
    layer = FastDeconv(**kwargs, n_iter=60).double()
    x = _correlated(shape)
    y = layer(x)
    expected, mu, D = _slow_deconv(layer, x)
    assert y.shape == expected.shape
    assert torch.allclose(y, expected, rtol=1e-7, atol=1e-8), (y - expected).abs().max()
    # the running statistics moved 10 % of the way from (0, I) to the batch's (μ, D)
    eye = torch.eye(layer.num_features, dtype=x.dtype).expand_as(D)
    assert torch.allclose(layer.running_mean, 0.1 * mu, atol=1e-12)
    assert torch.allclose(layer.running_deconv, 0.9 * eye + 0.1 * D, atol=1e-8)


@pytest.mark.parametrize("name", ["3x3 interleaved blocks C/B=2, stride 2", "1x1", "grouped"])
def test_default_five_iterations_are_used_not_the_exact_root(name):
    kwargs, shape = CASES[name]
    torch.manual_seed(0)
    layer = FastDeconv(**kwargs).double()
    x = _correlated(shape)
    expected, _, _ = _slow_deconv(layer, x, isqrt=lambda A: _plain_newton_schulz(A, 5))
    assert torch.allclose(layer(x), expected, rtol=1e-9, atol=1e-10)
    exact, _, _ = _slow_deconv(layer, x)
    assert (layer(x) - exact).abs().max() > 1e-5  # five steps only approximate A^(-1/2)


def test_sampled_patches_are_whitened_when_iterating_long_enough():
    torch.manual_seed(0)
    layer = FastDeconv(8, 4, 3, padding=1, block=4, n_iter=60).double()
    x = _correlated((16, 8, 16, 16))
    mu, D = layer.statistics(x)
    X = layer.sample_patches(x)
    # 16×16 with padding 1 and sampling stride 3: 6×6 of the 16×16 positions per image
    assert X.shape == (16 * 36, 72)
    rows = X.reshape(X.shape[0], 36, 2).transpose(1, 2).reshape(-1, 36)
    cov_before = torch.cov(rows.T, correction=0)
    white = (rows - mu) @ D.T
    cov_after = torch.cov(white.T, correction=0)
    eye = torch.eye(36, dtype=x.dtype)
    assert (cov_before - torch.diag(cov_before.diagonal())).abs().max() > 0.3  # strongly correlated
    assert (cov_after - eye).abs().max() < 1e-3


def test_blocks_interleave_the_patch_columns_for_groups_1():
    """As the original ``FastDeconv``: with C/B = 2 blocks, block 0 holds the even patch columns,
    block 1 the odd ones (not the first and the last C/2 channels)."""
    layer = FastDeconv(8, 4, 3, padding=1, block=4).double()
    x = _correlated((4, 8, 6, 6))
    X = layer.sample_patches(x)  # (M, 72), channel-major
    mu, _ = layer.statistics(x)
    assert torch.allclose(mu, torch.cat([X[:, 0::2], X[:, 1::2]]).mean(0), atol=1e-12)
    assert not torch.allclose(mu, torch.cat([X[:, :36], X[:, 36:]]).mean(0), atol=1e-3)


def test_newton_schulz_approximates_the_inverse_square_root():
    A = _spd(12)
    ref = _eig_isqrt(A)
    errors = [(isqrt_newton_schulz(A, t) - ref).abs().max().item() for t in (1, 3, 5, 10, 30)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-10
    assert errors[2] > 1e-4  # five iterations: an approximation
    root = isqrt_newton_schulz(A, 30)
    assert torch.allclose(root @ A @ root, torch.eye(12, dtype=A.dtype), atol=1e-10)


@pytest.mark.parametrize("n_iter", [0, 1, 2, 5, 15])
def test_newton_schulz_is_the_plain_iteration(n_iter):
    A = _spd(9, seed=n_iter)
    assert torch.equal(isqrt_newton_schulz(A, n_iter), _plain_newton_schulz(A, n_iter))


def test_newton_schulz_batched_is_per_matrix_with_its_own_norm():
    A = _spd(7, batch=(3,))
    A[1] *= 100.0  # a different Frobenius norm
    batched = isqrt_newton_schulz(A, 5)
    for i in range(3):
        assert torch.allclose(batched[i], _plain_newton_schulz(A[i], 5), rtol=1e-12, atol=1e-14)


def test_newton_schulz_gradient():
    A = _spd(4).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: isqrt_newton_schulz((a + a.T) / 2, 4), (A,))


def test_newton_schulz_rejects_non_square():
    with pytest.raises(RestudyError, match="square"):
        isqrt_newton_schulz(torch.ones(2, 3), 5)


def test_eval_uses_running_statistics_updated_in_training_only():
    torch.manual_seed(0)
    layer = FastDeconv(4, 3, 3, padding=1, n_iter=5).double()
    conv = nn.Conv2d(4, 3, 3, padding=1).double()
    conv.load_state_dict({"weight": layer.weight, "bias": layer.bias})
    a, b = _correlated((4, 4, 8, 8), seed=1), _correlated((4, 4, 8, 8), seed=2)

    layer.eval()  # fresh: μ = 0 and D = I, so the layer is its plain conv
    assert torch.allclose(layer(a), conv(a), atol=1e-12)
    assert torch.equal(layer.running_mean, torch.zeros_like(layer.running_mean))

    layer.train()
    mu_a, D_a = layer.statistics(a)
    mu_b, D_b = layer.statistics(b)
    y_train = layer(a)
    layer(b)
    eye = torch.eye(layer.num_features, dtype=a.dtype)
    mean = 0.9 * 0.1 * mu_a + 0.1 * mu_b
    deconv = 0.9 * (0.9 * eye + 0.1 * D_a) + 0.1 * D_b
    assert torch.allclose(layer.running_mean, mean, atol=1e-12)
    assert torch.allclose(layer.running_deconv, deconv, atol=1e-12)

    layer.eval()
    before = (layer.running_mean.clone(), layer.running_deconv.clone(), layer.counter)
    y_eval = layer(a)
    w, bias = layer.folded(mean, deconv)
    assert torch.allclose(y_eval, F.conv2d(a, w, bias, padding=1), atol=1e-10)
    assert not torch.allclose(y_eval, y_train, atol=1e-3)
    assert torch.equal(layer.running_mean, before[0]) and torch.equal(layer.running_deconv, before[1])
    assert layer.counter == before[2]  # eval never advances the freeze counter


def _recomputing_steps(layer: FastDeconv, steps: int) -> list[int]:
    """The 1-based training steps in which the layer estimated new statistics (a new batch each step)."""
    g = torch.Generator().manual_seed(0)
    out = []
    for step in range(1, steps + 1):
        before = layer.running_mean.clone()
        layer(torch.randn(4, 2, 3, 3, generator=g))
        if not torch.equal(layer.running_mean, before):
            out.append(step)
    return out


def test_freeze_recomputes_freeze_iter_plus_one_of_every_ten_freeze_iter_steps():
    layer = FastDeconv(2, 2, 1, freeze=True)  # freeze_iter 100: a cycle of 1000 steps
    steps = _recomputing_steps(layer, 2100)
    assert steps == list(range(1, 102)) + list(range(1001, 1102)) + list(range(2001, 2101))
    small = FastDeconv(2, 2, 1, freeze=True, freeze_iter=3)
    assert _recomputing_steps(small, 65) == [1, 2, 3, 4, 31, 32, 33, 34, 61, 62, 63, 64]
    assert _recomputing_steps(FastDeconv(2, 2, 1, freeze_iter=3), 40) == list(range(1, 41))


def test_a_frozen_step_treats_the_statistics_as_constants():
    torch.manual_seed(0)
    layer = FastDeconv(3, 4, 3, padding=1, freeze=True, freeze_iter=1).double()
    x = _correlated((2, 3, 6, 6)).requires_grad_()
    for _ in range(2):  # counter 0 and 1: estimated
        layer(x)
    assert layer.frozen()
    mean, deconv = layer.running_mean.clone(), layer.running_deconv.clone()
    y = layer(x)
    w, b = layer.folded(mean, deconv)
    assert torch.equal(y, F.conv2d(x, w, b, padding=1))
    (gx,) = torch.autograd.grad(y.square().sum(), x)
    (gx_const,) = torch.autograd.grad(F.conv2d(x, w.detach(), b.detach(), padding=1).square().sum(), x)
    assert torch.allclose(gx, gx_const, atol=1e-12)
    assert torch.equal(layer.running_mean, mean)  # no update while frozen


def test_gradients_flow_through_the_batch_statistics():
    torch.manual_seed(0)
    layer = FastDeconv(2, 3, 3, padding=1, block=2, n_iter=3).double()
    x = _correlated((2, 2, 5, 5)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: _with_params(layer, x, w, b), (x, layer.weight, layer.bias))
    (gx,) = torch.autograd.grad(layer(x).square().sum(), x)
    mean, deconv = layer.statistics(x)
    w, b = layer.folded(mean.detach(), deconv.detach())
    (gx_const,) = torch.autograd.grad(F.conv2d(x, w, b, padding=1).square().sum(), x)
    assert not torch.allclose(gx, gx_const, atol=1e-6)  # like BN, the statistics are differentiated


def _with_params(layer: FastDeconv, x, w, b):
    return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))


def test_grouped_layer_gradcheck():
    torch.manual_seed(0)
    layer = FastDeconv(4, 4, 3, padding=1, groups=2, n_iter=2).double()
    x = _correlated((3, 4, 4, 4)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: _with_params(layer, x, w, b), (x, layer.weight, layer.bias))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=5, stride=3, padding=2, dilation=2),
        dict(kernel_size=1, stride=2),
        dict(kernel_size=(3, 1), padding=(1, 0)),
        dict(kernel_size=3, padding=1, groups=4),
    ],
)
def test_shapes_and_parameters_match_conv2d(kwargs):
    layer, conv = FastDeconv(8, 12, **kwargs), nn.Conv2d(8, 12, **kwargs, bias=True)
    x = torch.randn(2, 8, 13, 11)
    assert layer(x).shape == conv(x).shape
    layer.eval()
    assert layer(x).shape == conv(x).shape
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in conv.parameters())
    assert {k: v.shape for k, v in layer.named_parameters()} == {k: v.shape for k, v in conv.named_parameters()}
    assert isinstance(layer, nn.Conv2d)


def test_block_size_rule():
    def feats(c, k, **kw):
        layer = FastDeconv(c, 16, k, **kw)
        return layer.block, layer.num_features, tuple(layer.running_deconv.shape)

    assert feats(3, 3) == (3, 27, (27, 27))  # every CIFAR first layer
    assert feats(64, 3) == (64, 576, (576, 576))
    assert feats(256, 3) == (64, 576, (576, 576))  # one matrix shared by the 4 blocks
    assert feats(96, 3) == (32, 288, (288, 288))  # gcd(64, 96)
    assert feats(256, 1) == (64, 64, (64, 64))
    assert feats(16, 3, groups=16) == (1, 9, (16, 9, 9))  # depthwise: a 9×9 spatial whitening per channel
    assert FastDeconv(16, 8, 3, groups=4).running_mean.shape == (144,)
    assert FastDeconv(16, 8, 3, stride=2).sampling_stride == (6, 6)


def test_bias_free_layer_folds_the_mean_into_a_bias_of_its_own():
    torch.manual_seed(0)
    layer = FastDeconv(4, 3, 3, padding=1, bias=False).double()
    x = _correlated((2, 4, 6, 6))
    mean, deconv = layer.statistics(x)
    w, b = layer.folded(mean, deconv)
    assert torch.allclose(layer(x), F.conv2d(x, w, b, padding=1), atol=1e-12)
    assert sum(p.numel() for p in layer.parameters()) == layer.weight.numel()


def test_channels_last_input_and_module():
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, block=4)
    x = torch.randn(4, 8, 8, 8)
    y = layer(x)
    layer_cl = FastDeconv(8, 6, 3, padding=1, block=4)
    layer_cl.load_state_dict(layer.state_dict())
    layer_cl.running_mean.zero_()
    layer_cl.running_deconv.copy_(torch.eye(layer.num_features))
    layer_cl = layer_cl.to(memory_format=torch.channels_last)
    assert torch.allclose(layer_cl(x.to(memory_format=torch.channels_last)), y, atol=1e-5)
    assert torch.allclose(layer_cl.running_deconv, layer.running_deconv, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_training_step_is_deterministic(device):
    def run():
        torch.manual_seed(0)
        layer = FastDeconv(8, 6, 3, padding=1, block=4).to(device)
        head = Delinear(6 * 16, 5, block=32).to(device)
        x = torch.randn(4, 8, 4, 4, device=device, requires_grad=True)
        y = head(F.relu(layer(x)).flatten(1))
        y.square().sum().backward()
        return [y, x.grad, layer.weight.grad, head.weight.grad, layer.running_deconv, head.running_deconv]

    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # what ``kernels: deterministic`` runs set: nothing refuses
    try:
        assert all(torch.equal(a, b) for a, b in zip(run(), run()))
    finally:
        torch.use_deterministic_algorithms(deterministic)


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_dtype_come_from_the_input(device):
    torch.manual_seed(0)
    layer = FastDeconv(8, 6, 3, padding=1, block=4, groups=2).double()
    x = _correlated((4, 8, 8, 8))
    expected, _, _ = _slow_deconv(layer, x, isqrt=lambda A: _plain_newton_schulz(A, 5))
    moved = FastDeconv(8, 6, 3, padding=1, block=4, groups=2)
    moved.load_state_dict(layer.state_dict())
    moved = moved.to(device=device, dtype=torch.float64)
    assert torch.allclose(moved(x.to(device)).cpu(), expected, rtol=1e-8, atol=1e-9)


def _correlated_features(n: int, d: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(d, dtype=torch.float64) + 0.7 * torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + 1.0


def test_delinear_whitens_contiguous_blocks_of_its_input():
    torch.manual_seed(0)
    layer = Delinear(12, 5, block=4, n_iter=60).double()
    x = _correlated_features(256, 12)
    rows = x.reshape(-1, 4)  # each sample gives 3 contiguous rows of 4
    mu = rows.mean(0)
    D = _eig_isqrt(torch.cov(rows.T, correction=0) + 1e-5 * torch.eye(4, dtype=x.dtype))
    white = ((rows - mu) @ D.T).reshape(256, 12)
    # Cov(white) = I − eps·D²: identity up to eps relative to the smallest variance
    assert (torch.cov(white.reshape(-1, 4).T, correction=0) - torch.eye(4, dtype=x.dtype)).abs().max() < 1e-4
    expected = white @ layer.weight.T + layer.bias
    assert torch.allclose(layer(x), expected, rtol=1e-8, atol=1e-9)
    assert torch.allclose(layer.running_mean, 0.1 * mu) and torch.allclose(
        layer.running_deconv, 0.9 * torch.eye(4, dtype=x.dtype) + 0.1 * D, atol=1e-9
    )
    layer.eval()
    w = (layer.weight.reshape(-1, 4) @ layer.running_deconv).reshape(5, 12)
    b = layer.bias - w @ layer.running_mean.repeat(3)
    assert torch.allclose(layer(x), x @ w.T + b, atol=1e-10)


def test_delinear_block_rule_shapes_and_gradients():
    assert Delinear(100, 10).block == 100  # block > in_features
    assert Delinear(1024, 10).block == 512
    assert Delinear(96, 10, block=64).block == 32  # gcd
    layer, linear = Delinear(20, 7, block=8), nn.Linear(20, 7)
    assert layer(torch.randn(3, 20)).shape == (3, 7)
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in linear.parameters())
    torch.manual_seed(0)
    small = Delinear(6, 3, block=3, n_iter=3).double()
    x = _correlated_features(10, 6).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: _with_params(small, x, w, b), (x, small.weight, small.bias))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(block=0), "block"),
        (dict(momentum=1.5), "momentum"),
        (dict(n_iter=-1), "n_iter"),
        (dict(sampling_stride=0), "sampling_stride"),
        (dict(padding="same"), "padding"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(RestudyError, match=field):
        FastDeconv(4, 4, 3, **kwargs)
