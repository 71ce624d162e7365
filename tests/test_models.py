"""Models: the ENorm paper's FC net (originals.md §3.3) and the small ENorm-compatible CNN."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from restudy.errors import RestudyError
from restudy.models.conv import small_cnn
from restudy.models.fc import fc


def _fc_param_count(n_in: int, hidden: int, width: int, k: int, bias: bool, bn: bool) -> int:
    weights = n_in * width + hidden * width * width + width * k
    biases = (hidden + 1) * width + k if bias else 0
    bn_params = 2 * (hidden + 1) * width if bn else 0
    return weights + biases + bn_params


@pytest.mark.parametrize("hidden", [0, 1, 3])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("norm", ["none", "bn"])
def test_fc_shapes_and_parameter_count(hidden: int, bias: bool, norm: str) -> None:
    model = fc((3, 4, 4), 10, hidden=hidden, width=20, bias=bias, norm=norm)
    assert isinstance(model[0], nn.Flatten)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == hidden + 2
    assert [m.in_features for m in linears] == [48] + [20] * (hidden + 1)
    assert [m.out_features for m in linears] == [20] * (hidden + 1) + [10]
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == _fc_param_count(48, hidden, 20, 10, bias, norm == "bn")
    model.eval()
    assert model(torch.randn(5, 3, 4, 4)).shape == (5, 10)


def test_fc_paper_size() -> None:
    """--n-layers 15 in the original = 13 hidden width→width layers here (§3.3)."""
    model = fc((3, 32, 32), 10, hidden=13)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 3072 * 500 + 13 * 500 * 500 + 500 * 10


def test_fc_without_bias_has_no_bias_parameters() -> None:
    model = fc((8,), 3, hidden=2, width=6)
    assert not any("bias" in name for name, _ in model.named_parameters())
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Linear))


def test_fc_layer_order() -> None:
    """ReLU after every non-final Linear; BatchNorm1d between Linear and ReLU; none at the end."""
    kinds = [type(m) for m in fc((8,), 3, hidden=1, width=6, norm="bn")]
    assert kinds == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d,
                     nn.ReLU, nn.Linear]
    kinds = [type(m) for m in fc((8,), 3, hidden=1, width=6)]
    assert kinds == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]


def test_fc_he_init_and_zero_bias() -> None:
    gen = torch.Generator().manual_seed(0)
    model = fc((3, 32, 32), 10, hidden=1, width=500, bias=True, generator=gen)
    for layer in (m for m in model.modules() if isinstance(m, nn.Linear)):
        want = math.sqrt(2 / layer.in_features)
        assert layer.weight.std().item() == pytest.approx(want, rel=0.05)
        assert layer.weight.mean().item() == pytest.approx(0, abs=0.05 * want)
        assert torch.count_nonzero(layer.bias) == 0


def test_fc_generator_makes_init_reproducible() -> None:
    a = fc((8,), 3, width=6, generator=torch.Generator().manual_seed(1))
    b = fc((8,), 3, width=6, generator=torch.Generator().manual_seed(1))
    c = fc((8,), 3, width=6, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[1].weight, c[1].weight)


@pytest.mark.parametrize("norm", ["none", "bn"])
def test_fc_backward(norm: str) -> None:
    model = fc((3, 4, 4), 10, hidden=2, width=12, bias=True, norm=norm)
    loss = nn.functional.cross_entropy(model(torch.randn(6, 3, 4, 4)), torch.arange(6))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model[1].weight.grad.abs().sum() > 0


def test_fc_bad_norm_lists_allowed_values() -> None:
    with pytest.raises(RestudyError) as info:
        fc((8,), 3, norm="layer")
    message = str(info.value)
    assert "none" in message and "bn" in message and "layer" in message


def test_fc_bad_init_and_sizes() -> None:
    with pytest.raises(RestudyError, match="kaiming_normal"):
        fc((8,), 3, init="xavier")
    with pytest.raises(RestudyError, match="hidden"):
        fc((8,), 3, hidden=-1)


def test_small_cnn_shapes_bias_free_backward() -> None:
    model = small_cnn((3, 16, 16), 10, width=4, blocks=2)
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    out = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_small_cnn_rejects_bad_input_shape() -> None:
    with pytest.raises(RestudyError, match="input_shape"):
        small_cnn((3, 2, 2), 10, blocks=2)
    with pytest.raises(RestudyError, match="input_shape"):
        small_cnn((16, 16), 10)


def test_models_are_registered() -> None:
    from restudy.registry import create

    model = create("model", "fc", input_shape=(3, 4, 4), num_classes=10, hidden=1, width=8)
    assert model(torch.randn(2, 3, 4, 4)).shape == (2, 10)
    model = create("model", "small_cnn", input_shape=(1, 8, 8), num_classes=4)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 4)
