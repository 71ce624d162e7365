"""The Network Deconvolution architectures: the paper's parameter counts, forward shapes, the BN → ND
replacement rules of originals.md §1.6, and clear errors for bad arguments."""

from __future__ import annotations

import pytest
import torch

import restudy.studies.deconv.archs  # noqa: F401  (registers the models)
from restudy import registry
from restudy.errors import RestudyError
from restudy.studies.deconv.archs.common import count_layers

CIFAR = (
    "vgg16",
    "resnet18",
    "preact_resnet18",
    "densenet121",
    "resnext29_32x4d",
    "mobilenetv2",
    "dpn92",
    "pnasnet_a",
    "senet18",
    "efficientnet_b0",
)
IMAGENET = ("vgg11_imagenet", "resnet18_imagenet", "densenet121_imagenet")

# Exact parameter counts of the BN networks at width 1 with 10 classes. They are those of the
# kuangliu/pytorch-cifar models with bias-free convs (the public descriptions these follow; e.g.
# ResNet-18 11,173,962, SENet-18 11,260,354, DPN-92 34,236,634), and EfficientNet-B0 of the ND code
# (no 1×1 head, linear 320 → classes).
BN_COUNTS = {
    "vgg16": 14_724_042,
    "resnet18": 11_173_962,
    "preact_resnet18": 11_171_146,
    "densenet121": 6_956_298,
    "resnext29_32x4d": 4_774_218,
    "mobilenetv2": 2_296_922,
    "dpn92": 34_236_634,
    "pnasnet_a": 130_646,
    "senet18": 11_260_354,
    "efficientnet_b0": 2_912_089,
}


def build(name: str, classes: int = 10, shape: tuple[int, ...] = (3, 32, 32), **kw) -> torch.nn.Module:
    return registry.create("model", name, input_shape=shape, num_classes=classes, **kw)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def bn_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {name: build(name) for name in CIFAR}


@pytest.mark.parametrize("name", CIFAR)
def test_bn_networks_have_the_public_architectures_parameter_counts(bn_models, name):
    assert n_params(bn_models[name]) == BN_COUNTS[name]


@pytest.mark.parametrize("name", CIFAR)
def test_bn_network_maps_a_cifar_batch_to_class_scores(bn_models, name):
    model = bn_models[name].eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "pnasnet_a", "efficientnet_b0"])
def test_a_hundred_classes_change_only_the_classifier(bn_models, name):
    model = build(name, classes=100).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    features = list(bn_models[name].children())[-1].in_features
    assert n_params(model) - BN_COUNTS[name] == 90 * (features + 1)


@pytest.mark.parametrize("name", CIFAR)
def test_width_shrinks_a_network_and_keeps_it_working(bn_models, name):
    small = build(name, width=0.25).eval()
    assert n_params(small) < n_params(bn_models[name]) / 4
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert count_layers(small)["Conv2d"] == count_layers(bn_models[name])["Conv2d"]


# torchvision's counts for the standard ImageNet networks: VGG-11 132,863,336 (132.86M); VGG-11-BN
# 132,868,840 (132.87M; torchvision keeps the conv biases before BN, these convs are bias-free:
# 132,866,088, also 132.87M); ResNet-18 11,689,512 (11.69M); DenseNet-121 7,978,856 (7.98M).
@pytest.mark.parametrize(
    ("name", "norm", "millions"),
    [
        ("vgg11_imagenet", "none", 132.86),
        ("vgg11_imagenet", "bn", 132.87),
        ("resnet18_imagenet", "bn", 11.69),
        ("densenet121_imagenet", "bn", 7.98),
    ],
)
def test_imagenet_networks_have_their_standard_parameter_counts(name, norm, millions):
    model = build(name, classes=1000, shape=(3, 64, 64), norm=norm)
    assert round(n_params(model) / 1e6, 2) == millions
    if name != "vgg11_imagenet":  # VGG-11's 25088 × 4096 layer is big; its forward is checked at width 1/8
        with torch.no_grad():
            assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_imagenet_vgg11_runs_on_a_small_image():
    model = build("vgg11_imagenet", classes=1000, shape=(3, 64, 64), width=0.125).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_bad_arguments_name_the_field_the_value_and_what_is_allowed():
    with pytest.raises(RestudyError, match=r"model\.norm.*allowed: bn, nd.*got: 'gn'"):
        build("resnet18", norm="gn")
    with pytest.raises(RestudyError, match=r"model\.norm.*got: 'none'"):
        build("resnet18", norm="none")  # only VGG-11 of Table 2 runs without a norm
    with pytest.raises(RestudyError, match=r"model\.width.*positive.*got: 0"):
        build("vgg16", width=0)
    with pytest.raises(RestudyError, match=r"model\.n_iters.*allowed: .*n_iter"):
        build("vgg16", n_iters=3)
    with pytest.raises(RestudyError, match=r"image inputs"):
        build("vgg16", shape=(40,))
