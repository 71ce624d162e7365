"""Per-source seed streams and determinism settings.

Every source of randomness (``init``, ``order``, ``augment``, ``dropout``, ``perturb``: which
weight a one-bit change touches, and ``data``: the data transforms applied once before training, e.g.
random labels) gets its own seed,
derived from (study seed, source, seed index[, experiment, variant]) with NumPy's ``SeedSequence``,
so changing one source's seed leaves the others' streams untouched. Library code never seeds the
global RNG except inside ``scoped_seed`` (model construction) and the worker's dropout stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

import numpy as np

from ..errors import RestudyError

SOURCES = ("init", "order", "augment", "dropout", "perturb", "data")


def stable_int(text: str) -> int:
    """A 32-bit integer from a string, stable across processes and Python versions."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def derive_seed(root: int, source: str, index: int, scope: tuple[str, ...] = ()) -> int:
    """The seed (a non-negative 63-bit int) of ``source`` for seed index ``index``.

    Args:
        root: the study's root seed.
        source: one of ``SOURCES``.
        index: the seed index (0, 1, ...).
        scope: extra keys (experiment id, variant id) for independent streams.
    """
    if source not in SOURCES:
        raise RestudyError("unknown source of randomness", got=source, allowed=SOURCES)
    if index < 0:
        raise RestudyError("seed index must be >= 0", got=index)
    entropy = [int(root) & 0xFFFFFFFF, int(root) >> 32, stable_int(source), int(index), *(stable_int(s) for s in scope)]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def run_seeds(
    root: int, seed_index: int, vary: list[str] | tuple[str, ...], scope: tuple[str, ...] = ()
) -> dict[str, int]:
    """Seeds of every source for one run; sources not in ``vary`` are held at index 0."""
    return {s: derive_seed(root, s, seed_index if s in vary else 0, scope) for s in SOURCES}


def generator(seed: int, device: str = "cpu"):
    """A ``torch.Generator`` seeded with ``seed``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


@contextlib.contextmanager
def scoped_seed(seed: int) -> Iterator[None]:
    """Seed torch's global RNG inside the block and restore it afterwards (model construction
    draws from the global RNG)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


# cuBLAS's deterministic workspace (CUDA >= 10.2): without it, deterministic algorithms refuse
# cuBLAS matmuls on the GPU. torch reads it when it makes a cuBLAS handle's workspace, so it must be
# in the environment before the process's first CUDA matmul (set here before anything touches CUDA).
CUBLAS_DETERMINISTIC = ":4096:8"


def prepare_process_env(threads: int, kernels: str) -> None:
    """Environment a worker needs *before* torch is imported (inherited by spawned children).

    ``kernels: deterministic`` sets ``CUBLAS_WORKSPACE_CONFIG`` (a value the user set is kept);
    ``nondeterministic`` leaves cuBLAS as it is, on purpose (the ``kernels`` source of the
    nondeterminism study measures that variability).
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if kernels == "deterministic":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)


def apply_determinism(kernels: str, threads: int) -> dict[str, object]:
    """Set thread count and kernel determinism; return the flags as recorded with each run.

    Deterministic kernels: ``CUBLAS_WORKSPACE_CONFIG`` first (before any CUDA call of this
    function; kept if the user set it), deterministic algorithms on, cuDNN deterministic with
    benchmarking off. Nondeterministic: all of them off and cuDNN benchmarking on. The record says
    whether CUDA was already initialised when the variable was set (then a matmul run before it may
    have fixed another workspace).
    """
    if kernels not in ("deterministic", "nondeterministic"):
        raise RestudyError("unknown kernels setting", got=kernels, allowed=("deterministic", "nondeterministic"))
    det = kernels == "deterministic"
    if det:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    import torch

    cuda_was_initialised = torch.cuda.is_initialized()
    torch.set_num_threads(threads)
    if torch.are_deterministic_algorithms_enabled() != det:
        # The first call costs ~1 s (torch imports its compiler packages there): skip it when the
        # flag already has the wanted value.
        torch.use_deterministic_algorithms(det, warn_only=False)
    torch.backends.cudnn.deterministic = det
    torch.backends.cudnn.benchmark = not det
    flags: dict[str, object] = {
        "kernels": kernels,
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    if cuda_was_initialised:
        flags["cuda_initialised_before_flags"] = True
    return flags
