"""Datasets: split, normalised inputs (in-memory tensors, or streamed images) with per-example indices.

Importing this package registers the built-in datasets (``synthetic``, ``mnist1d``, ``digits``,
``cifar10``, ``cifar100``, ``imagenet``); build one with :func:`load_dataset`.
"""

from __future__ import annotations

# Imported for their @register("dataset", ...) side effects.
from . import cifar, digits, imagenet, mnist1d, synthetic  # noqa: F401
from .dataset import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
