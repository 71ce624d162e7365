"""Datasets: in-memory, split, normalised tensors with per-example indices.

Importing this package registers the built-in datasets (``synthetic``, ``mnist1d``, ``digits``,
``cifar10``, ``cifar100``); build one with :func:`load_dataset`.
"""

from __future__ import annotations

# Imported for their @register("dataset", ...) side effects.
from . import cifar, digits, mnist1d, synthetic  # noqa: F401
from .dataset import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
