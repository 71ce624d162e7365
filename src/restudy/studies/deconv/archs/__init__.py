"""The architectures of Network Deconvolution (Ye et al., ICLR 2020), each with BN or ND.

Importing this package registers every model: the ten CIFAR networks of Table 1 (``vgg16``,
``resnet18``, ``preact_resnet18``, ``densenet121``, ``resnext29_32x4d``, ``mobilenetv2``,
``dpn92``, ``pnasnet_a``, ``senet18``, ``efficientnet_b0``) and the three ImageNet ones of Table 2
(``vgg11_imagenet``, ``resnet18_imagenet``, ``densenet121_imagenet``). Each is called as
``(input_shape, num_classes, norm="bn", width=1.0, **kw)``; ``common.Layers`` is the one place
that turns a conv + BN pair into a FastDeconv.
"""

from __future__ import annotations

from . import common, densenet, dpn, efficientnet, imagenet, mobilenet, pnasnet, resnet, resnext, vgg

__all__ = ["common", "densenet", "dpn", "efficientnet", "imagenet", "mobilenet", "pnasnet", "resnet", "resnext", "vgg"]
