"""Network deconvolution's cost per architecture: one training step of each CIFAR network of the
deconv study with batch normalization (BN) and with deconvolution (ND), side by side.

For each of the ten registered CIFAR networks (``restudy.studies.deconv.archs``), the BN and the
ND variant are built the way the study builds them (width 1 unless ``--width``), and one SGD step
(forward in train mode, cross-entropy, backward, optimizer step) on a CIFAR-shaped batch is timed
for each, in a rotated order, after one warm-up step. Printed per network: time per step of each,
and ND / BN (> 1: deconvolution is slower), median [min, max] over the repeats. This is the ratio
the [Re] report's training-time tables (Tables 8-9) give per network, measured here on one core
(or ``--device cuda``) instead of a V100. Which steps a frozen first layer skips is not modelled:
every step recomputes the statistics (the original's freeze cycle recomputes 101 of 1000 steps in
the first layer only).

    python benchmarks/bench_deconv_archs.py [--batch-size 32] [--repeats 3] [--width 1.0]
        [--archs vgg16,resnet18,...] [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import _common as C
from restudy import plugins


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def timed(step, iters: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def bench(arch: str, batch: int, width: float, repeats: int, iters: int, device: torch.device) -> str:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
    y = torch.randint(0, 10, (batch,), generator=g).to(device)
    steps = {}
    for norm in ("bn", "nd"):
        torch.manual_seed(0)
        model = plugins.create("model", arch, input_shape=(3, 32, 32), num_classes=10, norm=norm, width=width)
        steps[norm] = step_fn(model.to(device), x, y)
        steps[norm]()  # warm-up: allocations, first-call costs
    times: dict[str, list[float]] = {"bn": [], "nd": []}
    for r in range(repeats):
        for norm in ("bn", "nd") if r % 2 == 0 else ("nd", "bn"):
            times[norm].append(timed(steps[norm], iters, device))
    ratios = [n / b for n, b in zip(times["nd"], times["bn"])]
    bn, nd = C.summary(times["bn"])[0], C.summary(times["nd"])[0]
    return f"{arch:<16} BN {bn * 1e3:8.1f} ms   ND {nd * 1e3:8.1f} ms   ND/BN {C.fmt(ratios)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=None, help="batch size (default 32; --quick: 8)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 3; --quick: 2)")
    ap.add_argument("--iters", type=int, default=1, help="timed steps per timing (default 1)")
    ap.add_argument("--width", type=float, default=None, help="channel width multiplier (default 1; --quick: 0.25)")
    ap.add_argument("--archs", default="", help="comma-separated network names (default: the ten CIFAR networks)")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads on CPU (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="short smoke check (numbers not meaningful)")
    a = ap.parse_args()
    batch = a.batch_size or (8 if a.quick else 32)
    repeats = a.repeats or (2 if a.quick else 3)
    width = a.width or (0.25 if a.quick else 1.0)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    plugins.import_study_module("restudy.studies.deconv")
    from restudy.studies.deconv.archs import CIFAR_NETWORKS as ARCHS

    archs = [s.strip() for s in a.archs.split(",") if s.strip()] or list(ARCHS)
    unknown = sorted(set(archs) - set(ARCHS))
    if unknown:
        raise SystemExit(f"unknown architecture(s) {unknown}; allowed: {', '.join(ARCHS)}")
    C.print_machine(f"probe {C.probe(a.threads):.0f} GFLOP/s")
    print(f"one SGD step, batch {batch} of 3x32x32, width {width}, {repeats} repeats x {a.iters} step(s), {device}")
    for arch in archs:
        print(bench(arch, batch, width, repeats, a.iters, device), flush=True)


if __name__ == "__main__":
    main()
