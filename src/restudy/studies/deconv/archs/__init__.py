"""The architectures of Network Deconvolution (Ye et al., ICLR 2020), each with BN or ND.

Importing this package registers every model: the ten CIFAR networks of Table 1 (``vgg16``,
``resnet18``, ``preact_resnet18``, ``densenet121``, ``resnext29_32x4d``, ``mobilenetv2``,
``dpn92``, ``pnasnet_a``, ``senet18``, ``efficientnet_b0``) and the three ImageNet ones of Table 2
(``vgg11_imagenet``, ``resnet18_imagenet``, ``densenet121_imagenet``). Each is called as
``(input_shape, num_classes, norm="bn", width=1.0, **kw)``; ``common.Layers`` is the one place
that turns a conv + BN pair into a FastDeconv.

Parameter counts at width 1 with 10 classes (measured, ``tests/test_deconv_archs.py``). The paper's
Params column counts the ND networks (FastDeconv weight + bias, no BN scale and shift): it matches
them to its 0.01M rounding for nine networks; VGG-16's 14,719,818 is printed 14.71M (14.72M rounded).

| network | BN | ND | paper |
| --- | --- | --- | --- |
| vgg16 | 14,724,042 | 14,719,818 | 14.71M |
| resnet18 | 11,173,962 | 11,169,162 | 11.17M |
| preact_resnet18 | 11,171,146 | 11,169,162 | 11.17M |
| densenet121 | 6,956,298 | 6,883,018 | 6.88M |
| resnext29_32x4d | 4,774,218 | 4,761,610 | 4.76M |
| mobilenetv2 | 2,296,922 | 2,279,378 | 2.28M |
| dpn92 | 34,236,634 | 34,179,970 | 34.18M |
| pnasnet_a | 130,646 | 128,226 | 0.13M |
| senet18 | 11,260,354 | 11,258,242 | 11.26M |
| efficientnet_b0 | 2,912,089 | 2,912,057 | 2.91M |
"""

from __future__ import annotations

from . import common, densenet, dpn, efficientnet, imagenet, mobilenet, pnasnet, resnet, resnext, vgg

__all__ = [
    "CIFAR_NETWORKS",
    "IMAGENET_NETWORKS",
    "common",
    "densenet",
    "dpn",
    "efficientnet",
    "imagenet",
    "mobilenet",
    "pnasnet",
    "resnet",
    "resnext",
    "vgg",
]

# The registered model names, in the order of the paper's Table 1 and Table 2.
CIFAR_NETWORKS = (
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
IMAGENET_NETWORKS = ("vgg11_imagenet", "resnet18_imagenet", "densenet121_imagenet")

# Every architecture takes the arguments of common.Layers: `restudy show --settings` reads their help there.
for _module, _names in (
    (vgg, ("vgg16",)),
    (resnet, ("resnet18", "preact_resnet18", "senet18")),
    (densenet, ("densenet121",)),
    (resnext, ("resnext29_32x4d",)),
    (mobilenet, ("mobilenetv2",)),
    (dpn, ("dpn92",)),
    (pnasnet, ("pnasnet_a",)),
    (imagenet, ("vgg11_imagenet", "resnet18_imagenet", "densenet121_imagenet")),
):
    for _name in _names:
        getattr(_module, _name).documented_by = common.Layers
