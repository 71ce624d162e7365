"""Many models at once: K tiny models trained as one stack vs one by one (goal: >= 2.5x at K >= 32).

K seeds of an fc net on MNIST-1D (enorm small scale: 4,000 train / 1,000 test sequences of 40
values; SGD lr 0.1 or 0.05, weight decay 1e-3, linear decay, deterministic kernels), planned with
``restudy.planning.runs.plan(..., seeds=K)``, are trained in this process by:

* ``looped``  -- what a worker does per run, K times: ``restudy.training.build.build_run`` (the model under
  its init seed, its optimizer, schedule and order generator), then ``restudy.training.loop.train``;
* ``stacked`` -- ``restudy.execution.stacked.build_stack`` (the same K members, one optimizer and schedule)
  and one ``restudy.training.loop_stacked.train_stacked`` call over the stacked parameters.

Both evaluate train and test after every epoch, as runs do; data loading and file writes are
outside the timed region. Each repeat runs the two in a rotating order; first with 1 intra-op
thread (as a pool worker runs), then with 2. Printed: looped time / stacked time (> 1: stacking
is faster), median [min, max] over the repeats, for the whole training (with evaluation) and for the
training steps alone, and the largest relative difference of the final test logits.

Workloads: ``tiny`` (fc 40-64-64-10, batch 32: ~1.4e6 FLOP per step) and ``d9`` (the small
scale's depth-9 baseline, fc 40-128x10-10, batch 64: ~5.9e7 FLOP per step, near the stacking
threshold).

    python benchmarks/bench_stacked.py [--k 8,32] [--repeats R] [--epochs E] [--quick]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import torch

import _common as C
from restudy import plugins
from restudy.execution.stacked import build_stack, layer_sizes, step_flops
from restudy.planning.seeding import apply_determinism
from restudy.spec.settings import RunSettings
from restudy.training.build import build_run
from restudy.training.loop import train
from restudy.training.loop_stacked import train_stacked


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    depth: str  # the enorm study's depth level (model.hidden)
    overrides: tuple[tuple[str | None, str, Any], ...]
    ks: tuple[int, ...]  # stack sizes measured by default


WORKLOADS = {
    "tiny": Workload(
        "tiny", "MNIST-1D fc 40-64-64-10, B=32", "1", ((None, "model.width", 64), (None, "batch_size", 32)), (8, 32)
    ),
    "d9": Workload("d9", "MNIST-1D fc 40-128x10-10 (small scale, depth 9), B=64", "9", (), (8,)),
}


def specs_for(workload: Workload, k: int, epochs: int):
    """K seeds of the enorm small-scale fc baseline at the workload's depth and overrides."""
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    overrides = list(workload.overrides) + [(None, "epochs", epochs)]
    specs = [
        s
        for s in plan(load_study("enorm"), "small", seeds=k, overrides=overrides, experiments=["fc"])
        if s.variant == {"method": "baseline", "depth": workload.depth}
    ]
    assert len(specs) == k, (len(specs), k)
    return specs


def _loop_args(settings: RunSettings) -> dict[str, Any]:
    """The keyword arguments of train()/train_stacked() that come straight from the settings."""
    e = settings.engine
    return {
        "epochs": e.epochs,
        "batch_size": e.batch_size,
        "eval_batch_size": e.eval_batch_size,
        "label_smoothing": e.label_smoothing,
    }


def run_looped(specs, data) -> dict[str, Any]:
    """K runs one after the other, each built and trained as the worker does."""
    t = time.perf_counter()
    results = []
    for spec in specs:
        parts = build_run(spec, data)
        results.append(
            train(
                parts.model,
                data.x_train,
                data.y_train,
                data.x_test,
                data.y_test,
                optimizer=parts.optimizer,
                schedule=parts.schedule,
                order=parts.order,
                augment=parts.augment,
                **_loop_args(spec.settings),
            )
        )
    return {"wall_s": time.perf_counter() - t, "results": results}


def run_stacked(specs, data) -> dict[str, Any]:
    """The K runs as one stack."""
    t = time.perf_counter()
    stack = build_stack(specs, data)
    results = train_stacked(
        stack.model,
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        optimizer=stack.optimizer,
        schedule=stack.schedule,
        orders=stack.orders,
        augments=stack.augments,
        **_loop_args(specs[0].settings),
    )
    return {"wall_s": time.perf_counter() - t, "results": results}


def train_seconds(run: dict[str, Any]) -> float:
    """Seconds in training steps (evaluation excluded), summed over the K models."""
    return sum(r.train_wall_s for r in run["results"])


def max_logit_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest ‖Δ‖/‖·‖ of the final test logits over the K models."""
    return max(
        ((x.test_logits - y.test_logits).norm() / y.test_logits.norm()).item()
        for x, y in zip(a["results"], b["results"])
    )


def bench(workload: Workload, k: int, epochs: int, repeats: int, threads: int) -> list[str]:
    specs = specs_for(workload, k, epochs)
    s = specs[0].settings
    data = C.load_data(specs[0])
    apply_determinism(specs[0].kernels, threads)
    flops = step_flops(s.engine.batch_size, layer_sizes(s, data.input_shape, data.num_classes))
    print(
        f"\n== {workload.label}: K={k} x {epochs} epochs, {threads} thread(s), ~{flops:.2g} FLOP/step/model, "
        f"{-(-data.x_train.shape[0] // s.engine.batch_size)} steps/epoch, kernels={specs[0].kernels}"
    )
    configs = {"looped": run_looped, "stacked": run_stacked}
    rows = []
    for rep in range(repeats):
        gf = C.probe(threads)
        order = C.rotation(list(configs), rep)
        r = {name: configs[name](specs, data) for name in order}
        for name in configs:
            bad = [x.status for x in r[name]["results"] if x.status != "finished"]
            assert not bad, (name, bad)
        rows.append(r)
        print(
            f"rep {rep + 1}/{repeats} (probe {gf:.0f} GFLOP/s; order {' '.join(order)}): "
            f"looped {r['looped']['wall_s']:.2f}s | stacked {r['stacked']['wall_s']:.2f}s | "
            f"ratio {r['looped']['wall_s'] / r['stacked']['wall_s']:.2f} | "
            f"max logit rel. diff {max_logit_diff(r['stacked'], r['looped']):.1e}"
        )
    ratio = [r["looped"]["wall_s"] / r["stacked"]["wall_s"] for r in rows]
    step_ratio = [train_seconds(r["looped"]) / train_seconds(r["stacked"]) for r in rows]
    per_model = [r["looped"]["wall_s"] / k for r in rows]
    tag = f"{workload.label}, K={k}, {epochs} epochs, {threads} thread(s)"
    print(f"results, {tag} -- looped/stacked (> 1: stacking is faster):")
    print(f"  training with per-epoch evaluation: {C.fmt(ratio)}")
    print(f"  training steps only:                {C.fmt(step_ratio)}")
    print(f"  one looped model: {C.fmt(per_model, ' s', 3)}")
    return [f"stacked vs looped ({tag}): {C.fmt(ratio)}; steps only {C.fmt(step_ratio)}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", default=None, help="stack sizes for the tiny workload (default 8,32; --quick: 8)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats (default 5; --quick: 2)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 3; --quick: 1)")
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts, measured in turn")
    ap.add_argument("--workloads", default=None, help="comma-separated: tiny, d9 (default both; --quick: tiny)")
    ap.add_argument("--quick", action="store_true", help="short smoke check (< 60 s)")
    args = ap.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    epochs = args.epochs or (1 if args.quick else 3)
    names = (args.workloads or ("tiny" if args.quick else "tiny,d9")).split(",")
    plugins.load_builtins()
    C.print_machine(f"bench_stacked, repeats={repeats}, epochs={epochs}{' (quick)' if args.quick else ''}")
    t0 = time.perf_counter()
    finals: list[str] = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"\n#### {threads} intra-op thread(s) (torch.get_num_threads() = {torch.get_num_threads()})")
        for name in names:
            w = WORKLOADS[name]
            ks = (
                [int(x) for x in args.k.split(",")]
                if args.k and name == "tiny"
                else ([8] if args.quick else list(w.ks))
            )
            for k in ks:
                finals += bench(w, k, epochs, repeats, threads)
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.0f} s)")
    for line in finals:
        print(line)


if __name__ == "__main__":
    main()
