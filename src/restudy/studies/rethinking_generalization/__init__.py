"""Understanding deep learning requires rethinking generalization (Zhang et al., ICLR 2017): the
study's parts, registered on import.

* :mod:`.models`: Small Inception (with and without BN) and Small AlexNet (with LRN); the MLPs are
  the engine's ``fc`` net with biases;
* :mod:`.preprocess`: the data set ``cifar10_zhang`` (center crop 28×28, per-image whitening);
* :mod:`.transforms`: the randomization tests as data transforms (corrupted, random labels;
  shuffled, random pixels; Gaussian inputs);
* :mod:`.claims`: claim kinds ``chance_level``, ``fit_slowdown``, ``modest_effect`` and ``step_loss``;
  :mod:`.fit_claims`: ``unfit_runs`` and ``slowdown_order``.
"""

from __future__ import annotations

from . import claims, fit_claims, models, preprocess, transforms

__all__ = ["claims", "fit_claims", "models", "preprocess", "transforms"]
