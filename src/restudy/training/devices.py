"""Devices: where a run trains, how its GPU arithmetic is set up, and how many runs share one GPU.

* :func:`resolve_device` -- setting ``device`` to a torch device: ``cuda`` without CUDA is an error
  naming the setting and what torch reports; ``auto`` without CUDA is the CPU, with a one-line
  notice the run records.
* :func:`apply_tf32` -- the TF32 flags set explicitly from setting ``tf32`` (never left to torch's
  defaults, which differ between matmuls and convolutions) and returned for the record.
* :class:`Amp` / :func:`amp_for` -- setting ``precision``: autocast to bf16 or fp16 (fp16 with a
  ``GradScaler``) around the training step; ``fp32`` is no object at all (no cost in the loop).
* :func:`compiled_forward` -- setting ``compile``: ``torch.compile`` once per model structure per
  process, reused by every later run of that structure (the parameters are the compiled graph's
  inputs, so a new seed's model needs no recompilation).
* :func:`slots_per_gpu` -- the pure decision of how many runs share one GPU, from measured memory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RestudyError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16")
COMPILE_MODES = ("off", "default", "reduce-overhead")

# --- device ----------------------------------------------------------------------------------------


def cuda_report() -> str:
    """What torch says about CUDA, in one phrase (for messages)."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    try:
        count = torch.cuda.device_count()
    except RuntimeError as e:  # a broken driver
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot use the driver: {e}"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no usable GPU (device_count={count})"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {count} GPU(s)"


def resolve_device(setting: str) -> tuple[str, str | None]:
    """The torch device for setting ``device`` and a notice when ``auto`` fell back to the CPU.

    Raises:
        RestudyError: ``cuda`` when torch has no usable CUDA device (naming the setting and what
            torch reports), or an unknown value.
    """
    import torch

    if setting == "cpu":
        return "cpu", None
    if setting not in DEVICES:
        raise RestudyError("unknown device", where="device", got=setting, allowed=DEVICES)
    if torch.cuda.is_available():
        return "cuda", None
    if setting == "cuda":
        raise RestudyError(
            f"CUDA is not available ({cuda_report()})",
            where="device",
            got="cuda",
            allowed="cpu, or auto (cuda when available, else the CPU); or install a CUDA build of torch",
        )
    return "cpu", f"device auto: no CUDA ({cuda_report()}), trained on the CPU"


# --- GPU arithmetic --------------------------------------------------------------------------------


def apply_tf32(enabled: bool) -> dict[str, Any]:
    """Set TF32 for CUDA matmuls and cuDNN convolutions (both on or both off) and the float32
    matmul precision; return them as recorded. Off is torch's ``highest`` precision, the CPU's
    arithmetic too, so CPU results are untouched."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


@dataclass
class Amp:
    """Mixed precision of the training step: autocast to ``dtype`` on ``device_type``; fp16 also
    scales the loss (``scaler``) so that small gradients do not underflow."""

    precision: str
    device_type: str
    dtype: torch.dtype
    scaler: Any = None  # torch.amp.GradScaler for fp16

    def autocast(self) -> contextlib.AbstractContextManager:
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward(); optimizer.step()``, through the scaler for fp16 (a step whose
        gradients overflowed is skipped and the scale lowered)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def amp_for(precision: str, device: str) -> Amp | None:
    """The :class:`Amp` of setting ``precision`` on ``device``; None for fp32."""
    import torch

    if precision == "fp32":
        return None
    if precision not in PRECISIONS:
        raise RestudyError("unknown precision", where="precision", got=precision, allowed=PRECISIONS)
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    if precision == "bf16":
        return Amp(precision, device_type, torch.bfloat16)
    return Amp(precision, device_type, torch.float16, torch.amp.GradScaler(device_type))


# --- torch.compile, once per structure ------------------------------------------------------------

# structure key -> compiled ``forward(model, x)``; per process, so per worker.
_COMPILED: dict[tuple[Any, ...], Callable[..., Any]] = {}
COMPILE_STATS = {"compiled": 0, "reused": 0}


def _forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def structure_key(model: torch.nn.Module, mode: str) -> tuple[Any, ...]:
    """What a compiled forward depends on: the mode, the module tree, and each parameter's and
    buffer's name, shape, dtype and device (not their values, which are graph inputs)."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return (
        mode,
        type(model).__module__,
        type(model).__qualname__,
        repr(model),
        tuple((n, tuple(t.shape), str(t.dtype), str(t.device)) for n, t in tensors),
    )


def compiled_forward(model: torch.nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> model(x)`` for setting ``compile``: the model itself when ``off``; else a function
    compiled with ``torch.compile`` once per structure (:func:`structure_key`) in this process and
    reused for every later model of that structure (another seed's run)."""
    if mode == "off":
        return model
    if mode not in COMPILE_MODES:
        raise RestudyError("unknown compile mode", where="compile", got=mode, allowed=COMPILE_MODES)
    import torch

    key = structure_key(model, mode)
    fn = _COMPILED.get(key)
    if fn is None:
        # A code object of its own per structure: torch.compile caches by code object, and one
        # shared by every structure of a study would hit its recompile limit and fall back to eager.
        code = _forward.__code__.replace(co_name=f"restudy_forward_{len(_COMPILED)}")
        own = types.FunctionType(code, _forward.__globals__, code.co_name)
        fn = torch.compile(own, mode=None if mode == "default" else mode)
        _COMPILED[key] = fn
        COMPILE_STATS["compiled"] += 1
    else:
        COMPILE_STATS["reused"] += 1
    return functools.partial(fn, model)


def compiler_problem() -> str | None:
    """Why ``torch.compile`` cannot build CPU kernels here (no C compiler), or None."""
    if any(shutil.which(c) for c in ("cc", "gcc", "clang", os.environ.get("CXX", "g++"))):
        return None
    return "no C/C++ compiler on PATH (torch.compile's CPU backend needs one)"


# --- runs per GPU -----------------------------------------------------------------------------------


# At most this many runs share one GPU: beyond it the processes mostly wait for each other.
MAX_RUNS_PER_GPU = 8
# What a process's CUDA context and kernels take outside torch's allocator (measured ~0.3-0.6 GiB
# on recent GPUs; the larger value keeps the estimate on the safe side).
CONTEXT_BYTES = 600 * 2**20
# The share of the free memory that runs may plan to use (fragmentation, the allocator's rounding).
MEMORY_SHARE = 0.85


def slots_per_gpu(
    peak_bytes: int,
    free_bytes: int,
    *,
    cpus_per_gpu: int,
    cap: int = MAX_RUNS_PER_GPU,
    runs: int | None = None,
    context_bytes: int = CONTEXT_BYTES,
    share: float = MEMORY_SHARE,
) -> tuple[int, str]:
    """How many runs train at once on one GPU, and why.

    Args:
        peak_bytes: one run's measured peak (torch's reserved memory: model, optimizer state, data
            and one batch's activations).
        free_bytes: the GPU's free memory before any run.
        cpus_per_gpu: CPU cores per GPU (each run's process needs one to feed the GPU).
        cap: the most runs per GPU (:data:`MAX_RUNS_PER_GPU`).
        runs: runs to do (no more slots than runs), or None.
    Returns:
        ``(slots, reason)``, slots >= 1 (one run at a time even when one does not seem to fit:
        the run itself then says what ran out).
    """
    if peak_bytes <= 0 or free_bytes <= 0:
        raise RestudyError("memory figures must be positive", got={"peak": peak_bytes, "free": free_bytes})
    per_run = peak_bytes + context_bytes
    by_memory = int(free_bytes * share // per_run)
    limits = {
        "memory": by_memory,
        "CPU cores per GPU": max(1, cpus_per_gpu),
        "cap": max(1, cap),
    }
    if runs is not None:
        limits["runs"] = max(1, runs)
    name, slots = min(limits.items(), key=lambda kv: kv[1])
    slots = max(1, slots)
    gib = 2**30
    reason = (
        f"{slots} per GPU, limited by {name}: one run {per_run / gib:.2f} GiB "
        f"({peak_bytes / gib:.2f} measured + {context_bytes / gib:.2f} context), "
        f"{free_bytes / gib:.1f} GiB free ({share:.0%} usable)"
    )
    return slots, reason
