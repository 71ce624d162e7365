"""GPU benchmark: ResNet-14 training throughput of restudy's loop vs a bare loop, and models per hour
with one run per GPU vs several (``runs_per_gpu`` auto).

On a machine without CUDA it prints one "no CUDA: skipped" line and exits 0. ``--device cpu`` runs
every code path on the CPU at a tiny size (a check of the script; its numbers mean nothing).

1. **Throughput** (one process): ResNet-14 (width 16, as the nondeterminism study's paper scale) on
   CIFAR-shaped synthetic data resident on the device, batch 512, SGD (lr 0.4, momentum 0.9,
   Nesterov, weight decay 5e-4), random crop + flip, ``memory_format`` and ``precision`` as given.
   restudy's ``train()`` (parts from ``restudy.training.build`` and ``restudy.training.devices``) vs a hand-written
   loop with the same model, optimizer, batch and augmentation arithmetic; both without per-epoch
   evaluation in the timed part (restudy's training phase is ``train_wall_s``). The ratio
   bare / restudy time (goal >= 0.9x), median [min, max] over repeats run in alternating order.
2. **Models per hour** (worker processes): ``--runs`` runs of that ResNet-14 (``--mph-epochs`` epochs
   on ``--mph-train`` images, evaluated after each epoch, records and logits written), once through
   ``LocalExecutor`` with one run per GPU and once with ``runs_per_gpu="auto"`` (the executor's
   measured choice, printed). Process start-up and data loading count: they are what a user waits for.

    python benchmarks/bench_gpu.py                 # ~5 min on one H100-class GPU
    python benchmarks/bench_gpu.py --quick         # < 1 min smoke check
    python benchmarks/bench_gpu.py --device cpu --quick   # the script's code paths on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from restudy.data.dataset import Dataset
from restudy.plugins import register
from restudy.spec.settings import RunSettings

HERE = Path(__file__).resolve().parent
MODULE = "bench_gpu"  # this file, imported by the worker processes for its data set


def bench_images(n_train: int = 10240, n_test: int = 2048, seed: int = 0) -> Dataset:
    """CIFAR-shaped synthetic images (3x32x32, 10 classes): a Gaussian mixture, unit scale."""
    from restudy.data.synthetic import synthetic

    d = synthetic(n_train=n_train, n_test=n_test, dim=3 * 32 * 32, num_classes=10, seed=seed)
    return dataclasses.replace(
        d,
        name="bench_images",
        x_train=d.x_train.reshape(-1, 3, 32, 32),
        x_test=d.x_test.reshape(-1, 3, 32, 32),
        description="CIFAR-shaped synthetic images: " + d.description,
    )


if __name__ == MODULE:  # registered once, under this module's name, wherever it is imported as such
    register("dataset", "bench_images")(bench_images)


def settings(args: argparse.Namespace, n_train: int, epochs: int) -> dict:
    """The run's settings: the enorm small-scale run's resolved settings as a base (every engine
    setting present), its model and data replaced by ResNet-14 on ``bench_images``."""
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    base = plan(load_study("enorm"), "small", seeds=1, experiments=["fc"])[0].settings.values
    s = {k: v for k, v in base.items() if not k.startswith(("model.", "data.", "method."))}
    s.update(
        {
            "model": "resnet14",
            "model.width": 16,
            "data": "bench_images",
            "data.n_train": n_train,
            "data.n_test": 1024,
            "method": "none",
            "batch_size": args.batch,
            "eval_batch_size": 1024,
            "epochs": epochs,
            "optimizer": "sgd",
            "optimizer.lr": 0.4,
            "optimizer.momentum": 0.9,
            "optimizer.nesterov": True,
            "optimizer.weight_decay": 5e-4,
            "optimizer.lr_mult_bias_bn": 1.0,
            "schedule": "constant",
            "augment": "flip_crop",
            "augment.pad": 4,
            "memory_format": args.memory_format,
            "device": args.device,
            "precision": args.precision,
            "compile": args.compile,
            "tf32": args.tf32,
        }
    )
    return s


def specs(args: argparse.Namespace, n: int, n_train: int, epochs: int):
    """``n`` RunSpecs (seeds 0..n-1) of the benchmark run."""
    from restudy.planning.runs import plan, run_key
    from restudy.spec.studyfile import load_study

    s = settings(args, n_train, epochs)
    out = []
    for spec in plan(load_study("enorm"), "small", seeds=n, experiments=["fc"])[:n]:
        key = run_key({"bench": "gpu", "settings": s, "seeds": spec.seeds})
        out.append(
            dataclasses.replace(
                spec, key=key, settings=RunSettings(s), study="bench_gpu", study_module=MODULE, study_dir=str(HERE)
            )
        )
    return out


# --------------------------------------------------------------------------- 1. throughput


def restudy_loop(spec, prep, epochs: int) -> float:
    """Seconds of training (``train_wall_s``) of restudy's ``train()`` for ``epochs`` epochs."""
    from restudy.training.build import build_run
    from restudy.training.loop import train

    parts = build_run(spec, prep.data, prep.device)
    x, y, xt, yt = prep.tensors
    res = train(
        parts.model,
        x,
        y,
        xt[:1024],
        yt[:1024],
        optimizer=parts.optimizer,
        schedule=parts.schedule,
        epochs=epochs,
        batch_size=spec.settings.values["batch_size"],
        order=parts.order,
        augment=parts.augment,
        eval_batch_size=1024,
        memory_format=parts.memory_format,
        forward=parts.forward,
        amp=parts.amp,
    )
    return res.train_wall_s


def bare_loop(spec, prep, epochs: int) -> float:
    """The same training written by hand: model, SGD, batch, crop + flip, autocast as set."""
    from restudy.training.build import build_model

    s = spec.settings.values
    model, _ = build_model(spec, (3, 32, 32), 10, prep.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4)
    fmt = torch.channels_last if s["memory_format"] == "channels_last" else torch.contiguous_format
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(s["precision"])
    scaler = torch.amp.GradScaler(prep.device) if dtype == torch.float16 else None
    fwd = (
        torch.compile(model, mode=None if s["compile"] == "default" else s["compile"])
        if s["compile"] != "off"
        else model
    )
    x, y = prep.tensors[0], prep.tensors[1]
    n, b = x.shape[0], s["batch_size"]
    g = torch.Generator(device=prep.device).manual_seed(0)
    ar = torch.arange(32, device=prep.device)
    sync()
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g, device=prep.device)
        for i in range(0, n, b):
            idx = perm[i : i + b]
            xb, yb = x[idx], y[idx]
            k = xb.shape[0]
            xp = F.pad(xb, (4, 4, 4, 4))
            dy = torch.randint(0, 9, (k,), generator=g, device=prep.device)
            dx = torch.randint(0, 9, (k,), generator=g, device=prep.device)
            rows, cols = (dy[:, None] + ar)[:, None, :, None], (dx[:, None] + ar)[:, None, None, :]
            xb = xp[
                torch.arange(k, device=prep.device)[:, None, None, None],
                torch.arange(3, device=prep.device)[None, :, None, None],
                rows,
                cols,
            ]
            flip = torch.rand(k, generator=g, device=prep.device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb).contiguous(memory_format=fmt)
            with torch.autocast(prep.device, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(fwd(xb), yb)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
    sync()
    return time.perf_counter() - t0


def sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def throughput(args: argparse.Namespace) -> None:
    from restudy.training.build import prepare

    spec = specs(args, 1, args.n_train, args.epochs)[0]
    prep = prepare(spec, args.threads, "single")
    print(
        f"device {prep.device}: {prep.env.get('gpu') or prep.env['cpu']}; driver {prep.env.get('driver')}; "
        f"CUDA {prep.env.get('cuda')}, cuDNN {prep.env.get('cudnn')}; flags {prep.env['gpu_flags']}"
    )
    n = args.n_train
    print(
        f"[1] ResNet-14 w16, {n} train images on the device, batch {args.batch}, {args.epochs} epoch(s) per "
        f"timing, precision {args.precision}, compile {args.compile}, {args.memory_format}, tf32 {args.tf32}"
    )
    restudy_loop(spec, prep, 1)  # warm-up: cuDNN autotuning, compilation, allocator
    bare_loop(spec, prep, 1)
    ratios, rates = [], {"restudy": [], "bare": []}
    for r in range(args.repeats):
        order = ("restudy", "bare") if r % 2 == 0 else ("bare", "restudy")
        t = {}
        for name in order:
            t[name] = (restudy_loop if name == "restudy" else bare_loop)(spec, prep, args.epochs)
            rates[name].append(args.epochs * n / t[name])
        ratios.append(t["bare"] / t["restudy"])
        print(f"  repeat {r + 1}: restudy {t['restudy']:.2f} s, bare {t['bare']:.2f} s, ratio {ratios[-1]:.3f}")
    for name, v in rates.items():
        print(f"  {name}: {statistics.median(v):,.0f} images/s [{min(v):,.0f}, {max(v):,.0f}]")
    print(
        f"  restudy/bare throughput: {statistics.median(ratios):.3f}x [{min(ratios):.3f}, {max(ratios):.3f}] "
        f"(n={len(ratios)}; goal >= 0.9x)"
    )


# --------------------------------------------------------------------------- 2. models per hour


def models_per_hour(args: argparse.Namespace) -> bool:
    """Whether every run finished."""
    from restudy.execution.executor import LocalExecutor

    runs = specs(args, args.runs, args.mph_train, args.mph_epochs)
    print(
        f"[2] {len(runs)} runs of ResNet-14 w16, {args.mph_train} train images, {args.mph_epochs} epoch(s) each, "
        f"evaluated after every epoch, records written"
    )
    results, failed = {}, False
    for label, ex in (
        ("one run per GPU", LocalExecutor(workers=1, runs_per_gpu=1)),
        ("runs_per_gpu auto", LocalExecutor(runs_per_gpu="auto", workers=2 if args.device == "cpu" else None)),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            dirs = [Path(tmp) / s.key for s in runs]
            t0 = time.perf_counter()
            recs = list(ex.run(runs, dirs))
            wall = time.perf_counter() - t0
        bad = [r["reason"] for r in recs if r["status"] != "finished"]
        failed |= bool(bad)
        results[label] = len(recs) / wall * 3600
        print(f"  {label}: {ex.workers} worker(s){'; ' + ex.gpu_note if ex.gpu_note else ''}")
        print(
            f"    {len(recs)} runs in {wall:.1f} s = {results[label]:,.0f} models/hour"
            + (f"; {len(bad)} not finished: {bad[0]}" if bad else "")
        )
    one, auto = results.values()
    print(f"  models/hour, auto vs one at a time: {auto / one:.2f}x")
    return not failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat: a smoke check")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-train", type=int, default=20480)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--runs", type=int, default=24)
    p.add_argument("--mph-train", type=int, default=10240)
    p.add_argument("--mph-epochs", type=int, default=2)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--compile", choices=("off", "default", "reduce-overhead"), default="off")
    p.add_argument("--memory-format", choices=("contiguous", "channels_last"), default="channels_last")
    p.add_argument("--tf32", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip", choices=("throughput", "mph"), default=None)
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        from restudy.training.devices import cuda_report

        print(f"no CUDA: skipped ({cuda_report()})")
        return 0
    if args.quick or args.device == "cpu":
        args.repeats, args.epochs, args.runs, args.mph_epochs = 1, 1, 4, 1
        args.n_train, args.mph_train = (4096, 2048) if args.device == "cuda" else (256, 128)
        if args.device == "cpu":
            args.batch = 64
    torch.set_num_threads(args.threads)
    from restudy.plugins import import_study_module

    import_study_module(MODULE, str(HERE))  # the data set, as the workers register it
    print(
        f"bench_gpu: torch {torch.__version__}, python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}"
    )
    if args.skip != "throughput":
        throughput(args)
    if args.skip != "mph" and not models_per_hour(args):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
