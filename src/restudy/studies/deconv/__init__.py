"""Network Deconvolution (Ye et al., ICLR 2020): the study's parts, registered on import.

* :mod:`.archs`: the ten CIFAR networks of Table 1 and the three ImageNet networks of Table 2,
  each with BN or deconvolution (the layers are :mod:`restudy.methods.deconv`);
* :mod:`.small`: the CPU stand-in CNN ``deconv_small_cnn`` of the small and smoke scales;
* :mod:`.claims`: claim kinds ``gap_shrinks`` (deconvolution's advantage is largest at 1 epoch) and
  ``cost_ratio`` (its training time over BN's);
* :mod:`.coverage_claims`: claim kinds for the [Re] report's own findings (``gap_contrast``,
  ``gap_vs_reported``, ``seed_spread``, ``squared_deviation_range``) and run metric ``peak_gpu_mem``.
"""

from __future__ import annotations

from . import archs, claims, coverage_claims, small

__all__ = ["archs", "claims", "coverage_claims", "small"]
