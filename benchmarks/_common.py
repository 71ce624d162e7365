"""Helpers shared by the benchmarks: machine description, noise probe, statistics, workloads.

Benchmark hygiene (see benchmarks/README.md): the host is shared and its speed drifts by up to
~2x over minutes, so only ratios of configurations measured side by side, repeat by repeat, in one
run are trusted. Every benchmark here rotates the order of its configurations from one repeat to
the next, runs a small matmul probe between repeats (printed, to show how noisy the host was) and
reports median [min, max] over the repeats.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from restudy.storage.env import cpu_model

STUDY = "enorm"
SCALE = "small"
EXPERIMENT = "fc"
VARIANT = {"method": "baseline", "depth": "9"}  # lr 0.05, wd 1e-3, no momentum, linear decay


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "mkl": torch.backends.mkl.is_available(),
        "platform": platform.platform(),
    }


def print_machine(extra: str = "") -> None:
    m = machine()
    print(
        f"machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"torch {m['torch']} (intra-op threads now: {m['torch_threads']}), python {m['python']}, "
        f"mkl={m['mkl']}, {m['platform']}"
    )
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}" + (f"; {extra}" if extra else ""))
    print(
        "note: absolute times on this shared host drift by up to ~2x over minutes; "
        "only the side-by-side ratios are meant to be compared."
    )


def probe(threads: int = 1, n: int = 512, reps: int = 5) -> float:
    """fp32 matmul GFLOP/s at ``threads`` threads (best of ``reps``): a host-speed probe."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.mm(a, b, out=c)
        best = math.inf
        for _ in range(reps):
            t = time.perf_counter()
            torch.mm(a, b, out=c)
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------- statistics


def summary(xs: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs: Sequence[float], unit: str = "x", digits: int = 2) -> str:
    med, lo, hi = summary(xs)
    return f"{med:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}] (n={len(xs)})"


def rotation(names: Sequence[str], rep: int) -> list[str]:
    """The configurations in a rotated order: each one goes first equally often (drift cancels)."""
    k = rep % len(names)
    return list(names[k:]) + list(names[:k])


# --------------------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One training configuration, expressed as overrides of the enorm small-scale baseline run."""

    name: str
    label: str  # for the final lines
    overrides: tuple[tuple[str | None, str, Any], ...]


MNIST1D = Workload(
    name="mnist1d",
    label="MNIST-1D fc 128x9, B=64",
    overrides=(),  # the enorm small-scale run itself: 4000 train / 1000 test, 40 inputs
)
CIFAR_SHAPE = Workload(
    name="cifar-shape",
    label="synthetic 3072-d fc 500x9, B=256",
    overrides=(
        (None, "data", "synthetic"),
        (None, "data.n_train", 5120),
        (None, "data.n_test", 1024),
        (None, "data.dim", 3072),
        (None, "data.num_classes", 10),
        (None, "model.width", 500),
        (None, "batch_size", 256),
    ),
)
WORKLOADS = {w.name: w for w in (MNIST1D, CIFAR_SHAPE)}


def specs_for(workload: Workload, epochs: int, seeds: int = 1):
    """The RunSpecs (enorm small scale, fc baseline at depth 9) of ``workload``, ``seeds`` seeds."""
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    study = load_study(STUDY)
    overrides = list(workload.overrides) + [(None, "epochs", epochs)]
    specs = [
        s
        for s in plan(study, SCALE, seeds=seeds, overrides=overrides, experiments=[EXPERIMENT])
        if s.variant == VARIANT
    ]
    assert len(specs) == seeds, (len(specs), seeds)
    return specs


def load_data(spec):
    """The spec's data set, loaded as its run loads it (``restudy.training.build.load_data``)."""
    from restudy.training.build import load_data as load

    return load(spec.settings)


def build_model(spec, data) -> torch.nn.Module:
    """The spec's model, initialised exactly as its run does (``restudy.training.build.build_model``)."""
    from restudy.training.build import build_model as build

    return build(spec, tuple(data.input_shape), data.num_classes)[0]


# --------------------------------------------------------------------------- the bare loop


@torch.no_grad()
def bare_eval(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Accuracy and mean cross-entropy on one split, logits computed in batches."""
    model.eval()
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    model.train()
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item()


def bare_train(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    order_seed: int,
    eval_splits: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
    eval_batch_size: int = 1024,
) -> dict[str, float]:
    """A hand-written SGD loop: randperm per epoch, slice, forward, CE, zero_grad, backward, step.

    The learning rate decays linearly per epoch (lr·(E−e)/E, the study's schedule) and is set once
    per epoch. If ``eval_splits`` is given, each split is evaluated after every epoch.
    Returns the training-phase time, the evaluation time and the total.
    """
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(order_seed)
    n = x.shape[0]
    t_train = t_eval = 0.0
    t_all = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr * (epochs - epoch) / epochs
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        t1 = time.perf_counter()
        t_train += t1 - t0
        for xs, ys in eval_splits:
            bare_eval(model, xs, ys, eval_batch_size)
        t_eval += time.perf_counter() - t1
    return {"train_s": t_train, "eval_s": t_eval, "total_s": time.perf_counter() - t_all}


def max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((pa - pb).abs().max().item() for pa, pb in zip(a.parameters(), b.parameters()))


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


COLD_START = r"""
import json, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
torch.use_deterministic_algorithms(True)
t2 = time.perf_counter()
import restudy.execution.worker, restudy.plugins
restudy.plugins.load_builtins()
t3 = time.perf_counter()
import mnist1d.data
t4 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0,
                  "first torch.use_deterministic_algorithms() (imports torch._inductor/_dynamo)": t2 - t1,
                  "import restudy.execution.worker + registry.load_builtins()": t3 - t2,
                  "import mnist1d.data (matplotlib, requests)": t4 - t3}))
"""


def cold_start_breakdown() -> dict[str, float]:
    """One fresh interpreter: what the first run of a new worker process pays before training."""
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    empty = time.perf_counter() - t
    p = subprocess.run([sys.executable, "-c", COLD_START], env=env, check=True, capture_output=True, text=True)
    out = {"python start + exit (empty script)": empty}
    out.update(json.loads(p.stdout.strip().splitlines()[-1]))
    return out


def print_cold_start() -> None:
    parts = cold_start_breakdown()
    print(
        "cold start of one fresh worker process, measured once (seconds): "
        + "; ".join(f"{k} {v:.2f}" for k, v in parts.items())
    )


def spawn_probe(hold_s: float) -> dict[str, float]:
    """Run in a freshly spawned pool worker: import what a restudy worker imports before its first
    run, then hold the worker for ``hold_s`` so that every task lands on a different worker."""
    t = time.perf_counter()
    import restudy.execution.worker  # noqa: F401  (torch is already imported by this module)

    imported = time.perf_counter() - t
    time.sleep(hold_s)
    return {"pid": os.getpid(), "import_s": imported}
