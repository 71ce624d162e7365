"""The environment a run executed in: versions, hardware, threads, determinism flags, git state.

``fingerprint()`` hashes the parts that can change numerical results, so a resumed study can flag
runs that were produced under a different environment.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

# Keys whose change can change results bit-for-bit (fingerprinted).
FINGERPRINT_KEYS = (
    "python",
    "torch",
    "numpy",
    "cpu",
    "device",
    "gpu",
    "cuda",
    "cudnn",
    "threads",
    "mkl",
    "restudy",
    "execution",
)


def cpu_model() -> str:
    """E.g. 'AMD EPYC (family 26, model 2, avx512)': the name alone does not tell CPU generations
    apart, and they round differently (another kernel path)."""
    try:
        info: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
        flags = info.get("flags", "").split()
        isa = "avx512" if "avx512f" in flags else ("avx2" if "avx2" in flags else "no avx2")
        return (
            f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, "
            f"model {info.get('model', '?')}, {isa})"
        )
    except OSError:
        return platform.processor() or platform.machine()


def packages() -> dict[str, str]:
    """Every installed distribution and its version."""
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            out[name] = dist.version
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def git_state(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Commit and dirty state of the git repository containing ``path`` (a user's study), if any."""
    if path is None:
        return None
    d = Path(path).resolve()
    d = d if d.is_dir() else d.parent
    try:
        top = subprocess.run(
            ["git", "-C", str(d), "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=5
        )
        if top.returncode != 0:
            return None
        commit = subprocess.run(
            ["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = (
            subprocess.run(
                ["git", "-C", str(d), "status", "--porcelain"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            != ""
        )
        return {"repo": top.stdout.strip(), "commit": commit or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return None


def capture(
    *,
    threads: int | None = None,
    determinism: dict[str, Any] | None = None,
    memory_format: str | None = None,
    study_path: str | None = None,
    with_packages: bool = True,
    execution: str | None = None,
    device: str | None = None,
    gpu_flags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The environment as a JSON-safe dict.

    ``device``: the device the run trains on (default: cuda when available, else cpu).
    ``gpu_flags``: the TF32 flags the run set (:func:`restudy.training.devices.apply_tf32`). With CUDA,
    the GPU's capability, memory, count and driver version are recorded too (not fingerprinted:
    the GPU's name, CUDA and cuDNN versions are).
    """
    import numpy
    import torch

    from .. import __version__

    cuda = torch.cuda.is_available()

    env: dict[str, Any] = {
        "restudy": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads if threads is not None else torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "device": device or ("cuda" if cuda else "cpu"),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": torch.cuda.get_device_name(torch.cuda.current_device()) if cuda else None,
        "determinism": determinism,
        "memory_format": memory_format,
        "execution": execution,  # "single" or "stacked": results differ at rounding level between them
        "hostname": platform.node(),
    }
    if cuda:
        env.update(gpu_facts())
    if gpu_flags is not None:
        env["gpu_flags"] = gpu_flags
    git = git_state(study_path)
    if git is not None:
        env["study_git"] = git
    if with_packages:
        env["packages"] = packages()
    env["fingerprint"] = fingerprint(env)
    return env


def load_average() -> float | None:
    """The host's 1-minute load average (runnable processes, all cores together), or None where the
    system does not report one. Recorded at a run's start and end (not fingerprinted): a timing
    taken while other work shared the cores says so."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def host_load(start: float | None) -> dict[str, Any]:
    """``{"start", "end", "cpus"}``: the load averages around a run and the host's core count."""
    return {"start": start, "end": load_average(), "cpus": os.cpu_count()}


def fingerprint(env: dict[str, Any]) -> str:
    core = {k: env.get(k) for k in FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:12]


def diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fingerprinted keys whose values differ between two environments."""
    return {k: (a.get(k), b.get(k)) for k in FINGERPRINT_KEYS if a.get(k) != b.get(k)}


# How many runs share each GPU and why, as the executor tells its worker processes (recorded with the GPU).
RUNS_PER_GPU_ENV = "RESTUDY_RUNS_PER_GPU"


# --- GPU facts --------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``, or None where it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def gpu_facts() -> dict[str, Any]:
    """The visible GPUs as the environment records them (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    i = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(i)
    return {
        "gpu_count": torch.cuda.device_count(),
        "gpu_capability": f"{props.major}.{props.minor}",
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "driver": driver_version(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "runs_per_gpu": os.environ.get(RUNS_PER_GPU_ENV),  # set by the executor for its workers
    }
