"""Models: every registered architecture builds, runs forward and backward with finite values, and
has the parameter count its paper states; the ENorm paper's FC net (the original
``models/fully_connected.py``), the small ENorm-compatible CNN and the CIFAR ResNets in detail."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from restudy import plugins
from restudy.errors import RestudyError
from restudy.models.conv import small_cnn
from restudy.models.fc import fc
from restudy.plugins import create

# The built-in studies' own models register when their module is imported (as running the study does).
plugins.import_study_module("restudy.studies.rethinking_generalization")
plugins.import_study_module("restudy.studies.deconv")
plugins.import_study_module("restudy.studies.enorm")
from restudy.studies.deconv.archs import CIFAR_NETWORKS, IMAGENET_NETWORKS  # noqa: E402

# A small, fast configuration of every registered model: a new model adds one line here.
SMALL: dict[str, dict] = {
    "fc": {"input_shape": (3, 8, 8), "hidden": 2, "width": 16, "bias": True},
    "fc_softmax_output": {"input_shape": (3, 8, 8), "hidden": 2, "width": 16, "bias": True},  # the ENorm study's
    "small_inception": {"input_shape": (3, 8, 8), "width": 0.1},
    "small_alexnet": {"input_shape": (3, 8, 8), "width": 0.1},
    "small_cnn": {"input_shape": (3, 16, 16), "width": 4},
    "resnet14": {"input_shape": (3, 16, 16), "width": 4},
    "resnet34": {"input_shape": (3, 16, 16), "width": 4},
    # the deconv study's networks (with BN here; their ND variants: tests/test_deconv_archs.py)
    "deconv_small_cnn": {"input_shape": (3, 8, 8), "width": 4},
    **{name: {"input_shape": (3, 32, 32), "width": 0.125} for name in CIFAR_NETWORKS},
    **{name: {"input_shape": (3, 64, 64), "width": 0.125} for name in IMAGENET_NETWORKS},
}
CLASSES = 7


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _restudys_own(name: str) -> bool:
    """Registered by restudy's own modules (the engine and the built-in studies), not by a test."""
    return plugins.get("model", name).__module__.startswith("restudy.")


def test_every_registered_model_has_a_test_configuration():
    assert sorted(SMALL) == [n for n in plugins.names("model") if _restudys_own(n)]


@pytest.mark.parametrize("name", plugins.names("model"))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_shape_and_finite_outputs(name: str, mode: str):
    torch.manual_seed(0)
    model = create("model", name, num_classes=CLASSES, **SMALL[name])
    model.train(mode == "train")
    out = model(torch.randn(4, *SMALL[name]["input_shape"]))
    assert out.shape == (4, CLASSES)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", plugins.names("model"))
def test_backward_reaches_every_parameter(name: str):
    torch.manual_seed(0)
    model = create("model", name, num_classes=CLASSES, **SMALL[name])
    loss = nn.functional.cross_entropy(model(torch.randn(4, *SMALL[name]["input_shape"])), torch.arange(4))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


# Parameter counts stated by a paper (or derived from the original code where no paper states one).
STATED_COUNTS = [
    # Zhang et al. 2017, Table 1: MLP 1x512 = 2352 -> 512 -> 10 with biases.
    pytest.param(
        "fc",
        {"input_shape": (3, 28, 28), "hidden": 0, "width": 512, "bias": True},
        10,
        1_209_866,
        id="mlp_1x512_zhang2017",
    ),
    # Zhang et al. 2017, Table 1: MLP 3x512 = 2352 -> 512 -> 512 -> 512 -> 10 with biases.
    pytest.param(
        "fc",
        {"input_shape": (3, 28, 28), "hidden": 2, "width": 512, "bias": True},
        10,
        1_735_178,
        id="mlp_3x512_zhang2017",
    ),
    # ENorm (Stock et al. 2019; rep2019 §2): 3072-500x(p)-10, bias-free, p = 1 ... 19 intermediary layers.
    *[
        pytest.param(
            "fc",
            {"input_shape": (3, 32, 32), "hidden": p},
            10,
            3072 * 500 + p * 500 * 500 + 500 * 10,
            id=f"enorm_fc_p{p}",
        )
        for p in (1, 9, 19)
    ],
    # ResNet-14 of Summers & Dinneen's code (resnet_cifar.py); the paper states no count, this is the
    # arithmetic of that architecture (see test_resnet14_structure_and_size).
    pytest.param("resnet14", {"input_shape": (3, 32, 32)}, 10, 172_602, id="resnet14_summers2021_code"),
    # ResNet-34 of rep2022 Table 1 (3/4/6/3 blocks, 64-512 wide) with a 3x3 stem and 1x1 projection
    # shortcuts (assumed): 21,282,122 for 10 classes, the usual CIFAR ResNet-34; CIFAR-100 as in rep2022 §4.2.
    pytest.param("resnet34", {"input_shape": (3, 32, 32)}, 10, 21_282_122, id="resnet34_cifar10"),
    pytest.param("resnet34", {"input_shape": (3, 32, 32)}, 100, 21_282_122 + 512 * 90 + 90, id="resnet34_rep2022"),
]


@pytest.mark.parametrize("name,kwargs,classes,count", STATED_COUNTS)
def test_parameter_count_as_stated(name: str, kwargs: dict, classes: int, count: int):
    assert _count(create("model", name, num_classes=classes, **kwargs)) == count


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
    """--n-layers 15 in the original = 13 hidden width→width layers here (``models/fully_connected.py``)."""
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
    assert kinds == [nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
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
    from restudy.plugins import create

    model = create("model", "fc", input_shape=(3, 4, 4), num_classes=10, hidden=1, width=8)
    assert model(torch.randn(2, 3, 4, 4)).shape == (2, 10)
    model = create("model", "small_cnn", input_shape=(1, 8, 8), num_classes=4)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_resnet14_structure_and_size():
    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert len(convs) == 13  # stem + 12 block convs: no 1x1 shortcut convs
    assert sum(1 for x in m.modules() if isinstance(x, torch.nn.Linear)) == 1
    # conv weights: 3*16*9 + 4*16*16*9 + (16*32 + 3*32*32)*9 + (32*64 + 3*64*64)*9; fc 64*10+10;
    # BN: 2 per block (2*(16*4 + 32*4 + 64*4)) + stem 2*16 + two shortcut BNs 2*(16+32)
    conv = 3 * 16 * 9 + 4 * 16 * 16 * 9 + (16 * 32 + 3 * 32 * 32) * 9 + (32 * 64 + 3 * 64 * 64) * 9
    bn = 2 * (16 * 4 + 32 * 4 + 64 * 4) + 2 * 16 + 2 * (16 + 32)
    assert _count(m) == conv + bn + 64 * 10 + 10
    out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_resnet14_residual_branches_start_at_zero_and_bn_names_match_the_original():
    m = create("model", "resnet14", input_shape=(3, 32, 32), num_classes=10)
    names = dict(m.named_parameters())
    second_bns = [n for n in names if n.endswith("bn2.weight")]
    assert len(second_bns) == 6 and all(torch.all(names[n] == 0) for n in second_bns)
    # The downsampling BatchNorm has no "bn" in its name (it lands in the plain lr group).
    shortcut_bn = [n for n in names if "shortcut" in n]
    assert shortcut_bn and all("bn" not in n for n in shortcut_bn)


def test_resnet34_runs_on_cifar100_shape():
    m = create("model", "resnet34", input_shape=(3, 32, 32), num_classes=100, width=8)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 100)
