"""Architectures, one file per family; importing this package registers them by name."""

from __future__ import annotations

from . import conv, fc, resnet

__all__ = ["conv", "fc", "resnet"]
