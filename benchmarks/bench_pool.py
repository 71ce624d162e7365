"""The local process pool vs one 2-thread process, for K seeds of one run (goal: >= 1.35x).

K seeds (``--k``, default 8) of the enorm small-scale fc baseline run at depth 9 (SGD lr 0.05, wd
1e-3, linear decay, deterministic kernels, evaluation of train and test after every epoch, run.json
and logits written), planned with ``restudy.planning.runs.plan(..., seeds=K)``, are run by:

* ``pool``    -- ``LocalExecutor(workers=2, threads=1)`` called from this process (which has torch
  imported already, as the ``restudy`` CLI has): a spawn pool of two single-threaded workers. Its
  wall time includes spawning the workers, their imports and each worker's first-run costs (dataset
  generation, first determinism call).
* ``inline2`` -- ``InlineExecutor(threads=2)`` in a fresh Python process (OMP_NUM_THREADS=2): the K
  runs one after another with 2 intra-op threads. Its wall time includes that process's start,
  imports and one dataset generation, so both sides pay one start-up on the critical path.
* ``spawn``   -- a spawn pool of 2 workers (same initializer) that only imports ``restudy.execution.worker``:
  the pool's bare start-up cost.

Each repeat runs the three in a rotating order with fresh run directories. Printed: wall-clock ratio
inline2 / pool (> 1: the pool is faster), median [min, max] over the repeats.

Workloads: ``mnist1d`` (the small-scale run itself: MNIST-1D, fc 128x9, batch 64, 20 epochs) and
``cifar-shape`` (synthetic 3072-d inputs, 5,120 train / 1,024 test, fc 500x9, batch 256, 2 epochs).

    python benchmarks/bench_pool.py [--k 8] [--repeats R] [--quick] [--workloads mnist1d,cifar-shape]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The inline child measures its own start-up, so it imports nothing before starting the clock.
INLINE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from pathlib import Path
from restudy.execution.executor import InlineExecutor
from restudy.planning.runs import RunSpec
t1 = time.perf_counter()
specs = [RunSpec.from_dict(d) for d in json.loads(open(sys.argv[1]).read())]
dirs = [Path(sys.argv[2]) / s.key for s in specs]
for d in dirs:
    d.mkdir(parents=True)
recs = list(InlineExecutor(threads=int(sys.argv[3])).run(specs, dirs))
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "threads": torch.get_num_threads(),
                  "records": [{"status": r["status"], "timings": r["timings"]} for r in recs]}))
"""


def run_pool(specs, out: Path, workers: int) -> dict:
    from restudy.execution.executor import LocalExecutor

    dirs = [out / s.key for s in specs]
    for d in dirs:
        d.mkdir(parents=True)
    t = time.perf_counter()
    recs = list(LocalExecutor(workers=workers, threads=1).run(specs, dirs))
    wall = time.perf_counter() - t
    return {"wall_s": wall, "records": recs}


def run_inline(spec_file: Path, out: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", INLINE, str(spec_file), str(out), str(threads)], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"inline child failed:\n{p.stderr}")
    info = json.loads(p.stdout.strip().splitlines()[-1])
    info["wall_s"] = wall
    return info


def run_spawn(workers: int, hold_s: float = 0.5) -> dict:
    import concurrent.futures as cf
    import multiprocessing as mp

    import _common as C
    from restudy.execution.executor import _init_worker
    from restudy.planning.seeding import prepare_process_env

    saved = dict(os.environ)
    prepare_process_env(1, "deterministic")
    try:
        t = time.perf_counter()
        with cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(1,)
        ) as pool:
            res = list(pool.map(C.spawn_probe, [hold_s] * workers))
        wall = time.perf_counter() - t - hold_s
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"wall_s": wall, "pids": len({r["pid"] for r in res})}


def busy(records: list[dict]) -> float:
    """Seconds spent in the training loop and evaluation, summed over runs."""
    return sum(r["timings"]["train_s"] + r["timings"]["eval_s"] for r in records)


def bench(workload, k: int, epochs: int, repeats: int, workers: int, tmp: Path) -> list[str]:
    import _common as C

    specs = C.specs_for(workload, epochs, seeds=k)
    s = specs[0].settings.values
    spec_file = tmp / f"{workload.name}-specs.json"
    spec_file.write_text(json.dumps([sp.to_dict() for sp in specs]))
    print(
        f"\n== {workload.label}: K={k} seeds x {epochs} epochs (fc width {s['model.width']} hidden "
        f"{s['model.hidden']}, data {s['data']}, kernels={specs[0].kernels}); "
        f"pool = LocalExecutor(workers={workers}, threads=1) vs inline2 = InlineExecutor(threads=2) "
        f"in one fresh process"
    )

    configs = {
        "pool": lambda out: run_pool(specs, out, workers),
        "inline2": lambda out: run_inline(spec_file, out, 2),
        "spawn": lambda out: run_spawn(workers),
    }
    rows = []
    for rep in range(repeats):
        gf1, gf2 = C.probe(1), C.probe(2)
        order = C.rotation(list(configs), rep)
        r = {}
        for name in order:
            out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))
            r[name] = configs[name](out)
        for name in ("pool", "inline2"):
            bad = [x["status"] for x in r[name]["records"] if x["status"] != "finished"]
            assert not bad, (name, bad)
        rows.append(r)
        print(
            f"rep {rep + 1}/{repeats} (probe 1 thread {gf1:.0f}, 2 threads {gf2:.0f} GFLOP/s; order "
            f"{' '.join(order)}): pool {r['pool']['wall_s']:.2f}s | inline2 {r['inline2']['wall_s']:.2f}s "
            f"(imports {r['inline2']['import_s']:.2f}s) | spawn {r['spawn']['wall_s']:.2f}s "
            f"({r['spawn']['pids']} workers) | ratio {r['inline2']['wall_s'] / r['pool']['wall_s']:.3f}"
            + ("  [2-thread probe < 1.3x the 1-thread one: another process held a core]" if gf2 < 1.3 * gf1 else "")
        )

    def col(f):
        return [f(r) for r in rows]

    ratio = col(lambda r: r["inline2"]["wall_s"] / r["pool"]["wall_s"])
    # Work only: summed train+eval seconds of the K runs, divided by the concurrency.
    work_ratio = col(lambda r: busy(r["inline2"]["records"]) / (busy(r["pool"]["records"]) / workers))
    spawn = col(lambda r: r["spawn"]["wall_s"])
    pool_over = col(lambda r: r["pool"]["wall_s"] - busy(r["pool"]["records"]) / workers)
    inline_over = col(lambda r: r["inline2"]["wall_s"] - busy(r["inline2"]["records"]))
    pool_load = col(lambda r: sum(x["timings"]["load_s"] for x in r["pool"]["records"]))
    run_1t = col(lambda r: busy(r["pool"]["records"]) / k)
    run_2t = col(lambda r: busy(r["inline2"]["records"]) / k)
    tag = f"{workload.label}, K={k}, {epochs} epochs"
    print(f"\nresults, {tag} -- inline2/pool (> 1: the pool is faster):")
    print(f"  wall clock, start-up included:                         {C.fmt(ratio, 'x', 3)}")
    print(f"  training+evaluation time only (busy time / concurrency): {C.fmt(work_ratio, 'x', 3)}")
    print(
        f"  one run's train+eval (absolute): 1 thread in the pool {C.fmt(run_1t, ' s', 2)}, "
        f"2 threads inline {C.fmt(run_2t, ' s', 2)}"
    )
    print(
        f"  pool start-up: spawn {workers} workers + import restudy.execution.worker {C.fmt(spawn, ' s', 2)}, "
        f"i.e. {C.fmt([x / k for x in spawn], ' s', 3)} per run amortised over K={k}"
    )
    print(
        f"  pool wall - busy/{workers} (spawn, imports, first-run costs incl. dataset load, tail "
        f"imbalance, IPC, writes) {C.fmt(pool_over, ' s', 2)} = {C.fmt([x / k for x in pool_over], ' s', 3)} "
        f"per run; summed dataset load_s in the pool {C.fmt(pool_load, ' s', 2)}"
    )
    print(f"  inline2 wall - busy (process start, imports, dataset load, writes) {C.fmt(inline_over, ' s', 2)}")
    return [
        f"local pool (2 procs x 1 thread) vs 1 proc x 2 threads ({tag}): {C.fmt(ratio)}",
        f"  same, training+evaluation time only ({tag}): {C.fmt(work_ratio)}; "
        f"pool start-up {C.fmt(spawn, ' s')} = {C.fmt([x / k for x in spawn], ' s', 3)} per run",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=None, help="seeds (default 8; --quick: 4)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 3; --quick: 2)")
    ap.add_argument("--quick", action="store_true", help="short smoke check (< 60 s)")
    ap.add_argument("--workers", type=int, default=2, help="pool workers (default 2: one per core)")
    ap.add_argument(
        "--workloads", default=None, help="comma-separated: mnist1d, cifar-shape (default both; --quick: mnist1d)"
    )
    ap.add_argument(
        "--epochs",
        default=None,
        help="epochs per workload, e.g. 'mnist1d=20,cifar-shape=2' (default; --quick: 3 and 1)",
    )
    args = ap.parse_args()
    k = args.k or (4 if args.quick else 8)
    repeats = args.repeats or (2 if args.quick else 3)
    workloads = args.workloads or ("mnist1d" if args.quick else "mnist1d,cifar-shape")
    epochs = {"mnist1d": 3, "cifar-shape": 1} if args.quick else {"mnist1d": 20, "cifar-shape": 2}
    if args.epochs:
        epochs.update({kk: int(v) for kk, v in (kv.split("=") for kv in args.epochs.split(","))})

    import _common as C

    C.print_machine(f"bench_pool, K={k}, repeats={repeats}{' (quick)' if args.quick else ''}")
    C.print_cold_start()
    t0 = time.perf_counter()
    finals: list[str] = []
    with tempfile.TemporaryDirectory(prefix="restudy-bench-") as tmp:
        for name in workloads.split(","):
            finals += bench(C.WORKLOADS[name], k, epochs[name], repeats, args.workers, Path(tmp))
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s)")
    for line in finals:
        print(line)


if __name__ == "__main__":
    main()
