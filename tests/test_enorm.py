"""ENorm (Stock et al., ICLR 2019, Algorithm 1; the original ``enorm/enorm.py``): function preservation,
energy descent, fixed point, exact cycle rule."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from restudy.errors import RestudyError
from restudy.methods.enorm import ENorm, balanced_layers, energy
from restudy.models.conv import small_cnn
from restudy.models.fc import fc

C = 1.2


def _fc(hidden: int, bias: bool = False, norm: str = "none", seed: int = 0) -> nn.Sequential:
    """A small float64 FC net; with ``bias`` the biases are random so that bias balancing matters."""
    gen = torch.Generator().manual_seed(seed)
    model = fc((3, 4, 4), 5, hidden=hidden, width=16, bias=bias, norm=norm, generator=gen).double()
    if bias:
        with torch.no_grad():
            for layer in balanced_layers(model):
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=gen))
    return model


def _cnn(seed: int = 0) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    return small_cnn((3, 8, 8), 5, width=4, blocks=3, generator=gen).double()


def _conv_flatten_linear(seed: int = 0) -> nn.Sequential:
    """Conv layers followed by Flatten and Linear layers (a conv → linear pair over H·W blocks)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 7, bias=False),
        nn.ReLU(),
        nn.Linear(7, 5, bias=False),
    ).double()


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [layer.weight.detach().clone() for layer in balanced_layers(model)]


def _units(w: torch.Tensor, n: int) -> torch.Tensor:
    return w.reshape(w.shape[0], n, -1)


def _reference_cycle(weights: list[torch.Tensor], c: float, p: float, gauss_seidel: bool = False) -> list[torch.Tensor]:
    """Straight from the formula: d_j = (r_j / (c ℓ_j))^½ for hidden layers i = 1 … L-2.

    Jacobi (default): every norm from the pre-cycle weights. Gauss–Seidel: norms from the weights
    as already rescaled by the previous hidden layer (what the original does *not* do).
    """
    new = [w.clone() for w in weights]
    source = new if gauss_seidel else weights
    for i in range(1, len(weights) - 1):
        n = weights[i - 1].shape[0]
        ell = source[i - 1].reshape(n, -1).norm(p=p, dim=1)
        r = _units(source[i], n).abs().pow(p).sum(dim=(0, 2)).pow(1 / p)
        d = (r / (c * ell)).sqrt()
        new[i - 1] = new[i - 1] * d.reshape((-1,) + (1,) * (new[i - 1].dim() - 1))
        new[i] = (_units(new[i], n) / d.reshape(1, -1, 1)).reshape(new[i].shape)
    return new


def _out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("hidden", [0, 1, 2, 5])
def test_cycle_preserves_function_bias_free(hidden: int) -> None:
    model = _fc(hidden)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    before = _out(model, x)
    enorm = ENorm(model, c=C)
    for _ in range(3):
        enorm.step()
    torch.testing.assert_close(_out(model, x), before, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hidden", [1, 4])
def test_cycle_preserves_function_with_balanced_biases(hidden: int) -> None:
    model = _fc(hidden, bias=True)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    before = _out(model, x)
    ENorm(model, c=C, balance_bias=True).step()
    torch.testing.assert_close(_out(model, x), before, rtol=1e-10, atol=1e-12)


def test_unbalanced_biases_change_function_like_the_original() -> None:
    model = _fc(3, bias=True)
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    before = _out(model, x)
    biases = [layer.bias.detach().clone() for layer in balanced_layers(model)]
    ENorm(model, c=C, balance_bias=False).step()
    for layer, b in zip(balanced_layers(model), biases):
        assert torch.equal(layer.bias, b)
    assert not torch.allclose(_out(model, x), before)


@pytest.mark.parametrize("build", [_cnn, _conv_flatten_linear])
def test_cycle_preserves_function_conv(build) -> None:
    model = build()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    before, weights = _out(model, x), _weights(model)
    enorm = ENorm(model, c=1.1)
    enorm.step()
    assert not torch.allclose(_weights(model)[0], weights[0])
    enorm.step()
    torch.testing.assert_close(_out(model, x), before, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("c,p", [(1.0, 2), (C, 2), (C, 1), (1.0, 3)])
def test_cycle_never_increases_weighted_energy(c: float, p: float) -> None:
    model = _fc(5)
    enorm = ENorm(model, c=c, p=p)
    energies = [energy(model, c, p)]
    for _ in range(30):
        enorm.step()
        energies.append(energy(model, c, p))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(energies, energies[1:]))
    assert energies[-1] < 0.99 * energies[0]


def test_conv_cycle_never_increases_energy() -> None:
    model = _cnn()
    enorm = ENorm(model, c=1.1)
    energies = [energy(model, 1.1, 2)]
    for _ in range(10):
        enorm.step()
        energies.append(energy(model, 1.1, 2))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(energies, energies[1:]))


def test_energy_formula() -> None:
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
        model[2].weight.copy_(torch.tensor([[4.0, 1.0]]))
    assert energy(model, c=1.0, p=2) == pytest.approx(14.0 + 17.0)
    assert energy(model, c=2.0, p=2) == pytest.approx(14.0 + 17.0 / 4)
    assert energy(model, c=2.0, p=1) == pytest.approx(6.0 + 5.0 / 2)


def test_repeated_cycles_reach_fixed_point() -> None:
    model = _fc(5)
    enorm = ENorm(model, c=C)
    for _ in range(300):
        enorm.step()
    layers = balanced_layers(model)
    for i in range(1, len(layers) - 1):  # balanced hidden layers only
        w_in, w_out = layers[i - 1].weight.detach(), layers[i].weight.detach()
        ell, r = w_in.norm(dim=1), w_out.norm(dim=0)
        torch.testing.assert_close(r, C * ell, rtol=1e-8, atol=0)
    for d in enorm.scales:
        torch.testing.assert_close(d, torch.ones_like(d), rtol=0, atol=1e-8)


@pytest.mark.parametrize("hidden", [1, 3])
def test_last_hidden_layer_is_not_balanced(hidden: int) -> None:
    """Hidden layer L-1 (feeding the classifier) is skipped: W_{L-1} unchanged, W_{L-2} rows unscaled."""
    model = _fc(hidden)
    before = _weights(model)
    enorm = ENorm(model, c=C)
    enorm.step()
    after = _weights(model)
    n_layers = len(before)
    assert len(enorm.scales) == n_layers - 2
    assert torch.equal(after[-1], before[-1])
    # W_{L-2} only lost its column scaling by hidden layer L-2: no row (last hidden layer) scaling.
    torch.testing.assert_close(after[-2] * enorm.scales[-1].reshape(1, -1), before[-2])
    # ... whereas a balanced hidden layer's units keep r_j = c ℓ_j once converged, the last does not.
    for _ in range(200):
        enorm.step()
    w = _weights(model)
    assert not torch.allclose(w[-1].norm(dim=0), C * w[-2].norm(dim=1), rtol=1e-3)


def test_single_hidden_layer_net_is_untouched() -> None:
    model = _fc(0)
    before = _weights(model)
    enorm = ENorm(model, c=C)
    enorm.step()
    assert enorm.scales == []
    assert all(torch.equal(a, b) for a, b in zip(_weights(model), before))


@pytest.mark.parametrize("c,p", [(C, 2), (1.0, 1.5)])
def test_cycle_matches_jacobi_reference_not_gauss_seidel(c: float, p: float) -> None:
    model = _fc(4, seed=3)
    before = _weights(model)
    ENorm(model, c=c, p=p).step()
    after = _weights(model)
    for got, want in zip(after, _reference_cycle(before, c, p)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    gauss_seidel = _reference_cycle(before, c, p, gauss_seidel=True)
    assert any(not torch.allclose(got, gs) for got, gs in zip(after, gauss_seidel))


def test_conv_cycle_matches_reference_with_p2() -> None:
    model = _cnn(seed=1)
    before = _weights(model)
    with pytest.warns(UserWarning, match="p=2"):
        enorm = ENorm(model, c=1.1, p=1)
    assert enorm.p == 2
    enorm.step()
    for got, want in zip(_weights(model), _reference_cycle(before, 1.1, 2)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def _sgd_step(model: nn.Module, momentum: float) -> torch.optim.SGD:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum, weight_decay=1e-3)
    x = torch.randn(8, 3, *(8, 8) if isinstance(balanced_layers(model)[0], nn.Conv2d) else (4, 4), dtype=torch.float64)
    model(x).square().mean().backward()
    opt.step()
    return opt


@pytest.mark.parametrize("build", [lambda: _fc(3, bias=True), _cnn])
def test_momentum_buffers_rescaled_inversely(build) -> None:
    model = build()
    opt = _sgd_step(model, momentum=0.9)
    layers = balanced_layers(model)
    bufs = [opt.state[m.weight]["momentum_buffer"].clone() for m in layers]
    bias_bufs = [opt.state[m.bias]["momentum_buffer"].clone() for m in layers if m.bias is not None]
    enorm = ENorm(model, opt, c=C)
    enorm.step()
    # d^{(k)}: scales of the units feeding W_k; 1 for inputs, the last hidden layer and outputs.
    ones = [
        torch.ones(n, dtype=torch.float64)
        for n in (layers[0].weight.shape[1], layers[-1].weight.shape[1], layers[-1].weight.shape[0])
    ]
    d = ones[:1] + enorm.scales + ones[1:]
    for k, layer in enumerate(layers):  # buffer of W_k: rows × 1/d^{(k+1)}, columns × d^{(k)}
        want = bufs[k] / d[k + 1].reshape((-1,) + (1,) * (bufs[k].dim() - 1))
        want = want * d[k].reshape((1, -1) + (1,) * (bufs[k].dim() - 2))
        torch.testing.assert_close(opt.state[layer.weight]["momentum_buffer"], want)
    for k, buf in enumerate(bias_bufs):
        torch.testing.assert_close(opt.state[layers[k].bias]["momentum_buffer"], buf / d[k + 1])


def test_sgd_without_momentum_and_other_optimizers_are_left_alone() -> None:
    model = _fc(2)
    opt = _sgd_step(model, momentum=0.0)
    ENorm(model, opt, c=C).step()
    assert all("momentum_buffer" not in s or s["momentum_buffer"] is None for s in opt.state.values())
    adam = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3, 4, 4, dtype=torch.float64)).sum().backward()
    adam.step()
    state = copy.deepcopy(adam.state_dict()["state"])
    ENorm(model, adam, c=C).step()
    for k, s in adam.state_dict()["state"].items():
        assert torch.equal(s["exp_avg"], state[k]["exp_avg"])


def test_batchnorm_parameters_and_stats_untouched() -> None:
    model = _fc(3, norm="bn")
    model.train()
    model(torch.randn(16, 3, 4, 4, dtype=torch.float64))  # non-trivial running stats
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    state = [copy.deepcopy(bn.state_dict()) for bn in bns]
    enorm = ENorm(model, c=C)
    assert len(enorm.layers) == 5
    enorm.step()
    assert any(not torch.allclose(d, torch.ones_like(d)) for d in enorm.scales)
    for bn, s in zip(bns, state):
        for key, value in bn.state_dict().items():
            assert torch.equal(value, s[key]), key


def test_dead_unit_keeps_scale_one() -> None:
    model = _fc(2)
    layers = balanced_layers(model)
    with torch.no_grad():
        layers[0].weight[3].zero_()  # unit 3 of hidden layer 1 has no incoming weight
        layers[1].weight[:, 5].zero_()  # unit 5 of hidden layer 1 feeds nothing
    x = torch.randn(8, 3, 4, 4, dtype=torch.float64)
    before = _out(model, x)
    enorm = ENorm(model, c=C)
    enorm.step()
    assert enorm.scales[0][3] == 1 and enorm.scales[0][5] == 1
    assert all(torch.isfinite(w).all() for w in _weights(model))
    torch.testing.assert_close(_out(model, x), before, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs", [{"c": 0}, {"c": -1.0}, {"p": 0}])
def test_bad_arguments_raise(kwargs: dict) -> None:
    with pytest.raises(RestudyError, match="positive"):
        ENorm(_fc(1), **kwargs)


def test_non_chain_model_raises() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(RestudyError, match="chain"):
        ENorm(model)


def test_training_with_enorm_stays_finite_and_learns() -> None:
    gen = torch.Generator().manual_seed(0)
    model = fc((2,), 2, hidden=3, width=16, generator=gen)
    x = torch.randn(128, 2, generator=gen)
    y = (x[:, 0] * x[:, 1] > 0).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    enorm = ENorm(model, opt, c=C)
    losses = []
    for _ in range(200):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        enorm.step()
        losses.append(loss.item())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_registered_methods() -> None:
    from restudy.plugins import create

    model = _fc(2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hook = create("method", "enorm", model=model, optimizer=opt, c=1.1)
    assert isinstance(hook, ENorm) and hook.c == 1.1 and hook.optimizer is opt
    assert create("method", "none", model=model, optimizer=opt) is None


def test_channels_last_conv_weights_are_rescaled_in_place() -> None:
    model = _cnn(seed=2)
    reference = copy.deepcopy(model)
    model = model.to(memory_format=torch.channels_last)
    ENorm(model, c=1.1).step()
    ENorm(reference, c=1.1).step()
    for got, want in zip(_weights(model), _weights(reference)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
