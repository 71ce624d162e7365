"""restudy's training loop vs a bare hand-written PyTorch loop (goal: >= 0.95x), 1 thread.

Workloads (both are the enorm study's small-scale fc baseline run at depth 9 -- SGD lr 0.05, weight
decay 1e-3, no momentum, linear per-epoch decay -- the second with overridden data and width):

* ``mnist1d``: MNIST-1D (4,000 train / 1,000 test, 40 inputs), fc 128x9, batch 64 (~1 ms a step);
* ``cifar-shape``: synthetic Gaussian mixture with CIFAR's 3072 flattened inputs (5,120 train /
  1,024 test, 10 classes), fc 500x9, batch 256 (~50 ms a step).

Configurations, interleaved in a rotating order inside every repeat (same model init, same data
tensors in memory, same data order, same optimizer and schedule, 1 intra-op thread):

* ``restudy``   -- ``restudy.training.loop.train(...)`` called directly. It evaluates train and test after
  every epoch and records the training-phase time separately (``TrainResult.train_wall_s``).
* ``bare``      -- the hand-written loop (randperm, slice, forward, cross_entropy, zero_grad,
  backward, step), no evaluation.
* ``bare+eval`` -- the same loop evaluating both splits after every epoch (the fair end-to-end
  reference for ``restudy``).
* ``execute``   -- ``restudy.execution.worker.execute(spec, run_dir, threads=1)`` in this process, i.e. in a
  worker that already holds the dataset (what every run after a pool worker's first one costs):
  determinism flags, environment capture, model/optimizer build, training, evaluation, run.json and
  safetensors writes.
* ``process``   -- the same ``execute`` in a fresh Python process (interpreter start, imports,
  dataset generation/load): what a pool worker's first run costs.

Printed ratios are bare_time / restudy_time (> 1: restudy faster), median [min, max] over repeats.
With ``--quick`` the ``process`` configuration runs in the first repeat only.

``--explain`` runs only a diagnosis of the training-phase gap: a torch.profiler count of the aten
calls per step that ``train()`` makes and the bare loop does not, then the bare loop with each of
``train()``'s per-step extras added one at a time (and a cheaper ``.item()``-based variant),
interleaved (default 11 repeats). ``--profile`` adds a cProfile of both loops to the normal run.

    python benchmarks/bench_overhead.py [--repeats R] [--quick] [--workloads mnist1d,cifar-shape]
                                        [--epochs mnist1d=20,cifar-shape=2] [--profile | --explain]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import _common as C

# The child measures its own import time, so it must not import torch before starting the clock.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from restudy.execution.worker import execute
t1 = time.perf_counter()
spec = json.loads(open(sys.argv[1]).read())
rec = execute(spec, sys.argv[2], 1)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "execute_s": t2 - t1, "status": rec["status"],
                  "timings": rec["timings"]}))
"""


def run_restudy(spec, data, x_tr, y_tr, x_te, y_te):
    """``train()`` exactly as the worker calls it, on the parts ``build_run`` makes (the worker's
    preparation, evaluation extras and writes left out)."""
    from restudy.training.build import build_run
    from restudy.training.loop import train

    s = spec.settings.values
    parts = build_run(spec, data)
    t = time.perf_counter()
    res = train(
        parts.model,
        x_tr,
        y_tr,
        x_te,
        y_te,
        optimizer=parts.optimizer,
        schedule=parts.schedule,
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        order=parts.order,
        hooks=parts.hooks,
        augment=parts.augment,
        eval_batch_size=s["eval_batch_size"],
        label_smoothing=s["label_smoothing"],
        memory_format=parts.memory_format,
    )
    total = time.perf_counter() - t
    assert res.status == "finished", res.reason
    return {"train_s": res.train_wall_s, "eval_s": res.eval_wall_s, "total_s": total}, parts.model


def run_bare(spec, data, x_tr, y_tr, x_te, y_te, with_eval: bool):
    s = spec.settings.values
    model = C.build_model(spec, data)
    splits = [(x_tr, y_tr), (x_te, y_te)] if with_eval else []
    out = C.bare_train(
        model,
        x_tr,
        y_tr,
        lr=s["optimizer.lr"],
        weight_decay=s["optimizer.weight_decay"],
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        order_seed=spec.seeds["order"],
        eval_splits=splits,
        eval_batch_size=s["eval_batch_size"],
    )
    return out, model


def run_execute(spec, tmp: Path):
    from restudy.execution.worker import execute

    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    t = time.perf_counter()
    rec = execute(spec.to_dict(), str(run_dir), 1)
    wall = time.perf_counter() - t
    # execute() switched deterministic algorithms on for the run; do not let it leak into the others.
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(1)
    assert rec["status"] == "finished", rec.get("reason")
    tm = rec["timings"]
    return {"wall_s": wall, "train_s": tm["train_s"], "eval_s": tm["eval_s"], "load_s": tm["load_s"]}


def run_process(spec, tmp: Path):
    run_dir = Path(tempfile.mkdtemp(dir=tmp))
    spec_file = run_dir / "spec.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(spec_file), str(run_dir)], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"child failed:\n{p.stderr}")
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["status"] == "finished", info
    tm = info["timings"]
    return {
        "wall_s": wall,
        "import_s": info["import_s"],
        "execute_s": info["execute_s"],
        "train_s": tm["train_s"],
        "eval_s": tm["eval_s"],
        "load_s": tm["load_s"],
    }


def profile(spec, data, tensors, top: int = 22) -> None:
    """cProfile of restudy's train() and of the bare loop with evaluation (same run)."""
    for name, fn in (
        ("restudy train()", lambda: run_restudy(spec, data, *tensors)),
        ("bare+eval", lambda: run_bare(spec, data, *tensors, with_eval=True)),
    ):
        pr = cProfile.Profile()
        pr.enable()
        fn()
        pr.disable()
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(top)
        print(f"\n--- cProfile, {name}, sorted by own time ---")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:6000])


# --explain: the bare loop plus, one at a time, each per-step extra that restudy's loop
# (src/restudy/train.py) has, to attribute a difference in step time.
EXTRAS = {
    "bare": (),
    "bare (again)": (),  # noise floor: the same loop measured twice per repeat
    "+isfinite": ("isfinite",),  # an earlier check: if not torch.isfinite(loss): ... (13 aten calls + sync)
    "+loss_sum": ("loss_sum",),  # an earlier running sum: loss_sum += loss.detach()
    "+lr/step": ("lr",),  # train.lr_step(): schedule(step, epoch); param_groups[...]["lr"] = lr
    "+all three": ("isfinite", "loss_sum", "lr"),
    "+eval": ("eval",),  # train(): evaluate train and test between epochs (untimed)
    "+all three +eval": ("isfinite", "loss_sum", "lr", "eval"),
    # A cheaper equivalent of the first two, what train() does now (train.divergence()): one .item()
    # per step, the check and the running sum in Python floats (no extra aten kernels; on CUDA the
    # sync is the same as bool(tensor)'s).
    "+item-based +lr +eval": ("item", "lr", "eval"),
}


def bare_with_extras(spec, data, extras: tuple[str, ...]) -> float:
    """Training-phase seconds of the bare loop with the given extras (evaluation is not timed)."""
    import torch.nn.functional as F

    s = spec.settings.values
    model = C.build_model(spec, data)
    x, y = data.x_train, data.y_train
    lr0, epochs, bs = s["optimizer.lr"], s["epochs"], s["batch_size"]
    opt = torch.optim.SGD(model.parameters(), lr=lr0, weight_decay=s["optimizer.weight_decay"])
    schedule = lambda step, epoch: lr0 * (epochs - epoch) / epochs  # noqa: E731  (the linear schedule)
    g = torch.Generator().manual_seed(spec.seeds["order"])
    n = x.shape[0]
    do_fin, do_sum, do_lr = ("isfinite" in extras), ("loss_sum" in extras), ("lr" in extras)
    do_item = "item" in extras
    splits = [(x, y), (data.x_test, data.y_test)] if "eval" in extras else []
    step = 0
    t_train = 0.0
    for epoch in range(epochs):
        t = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = schedule(step, epoch)
        perm = torch.randperm(n, generator=g)
        loss_sum = torch.zeros(())
        loss_sum_f = 0.0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if do_lr:
                lr = schedule(step, epoch)
                for group in opt.param_groups:
                    group["lr"] = lr
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if do_fin and not torch.isfinite(loss):
                break
            if do_item:
                loss_f = loss.item()
                if not math.isfinite(loss_f):
                    break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if do_sum:
                loss_sum += loss.detach()
            if do_item:
                loss_sum_f += loss_f
            step += 1
        t_train += time.perf_counter() - t
        for xs, ys in splits:
            C.bare_eval(model, xs, ys, s["eval_batch_size"])
    return t_train


def op_diff(spec, data, tensors) -> None:
    """torch.profiler: aten calls per training step that restudy's train() makes and the bare loop
    (with the same evaluation) does not, with their self CPU time (profiler overhead included)."""
    import collections

    from torch.profiler import ProfilerActivity, profile

    steps = spec.settings.values["epochs"] * -(-data.y_train.shape[0] // spec.settings.values["batch_size"])

    def ops(fn):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        count, self_us = collections.Counter(), collections.Counter()
        for e in prof.key_averages():
            count[e.key], self_us[e.key] = e.count, e.self_cpu_time_total
        return count, self_us

    cr, tr = ops(lambda: run_restudy(spec, data, *tensors))
    cb, tb = ops(lambda: run_bare(spec, data, *tensors, with_eval=True))
    extra = {k: (cr[k] - cb[k]) / steps for k in set(cr) | set(cb) if k.startswith("aten::")}
    extra = {k: v for k, v in extra.items() if abs(v) >= 0.5}
    print(
        f"\n--- torch.profiler, {spec.settings.values['epochs']} epochs: aten calls per step, restudy train() "
        f"{sum(v for k, v in cr.items() if k.startswith('aten::')) / steps:.1f} vs bare+eval "
        f"{sum(v for k, v in cb.items() if k.startswith('aten::')) / steps:.1f}; the differing ones "
        "(extra calls per step, extra self CPU us per step under the profiler):"
    )
    for k, v in sorted(extra.items(), key=lambda kv: -(tr[kv[0]] - tb[kv[0]])):
        print(f"  {k:28s} {v:+5.2f}  {(tr[k] - tb[k]) / steps:+6.2f} us")


def explain(workload: C.Workload, epochs: int, repeats: int) -> None:
    spec = C.specs_for(workload, epochs)[0]
    data = C.load_data(spec)
    tensors = (data.x_train, data.y_train, data.x_test, data.y_test)
    op_diff(C.specs_for(workload, 2)[0], data, tensors)
    steps = epochs * -(-data.y_train.shape[0] // spec.settings.values["batch_size"])
    configs = {name: (lambda ex=ex: bare_with_extras(spec, data, ex)) for name, ex in EXTRAS.items()}
    configs["restudy train()"] = lambda: run_restudy(spec, data, *tensors)[0]["train_s"]
    for fn in configs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in configs}
    for rep in range(repeats):
        for name in C.rotation(list(configs), rep):
            times[name].append(configs[name]())
    print(
        f"\n--- explain: {workload.label}, {epochs} epochs = {steps} steps, {repeats} interleaved repeats; "
        "extra time per step vs the bare loop (paired by repeat), and bare/variant ratio ---"
    )
    for name in configs:
        delta = [1e6 * (a - b) / steps for a, b in zip(times[name], times["bare"])]
        ratio = [b / a for a, b in zip(times[name], times["bare"])]
        print(f"  {name:22s} {C.fmt(delta, ' us/step', 1):40s} {C.fmt(ratio, 'x', 3)}")


def bench(
    workload: C.Workload, epochs: int, repeats: int, tmp: Path, do_profile: bool, process_repeats: int
) -> list[str]:
    spec = C.specs_for(workload, epochs)[0]
    s = spec.settings.values
    data = C.load_data(spec)
    tensors = (data.x_train, data.y_train, data.x_test, data.y_test)
    n_tr, n_te = data.y_train.shape[0], data.y_test.shape[0]
    steps = epochs * -(-n_tr // s["batch_size"])
    print(
        f"\n== {workload.label}: {n_tr} train / {n_te} test, input {tuple(data.input_shape)}, "
        f"fc width {s['model.width']} hidden {s['model.hidden']}, SGD lr {s['optimizer.lr']} "
        f"wd {s['optimizer.weight_decay']} ({s['schedule']} schedule), {epochs} epochs = {steps} steps, "
        f"eval batch {s['eval_batch_size']}, kernels={spec.kernels} (execute/process only), 1 thread"
    )

    # Warm-up (untimed) on a 1-epoch copy: allocator, caches, the worker's dataset cache; and check
    # that restudy's loop and the bare loop compute the same thing.
    warm = C.specs_for(workload, 1)[0]
    _, m_r = run_restudy(warm, data, *tensors)
    _, m_b = run_bare(warm, data, *tensors, with_eval=False)
    diff = C.max_param_diff(m_r, m_b)
    print(
        f"check: after 1 epoch, max |param(restudy) - param(bare)| = {diff:.3g} "
        f"({'bitwise identical' if diff == 0 else 'NOT identical'})"
    )
    run_execute(warm, tmp)

    if do_profile:
        profile(spec, data, tensors)

    configs = {
        "restudy": lambda: run_restudy(spec, data, *tensors)[0],
        "bare": lambda: run_bare(spec, data, *tensors, with_eval=False)[0],
        "bare+eval": lambda: run_bare(spec, data, *tensors, with_eval=True)[0],
        "execute": lambda: run_execute(spec, tmp),
        "process": lambda: run_process(spec, tmp),
    }
    rows = []
    for rep in range(repeats):
        gf = C.probe()
        names = list(configs) if rep < process_repeats else [n for n in configs if n != "process"]
        order = C.rotation(names, rep)
        r = {name: configs[name]() for name in order}
        r.setdefault("process", None)
        rows.append(r)
        print(
            f"rep {rep + 1}/{repeats} (probe {gf:.0f} GFLOP/s, order {' '.join(order)}): "
            f"restudy train {r['restudy']['train_s']:.3f}s + eval {r['restudy']['eval_s']:.3f}s | "
            f"bare {r['bare']['train_s']:.3f}s | bare+eval train {r['bare+eval']['train_s']:.3f}s "
            f"+ eval {r['bare+eval']['eval_s']:.3f}s | execute {r['execute']['wall_s']:.3f}s "
            f"(train {r['execute']['train_s']:.3f}s)"
            + (
                ""
                if r["process"] is None
                else f" | process {r['process']['wall_s']:.3f}s "
                f"(import {r['process']['import_s']:.2f}s, load {r['process']['load_s']:.2f}s)"
            )
        )

    def col(f):
        return [f(r) for r in rows]

    def pcol(f):  # columns that need the fresh-process configuration (not run in every --quick repeat)
        return [f(r) for r in rows if r["process"] is not None]

    ratio_train = col(lambda r: r["bare"]["train_s"] / r["restudy"]["train_s"])
    ratio_train_e = col(lambda r: r["bare+eval"]["train_s"] / r["restudy"]["train_s"])
    ratio_eval = col(lambda r: r["bare+eval"]["eval_s"] / r["restudy"]["eval_s"])
    ratio_e2e = col(lambda r: r["bare+eval"]["total_s"] / r["restudy"]["total_s"])
    ratio_exec_train = col(lambda r: r["bare"]["train_s"] / r["execute"]["train_s"])
    ratio_exec = col(lambda r: r["bare+eval"]["total_s"] / r["execute"]["wall_s"])
    ratio_proc = pcol(lambda r: r["bare+eval"]["total_s"] / r["process"]["wall_s"])
    fixed_exec = col(lambda r: r["execute"]["wall_s"] - r["execute"]["train_s"] - r["execute"]["eval_s"])
    fixed_exec_vs_bare = col(lambda r: r["execute"]["wall_s"] - r["bare+eval"]["total_s"])
    fixed_proc = pcol(lambda r: r["process"]["wall_s"] - r["process"]["train_s"] - r["process"]["eval_s"])
    fixed_proc_vs_bare = pcol(lambda r: r["process"]["wall_s"] - r["bare+eval"]["total_s"])
    imports = pcol(lambda r: r["process"]["import_s"])
    loads = pcol(lambda r: r["process"]["load_s"])
    bare_ms = col(lambda r: 1e3 * r["bare"]["train_s"] / steps)
    restudy_ms = col(lambda r: 1e3 * r["restudy"]["train_s"] / steps)

    tag = f"{workload.label}, {epochs} epochs, 1 thread"
    print(f"\nresults, {tag} -- ratios are bare/restudy (>1: restudy faster):")
    print(
        f"  step time (absolute, host-dependent): bare {C.fmt(bare_ms, ' ms', 3)}, "
        f"restudy {C.fmt(restudy_ms, ' ms', 3)}"
    )
    print(f"  training phase, restudy train() vs bare (no eval):        {C.fmt(ratio_train, 'x', 3)}")
    print(f"  training phase, restudy train() vs bare+eval's training:  {C.fmt(ratio_train_e, 'x', 3)}")
    print(f"  evaluation phase (train+test every epoch):                 {C.fmt(ratio_eval, 'x', 3)}")
    print(f"  end to end incl. evaluation, train() vs bare+eval:         {C.fmt(ratio_e2e, 'x', 3)}")
    print(f"  training phase inside worker.execute (kernels={spec.kernels}) vs bare: {C.fmt(ratio_exec_train, 'x', 3)}")
    print(f"  worker.execute, warm worker, vs bare+eval:                 {C.fmt(ratio_exec, 'x', 3)}")
    print(f"  worker.execute in a fresh process vs bare+eval:            {C.fmt(ratio_proc, 'x', 3)}")
    print("  per-run fixed overhead in seconds:")
    print(
        f"    warm worker: execute wall - (train + eval) = {C.fmt(fixed_exec, ' s', 3)}; "
        f"execute wall - bare+eval = {C.fmt(fixed_exec_vs_bare, ' s', 3)}"
    )
    print(
        f"    fresh process: wall - (train + eval) = {C.fmt(fixed_proc, ' s', 2)}; "
        f"wall - bare+eval = {C.fmt(fixed_proc_vs_bare, ' s', 2)}; of which interpreter-measured "
        f"import of torch+restudy.execution.worker {C.fmt(imports, ' s', 2)}, dataset load {C.fmt(loads, ' s', 2)}"
    )
    return [
        f"restudy/bare training ({tag}): {C.fmt(ratio_train)}",
        f"restudy/bare end-to-end incl. eval ({tag}): {C.fmt(ratio_e2e)}",
        f"worker.execute/bare+eval, warm worker ({tag}): {C.fmt(ratio_exec)}; "
        f"per-run fixed overhead {C.fmt(fixed_exec, ' s', 3)} warm, {C.fmt(fixed_proc, ' s', 2)} in a fresh process",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 7; --quick: 3)")
    ap.add_argument("--quick", action="store_true", help="short smoke check (< 60 s)")
    ap.add_argument(
        "--workloads", default="mnist1d,cifar-shape", help=f"comma-separated, from {', '.join(C.WORKLOADS)}"
    )
    ap.add_argument(
        "--epochs",
        default=None,
        help="epochs per workload, e.g. 'mnist1d=20,cifar-shape=2' (default; --quick: 3 and 1)",
    )
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of both loops")
    ap.add_argument(
        "--explain",
        action="store_true",
        help="only run the per-step ablation (bare loop + each of restudy's per-step extras)",
    )
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 7)
    epochs = {"mnist1d": 3, "cifar-shape": 1} if args.quick else {"mnist1d": 20, "cifar-shape": 2}
    if args.epochs:
        epochs.update({k: int(v) for k, v in (kv.split("=") for kv in args.epochs.split(","))})

    torch.set_num_threads(1)
    C.print_machine(f"bench_overhead, repeats={repeats}{' (quick)' if args.quick else ''}")
    C.print_cold_start()
    t0 = time.perf_counter()
    if args.explain:
        for name in args.workloads.split(","):
            explain(C.WORKLOADS[name], epochs[name], args.repeats or 11)
        return
    finals: list[str] = []
    with tempfile.TemporaryDirectory(prefix="restudy-bench-") as tmp:
        for name in args.workloads.split(","):
            finals += bench(
                C.WORKLOADS[name],
                epochs[name],
                repeats,
                Path(tmp),
                args.profile,
                process_repeats=1 if args.quick else repeats,
            )
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s)")
    for line in finals:
        print(line)


if __name__ == "__main__":
    main()
