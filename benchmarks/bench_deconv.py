"""Network deconvolution's cost: one FastDeconv layer vs the Conv2d + BatchNorm2d it replaces.

For a few CIFAR-typical layer shapes (from the original code's CIFAR models), one training step of a single layer --
forward in train mode, a scalar loss, backward -- is timed for:

* ``conv+bn``   -- ``nn.Conv2d(bias=False)`` then ``nn.BatchNorm2d`` (the BN baseline's layer);
* ``conv``      -- ``nn.Conv2d(bias=True)`` alone (no normalization: what either adds to the conv);
* ``deconv``    -- ``FastDeconv`` with the original's defaults (block 64, sampling stride 3,
  5 Newton–Schulz iterations): batch statistics, Newton–Schulz and folding every step;
* ``frozen``    -- the same ``FastDeconv`` in a frozen step (``freeze=True`` layers, i.e. the first
  layers, take ~899 of every 1000 steps this way): the running statistics folded into the kernel.

The shapes: ``first`` 3→64 3×3 at 32×32 (every CIFAR net's stem, F = 27), ``3x3`` 64→64 3×3 at
32×32 (F = 576), ``deep`` 256→256 3×3 at 8×8 (F = 576, one matrix shared by 4 interleaved blocks),
``1x1`` 128→128 1×1 at 16×16 (F = 64). Every repeat times each configuration over ``--iters`` steps
(after one warm-up step) in a rotated order; printed: time per step, deconv / conv+bn (> 1:
deconvolution is slower) and conv+bn / conv (BN's own cost), median [min, max] over the repeats.
One intra-op thread on CPU. The defaults take ~1.5 min on a 2-core host.

    python benchmarks/bench_deconv.py [--batch-size 128] [--repeats 3] [--iters 2] [--shapes ...]
        [--device cpu|cuda] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import _common as C
from restudy.methods.deconv import FastDeconv


@dataclass(frozen=True)
class Shape:
    name: str
    label: str
    c_in: int
    c_out: int
    k: int
    size: int  # input height = width

    def conv_args(self) -> tuple[int, int, int, int, int]:
        return self.c_in, self.c_out, self.k, 1, self.k // 2


SHAPES = {
    s.name: s
    for s in (
        Shape("first", "3->64 3x3 @32x32 (stem)", 3, 64, 3, 32),
        Shape("3x3", "64->64 3x3 @32x32", 64, 64, 3, 32),
        Shape("deep", "256->256 3x3 @8x8", 256, 256, 3, 8),
        Shape("1x1", "128->128 1x1 @16x16", 128, 128, 1, 16),
    )
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One training step of ``layer``: train-mode forward, a scalar loss, backward."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).square().mean().backward()

    return step


def configs(shape: Shape, batch: int, device: torch.device) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    x = torch.randn(batch, shape.c_in, shape.size, shape.size, device=device)
    conv_bn = nn.Sequential(nn.Conv2d(*shape.conv_args(), bias=False), nn.BatchNorm2d(shape.c_out)).to(device)
    conv = nn.Conv2d(*shape.conv_args()).to(device)
    deconv = FastDeconv(*shape.conv_args()).to(device)
    frozen = FastDeconv(*shape.conv_args(), freeze=True).to(device)
    frozen_step = make_step(frozen, x)

    def step_frozen() -> None:
        frozen.counter = frozen.freeze_iter + 1  # every timed step is a frozen one
        frozen_step()

    return {
        "conv+bn": make_step(conv_bn, x),
        "conv": make_step(conv, x),
        "deconv": make_step(deconv, x),
        "frozen": step_frozen,
    }


def time_steps(step: Callable[[], None], iters: int, device: torch.device) -> float:
    """Seconds per step, averaged over ``iters`` steps after one warm-up step."""
    step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return (time.perf_counter() - t) / iters


def bench(shape: Shape, batch: int, repeats: int, iters: int, device: torch.device) -> str:
    print(f"\n== {shape.label}, batch {batch}, {iters} step(s) per timing, device {device}")
    steps = configs(shape, batch, device)
    rows = []
    for rep in range(repeats):
        gf = C.probe(torch.get_num_threads())
        order = C.rotation(list(steps), rep)
        r = {name: time_steps(steps[name], iters, device) for name in order}
        rows.append(r)
        print(
            f"rep {rep + 1}/{repeats} (probe {gf:.0f} GFLOP/s; order {' '.join(order)}): "
            + " | ".join(f"{name} {r[name] * 1e3:.1f} ms" for name in steps)
            + f" | deconv/conv+bn {r['deconv'] / r['conv+bn']:.2f}"
        )
    ratio = [r["deconv"] / r["conv+bn"] for r in rows]
    frozen = [r["frozen"] / r["conv+bn"] for r in rows]
    bn = [r["conv+bn"] / r["conv"] for r in rows]
    ms = {name: [r[name] * 1e3 for r in rows] for name in steps}
    print(f"results, {shape.label}, batch {batch} -- time per training step:")
    for name in steps:
        print(f"  {name:8s} {C.fmt(ms[name], ' ms', 1)}")
    print(f"  deconv / conv+bn: {C.fmt(ratio)}; frozen step / conv+bn: {C.fmt(frozen)}; conv+bn / conv: {C.fmt(bn)}")
    return (
        f"{shape.label}, B={batch}: deconv/conv+bn {C.fmt(ratio)}; frozen/conv+bn {C.fmt(frozen)}; "
        f"conv+bn/conv {C.fmt(bn)} (conv+bn {C.summary(ms['conv+bn'])[0]:.1f} ms/step)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=None, help="batch size (default 128; --quick: 16)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 3; --quick: 2)")
    ap.add_argument("--iters", type=int, default=None, help="timed steps per timing (default 2; --quick: 1)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated: {', '.join(SHAPES)}")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads on CPU (default 1)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="short smoke check (< 30 s; numbers not meaningful)")
    args = ap.parse_args()
    batch = args.batch_size or (16 if args.quick else 128)
    repeats = args.repeats or (2 if args.quick else 3)
    iters = args.iters or (1 if args.quick else 2)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    extra = f"bench_deconv, batch={batch}, repeats={repeats}, iters={iters}, threads={torch.get_num_threads()}"
    if device.type == "cuda":
        extra += f", {torch.cuda.get_device_name(device)}"
    C.print_machine(extra + (" (quick)" if args.quick else ""))
    t0 = time.perf_counter()
    finals = [bench(SHAPES[name], batch, repeats, iters, device) for name in args.shapes.split(",")]
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s)")
    for line in finals:
        print(line)


if __name__ == "__main__":
    main()
