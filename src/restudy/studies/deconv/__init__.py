"""Network Deconvolution (Ye et al., ICLR 2020): the study's parts, registered on import.

* :mod:`.archs`: the ten CIFAR networks of Table 1 and the three ImageNet networks of Table 2,
  each with BN or deconvolution (the layers are :mod:`restudy.methods.deconv`);
* :mod:`.small`: the CPU stand-in CNN ``deconv_small_cnn`` of the small and smoke scales.
"""

from __future__ import annotations

from . import archs, small

__all__ = ["archs", "small"]
