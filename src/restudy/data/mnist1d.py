"""``"mnist1d"``: the MNIST-1D benchmark (Greydanus 2020), generated offline by package ``mnist1d``.

Only ``mnist1d.data.make_dataset`` is used. ``get_dataset`` is avoided on purpose: it downloads from
the network and reads/writes a pickle file, and restudy never unpickles.

``make_dataset`` seeds the *global* numpy and Python RNGs (``mnist1d.utils.set_seed``); we save and
restore both around the call so that loading data cannot change a training run's random stream.

The disk cache carries the generating arguments and a sha256 of its arrays; a cache that fails
either (edited, truncated, copied from other arguments) is rebuilt with a warning, never trusted.

Layout: the natural MNIST-1D layout ``[N, 40]`` is returned whether or not ``flatten`` is set
(a 1-D model that wants channels can ``unsqueeze(1)``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import random
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..plugins import register
from ..storage.safeio import atomic_write_bytes
from .dataset import Dataset, maybe_flatten, split_note, standardize_scalar, subset_size

_NUM_CLASSES = 10
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _preserve_global_rng() -> Iterator[None]:
    """Restore numpy's and Python's global RNG states on exit (even if the body raises)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _check_args(num_samples: int, train_split: float) -> None:
    """Raise :class:`DataError` unless the arguments give a non-empty train and test split."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2 * _NUM_CLASSES:
        raise DataError("num_samples must be an integer >= 20", where="dataset 'mnist1d'", got=num_samples)
    total = (num_samples // _NUM_CLASSES) * _NUM_CLASSES
    if not 0.0 < train_split < 1.0 or not 0 < int(total * train_split) < total:
        raise DataError(
            "train_split must leave both splits non-empty",
            where="dataset 'mnist1d'",
            got=train_split,
            allowed="0 < train_split < 1",
        )


_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _cache_file(num_samples: int, train_split: float, seed: int) -> Path:
    """Where generated arrays are kept between processes (``$RESTUDY_CACHE`` or ~/.cache/restudy)."""
    root = Path(os.environ.get("RESTUDY_CACHE") or Path.home() / ".cache" / "restudy")
    version = importlib.metadata.version("mnist1d")
    return root / "mnist1d" / f"mnist1d-{version}-n{num_samples}-split{train_split:g}-seed{seed}.safetensors"


def _cache_args(num_samples: int, train_split: float, seed: int) -> str:
    """The generating arguments as the cache records them (canonical JSON)."""
    return json.dumps(
        {
            "mnist1d": importlib.metadata.version("mnist1d"),
            "num_samples": num_samples,
            "train_split": train_split,
            "seed": seed,
        },
        sort_keys=True,
    )


def _cache_digest(args: str, arrays: tuple[np.ndarray, ...]) -> str:
    """sha256 of the arguments and of every array's name, dtype, shape and bytes."""
    h = hashlib.sha256(args.encode())
    for name, a in zip(_KEYS, arrays):
        h.update(f"|{name}:{a.dtype.str}:{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _read_cache(path: Path, args: str) -> tuple[np.ndarray, ...] | None:
    """The cached arrays if the file exists and passes its checksum; else None (warned)."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = tuple(f.get_tensor(k) for k in _KEYS)
    except Exception as e:  # truncated, not safetensors, a key missing: rebuild
        log.warning("MNIST-1D cache %s is unreadable (%s); rebuilding it", path, e)
        return None
    if meta.get("args") != args or meta.get("sha256") != _cache_digest(args, arrays):
        log.warning("MNIST-1D cache %s fails its checksum (changed, or made for other arguments); rebuilding it", path)
        return None
    return arrays


@functools.lru_cache(maxsize=4)
def _generate(num_samples: int, train_split: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D as numpy arrays, cached in memory and on disk (safetensors, never pickle).

    Importing the package and generating take about a second each; every worker process of a
    study would pay them again without the disk cache. The generator is deterministic in its
    arguments and package version, which name the cache file and are recorded in it with a
    checksum of the arrays; a cache that fails the check is regenerated and rewritten.

    Returns:
        ``(x_train, y_train, x_test, y_test)`` as read-only numpy arrays (read-only because the
        cache hands the same arrays to every caller).
    """
    from safetensors.numpy import save

    path = _cache_file(num_samples, train_split, seed)
    args = _cache_args(num_samples, train_split, seed)
    arrays = _read_cache(path, args)
    if arrays is None:
        arrays = _make(num_samples, train_split, seed)
        try:
            meta = {"args": args, "sha256": _cache_digest(args, arrays)}
            atomic_write_bytes(path, save(dict(zip(_KEYS, arrays)), metadata=meta))
        except OSError as e:
            log.info("cannot cache MNIST-1D at %s: %s", path, e)
    for a in arrays:
        a.setflags(write=False)
    return arrays  # type: ignore[return-value]


def _make(num_samples: int, train_split: float, seed: int) -> tuple[np.ndarray, ...]:
    # Imported lazily: mnist1d pulls in matplotlib and requests, which most runs never need.
    from mnist1d.data import get_dataset_args, make_dataset

    args: dict[str, Any] = get_dataset_args(as_dict=True)
    args.update(num_samples=num_samples, train_split=train_split, seed=seed)
    with _preserve_global_rng():
        data = make_dataset(SimpleNamespace(**args))
    return (
        np.ascontiguousarray(data["x"], dtype=np.float32),
        np.ascontiguousarray(data["y"], dtype=np.int64),
        np.ascontiguousarray(data["x_test"], dtype=np.float32),
        np.ascontiguousarray(data["y_test"], dtype=np.int64),
    )


@register("dataset", "mnist1d")
def mnist1d(
    num_samples: int = 5000,
    train_split: float = 0.8,
    seed: int = 42,
    n_train: int | None = None,
    n_test: int | None = None,
    flatten: bool = False,
) -> Dataset:
    """MNIST-1D: 10 classes of 1-D signals of length 40, generated from templates.

    The defaults reproduce the package's standard dataset (5000 samples, 4000 train / 1000 test,
    seed 42). The package already standardises over all samples; we re-standardise with a scalar
    mean/std computed on the train subset used, so no test statistics leak into the inputs.

    Args:
        num_samples: examples generated in total (rounded down to a multiple of 10).
        train_split: fraction of the generated examples in the train split.
        seed: generation seed.
        n_train: keep the first ``n_train`` train examples (``None``: all).
        n_test: keep the first ``n_test`` test examples (``None``: all).
        flatten: accepted for a uniform interface; the layout is ``[N, 40]`` either way.

    Returns:
        The dataset, inputs float32 ``[N, 40]``.
    """
    _check_args(num_samples, train_split)
    x_tr, y_tr, x_te, y_te = _generate(num_samples, float(train_split), seed)
    k_tr = subset_size(n_train, len(y_tr), "train", "mnist1d")
    k_te = subset_size(n_test, len(y_te), "test", "mnist1d")
    # torch.tensor copies, so callers may modify their tensors without touching the cache.
    x_train, x_test, norm = standardize_scalar(torch.tensor(x_tr[:k_tr]), torch.tensor(x_te[:k_te]))
    description = (
        f"MNIST-1D (generated offline: {num_samples} samples, seed {seed}), "
        f"{split_note('train', k_tr, len(y_tr))}, "
        f"{split_note('test', k_te, len(y_te))}; "
        "scalar standardisation with train-split statistics"
    )
    return Dataset(
        name="mnist1d",
        x_train=maybe_flatten(x_train, flatten),
        y_train=torch.tensor(y_tr[:k_tr]),
        x_test=maybe_flatten(x_test, flatten),
        y_test=torch.tensor(y_te[:k_te]),
        num_classes=_NUM_CLASSES,
        idx_train=torch.arange(k_tr),
        idx_test=torch.arange(k_te),
        description=description,
        normalization=norm,
    )
