"""The Ray executor on a local Ray instance vs the local process pool, same runs (goal: overhead <= 10 %).

The runs of one study at one scale (default: every run of enorm at ``smoke`` scale; ``--runs N``
takes the first N of the plan), planned with ``restudy.planning.runs.plan``, are executed by:

* ``pool`` -- ``LocalExecutor(workers=W, threads=1)`` called from this process: a spawn pool of W
  single-threaded workers, started (and its workers' imports paid) inside the timed call.
* ``ray``  -- ``RayExecutor(threads=1)`` on a one-node Ray cluster of W CPUs started once, before
  the repeats, as ``ray start --head`` starts a cluster once for many studies (its start-up is
  printed apart). As each ``restudy run --executor ray --address ...`` does, every repeat joins the
  cluster as a new driver (a new Ray job, whose worker processes start cold: their imports are
  paid inside the timed call, as the pool's are), runs, and leaves. Each run is a task; its
  run.json and tensors return as bytes and are written by this process.

Both write the same files into fresh run folders; every run's metrics and tensors are checked to be
identical between the two. Each repeat runs the two in a rotated order. Printed: wall time of each,
and the ratio ray / pool (1.10 = 10 % overhead), median [min, max] over the repeats.

    python benchmarks/bench_ray.py [--study enorm] [--scale smoke] [--runs N] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run_once(executor, specs, out: Path) -> tuple[float, dict[str, tuple]]:
    """Wall time of one executor over ``specs`` (joining and leaving the cluster for Ray)."""
    import ray

    from restudy.storage import artifacts

    t0 = time.perf_counter()
    records = list(executor.run(specs, [artifacts.run_dir(out, s.key) for s in specs]))
    ray.shutdown()  # leaves the cluster (a no-op for the pool): the next repeat is a new driver
    wall = time.perf_counter() - t0
    return wall, {r["key"]: (r["status"], r["metrics"], r["artifacts"]) for r in records}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default="enorm")
    ap.add_argument("--scale", default="smoke")
    ap.add_argument("--runs", type=int, default=None, help="the first N runs of the plan (default: all)")
    ap.add_argument("--workers", type=int, default=2, help="pool workers and Ray CPUs (default 2: one per core)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    import _common as C
    from restudy.execution.executor import LocalExecutor
    from restudy.execution.ray_executor import RayExecutor
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    specs = plan(load_study(args.study), args.scale)[: args.runs]
    C.print_machine(f"ray {ray.__version__}")
    print(f"workload: {len(specs)} runs of {args.study} at {args.scale} scale; {args.workers} workers / Ray CPUs")
    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.workers, "include_dashboard": False})
    print(f"cluster start (ray start --head, once): {time.perf_counter() - t0:.1f} s")
    makers = {"pool": lambda: LocalExecutor(workers=args.workers), "ray": lambda: RayExecutor(cluster.address)}
    walls: dict[str, list[float]] = {name: [] for name in makers}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            results = {}
            for name in C.rotation(list(makers), rep):
                wall, results[name] = run_once(makers[name](), specs, Path(tmp) / f"{rep}-{name}")
                walls[name].append(wall)
            if results["pool"] != results["ray"]:
                raise SystemExit("the two executors gave different results: the comparison is void")
            ratios.append(walls["ray"][-1] / walls["pool"][-1])
            print(
                f"repeat {rep}: pool {walls['pool'][-1]:.2f} s, ray {walls['ray'][-1]:.2f} s, "
                f"ray/pool {ratios[-1]:.2f}x; probe {C.probe():.1f} GFLOP/s"
            )
    cluster.shutdown()
    print(f"pool: {C.fmt(walls['pool'], ' s')}")
    print(f"ray:  {C.fmt(walls['ray'], ' s')}")
    print(f"ray / pool wall time: {C.fmt(ratios)} (goal <= 1.10); results identical in every repeat")


if __name__ == "__main__":
    main()
