"""Calibration: the measured cost of one pool task (a run, or a stack of K seeds), of a worker's
start, of loading a data set and of a run's fixed overhead, for ``restudy.estimate.cost``'s estimate.

A task's parts are built the normal way (``restudy.training.build``; stacks by
``restudy.execution.stacked.build_stack``) in this process with the run's thread count, and a few optimizer
steps are timed after a warm-up step by the real training loop (``train.train`` /
``train_stacked.train_stacked`` on a slice of the training set), plus one evaluation pass over both splits.
A run's time is its steps × the time per step + its epochs × the evaluation pass (+ the test views
of test-time augmentation). The fixed overhead comes from one real run of one epoch end to end
(preparing, building, saving its tensors and record, indexing it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RestudyError
from ..planning.runs import RunSpec

# Steps timed per block after the warm-up step, and the time a calibration aims to measure (longer
# is steadier; the blocks stop once this much was timed or after MAX_BLOCKS).
STEPS_PER_BLOCK = 4
MIN_TIMED_S = 0.15
MAX_BLOCKS = 5
# The one-epoch end-to-end run that measures the per-run overhead is skipped when its epoch would take
# longer than this (paper scale on a CPU): the overhead is then the measured build time alone.
OVERHEAD_RUN_LIMIT_S = 20.0


@dataclass
class TaskCost:
    """The calibrated cost of one task shape: ``size`` runs of one group (1: a single run)."""

    experiment: str
    size: int
    steps: int  # optimizer steps per run (all epochs)
    epochs: int
    step_s: float  # one optimizer step of the whole task (all its models)
    eval_s: float  # one evaluation pass (train and test) of the whole task
    extras_s: float  # test-time augmentation views, per task
    build_s: float
    data: str  # the data set's key (a slot loads it once)

    @property
    def train_s(self) -> float:
        return self.steps * self.step_s + self.epochs * self.eval_s + self.extras_s


def dataset_key(spec: RunSpec) -> str:
    from ..training.build import data_key, transforms_key

    return json.dumps([data_key(spec.settings), transforms_key(spec.settings)], default=str)


def settings_key(spec: RunSpec) -> str:
    return spec.settings.canonical()


def measure_load(spec: RunSpec) -> float:
    """Seconds to load ``spec``'s data set from scratch (what a new process pays once)."""
    from ..data import load_dataset

    t0 = time.perf_counter()
    load_dataset(spec.engine.data, **spec.settings.part_args("data"))
    return time.perf_counter() - t0


def measure_startup(spec: RunSpec, threads: int) -> tuple[float, float]:
    """Seconds to start a worker process and make it ready for its first run: a fresh interpreter
    importing what a spawned worker of ``restudy run`` imports (the command line's module, the
    executor, the worker) and preparing ``spec``'s run (registries, the study's module, the
    environment, its data set loaded) as a worker's first run does. Returns (wall, CPU) seconds."""
    import resource

    code = (
        "import json, sys, restudy.cli, restudy.execution.executor, restudy.execution.worker\n"
        "import restudy.execution.stacked\n"
        "from restudy.training.build import prepare\n"
        "from restudy.planning.runs import RunSpec\n"
        "spec = RunSpec.from_dict(json.load(open(sys.argv[1])))\n"
        "prepare(spec, int(sys.argv[2]), 'single')\n"
    )
    from ..storage.safeio import write_json

    with tempfile.TemporaryDirectory(prefix="restudy-plan-") as tmp:
        path = Path(tmp) / "spec.json"
        write_json(path, spec.to_dict())
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code, str(path), str(threads)], capture_output=True, text=True, env=_child_env()
        )
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RestudyError("a worker process could not prepare a run", got=done.stderr[-500:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def _child_env() -> dict[str, str]:
    import os

    here = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


def _timed_blocks(run_block: Any) -> tuple[float, int]:
    """Call ``run_block()`` (which trains ``STEPS_PER_BLOCK`` steps and returns their seconds)
    until ``MIN_TIMED_S`` was timed or ``MAX_BLOCKS`` blocks ran; returns (seconds, steps)."""
    total, steps = 0.0, 0
    for _ in range(MAX_BLOCKS):
        total += run_block()
        steps += STEPS_PER_BLOCK
        if total >= MIN_TIMED_S:
            break
    return total, steps


def _slices(n_train: int, batch: int, steps: int) -> tuple[int, int]:
    """(examples, epochs) of a slice of the training set on which the loop makes ``steps`` steps."""
    per_epoch = max(1, min(steps, n_train // batch))
    return min(n_train, per_epoch * batch), -(-steps // per_epoch)


def _tta_views(spec: RunSpec) -> int:
    """Test-set forward passes that test-time augmentation adds to a finished run."""
    from ..spec.tta_strategies import parse_strategy
    from ..training.build import snapshot_epochs

    views = 0
    for name in spec.engine.tta:
        st = parse_strategy(name)
        views += max(1, st.per_axis**2) * (2 if st.flip else 1)
    return views * max(1, len(snapshot_epochs(spec.settings)))


def calibrate_single(spec: RunSpec, threads: int) -> TaskCost:
    """Time one run's steps and evaluation pass (see the module docstring)."""
    from ..training.build import build_run, prepare, steps_per_epoch, train_options
    from ..training.evaluate import evaluate
    from ..training.loop import train

    s, e = spec.settings, spec.engine
    prep = prepare(spec, threads, "single")
    x_tr, y_tr, x_te, y_te = prep.tensors
    t0 = time.perf_counter()
    parts = build_run(spec, prep.data, prep.device)
    build_s = time.perf_counter() - t0
    bs = int(e.batch_size)
    n_train = int(x_tr.shape[0])

    def steps(k: int) -> float:
        n, epochs = _slices(n_train, bs, k)
        result = train(
            parts.model,
            x_tr[:n],
            y_tr[:n],
            x_te[:1],
            y_te[:1],
            epochs=epochs,
            batch_size=bs,
            **train_options(parts, s),
        )
        return sum(row["train_s"] for row in result.curves) * k / max(1, result.steps or k)

    steps(1)  # warm-up: first-call allocations and kernel selection
    timed, n_steps = _timed_blocks(lambda: steps(STEPS_PER_BLOCK))
    ebs, mf = e.eval_batch_size, parts.memory_format
    evaluate(parts.model, x_te[:2], y_te[:2], "test", ebs, mf)  # warm-up
    t1 = time.perf_counter()
    evaluate(parts.model, x_tr, y_tr, "train", ebs, mf)
    t_test = time.perf_counter()
    evaluate(parts.model, x_te, y_te, "test", ebs, mf)
    t2 = time.perf_counter()
    return TaskCost(
        experiment=spec.experiment,
        size=1,
        steps=int(e.epochs) * steps_per_epoch(s, n_train),
        epochs=int(e.epochs),
        step_s=timed / n_steps,
        eval_s=t2 - t1,
        extras_s=_tta_views(spec) * (t2 - t_test),
        build_s=build_s,
        data=dataset_key(spec),
    )


def calibrate_stack(specs: Sequence[RunSpec], threads: int) -> TaskCost:
    """Time one stack of ``len(specs)`` models as the stacked executor trains it."""
    from ..execution.stacked import build_stack, member_labels
    from ..training.build import prepare, steps_per_epoch
    from ..training.loop_stacked import train_stacked

    spec = specs[0]
    s, e = spec.settings, spec.engine
    prep = prepare(spec, threads, "stacked")
    x_tr, _, x_te, y_te = prep.tensors
    labels, _ = member_labels(list(specs), prep.data)
    labels = labels.to(x_tr.device)
    t0 = time.perf_counter()
    stack = build_stack(list(specs), prep.data, prep.device)
    build_s = time.perf_counter() - t0
    bs = int(e.batch_size)
    n_train = int(x_tr.shape[0])
    k = len(specs)

    def steps(n_steps: int) -> float:
        n, epochs = _slices(n_train, bs, n_steps)
        results = train_stacked(
            stack.model,
            x_tr[:n],
            labels[..., :n],
            x_te[:1],
            y_te[:1],
            optimizer=stack.optimizer,
            schedule=stack.schedule,
            epochs=epochs,
            batch_size=bs,
            orders=stack.orders,
            augments=stack.augments,
            eval_batch_size=e.eval_batch_size,
            label_smoothing=e.label_smoothing,
        )
        # train_stacked splits each epoch's time among the models taking part: add it back up.
        done = max((r.steps for r in results), default=0) or n_steps
        return sum(row["train_s"] for r in results for row in r.curves) * n_steps / done

    steps(1)
    timed, n_steps = _timed_blocks(lambda: steps(STEPS_PER_BLOCK))
    ebs = e.eval_batch_size
    stack.model.predict(x_te[:2], ebs)
    t1 = time.perf_counter()
    stack.model.predict(x_tr, ebs)
    stack.model.predict(x_te, ebs)
    eval_s = time.perf_counter() - t1
    return TaskCost(
        experiment=spec.experiment,
        size=k,
        steps=int(e.epochs) * steps_per_epoch(s, n_train),
        epochs=int(e.epochs),
        step_s=timed / n_steps,
        eval_s=eval_s,
        extras_s=0.0,
        build_s=build_s,
        data=dataset_key(spec),
    )


@dataclass
class Overhead:
    """The fixed time of a run beyond training and evaluation: ``task_s`` once per pool task
    (preparing, building), ``run_s`` once per run (saving its tensors and record, indexing it)."""

    task_s: float
    run_s: float
    note: str = ""

    def of(self, size: int) -> float:
        return self.task_s + size * self.run_s


def measure_overhead(spec: RunSpec, threads: int, cost: TaskCost) -> Overhead:
    """One real run of one epoch (``worker.execute``) minus its measured training and evaluation
    time, plus indexing its record in a store; the saving part (tensors, record, index) is timed
    again on its own as the per-run part. Falls back to the build time when one epoch would
    exceed ``OVERHEAD_RUN_LIMIT_S``."""
    from ..execution.worker import execute
    from ..storage.artifacts import LOGITS_FILE, RUN_FILE
    from ..storage.safeio import load_tensors, save_tensors, write_json
    from ..storage.store import Store

    one_epoch = cost.train_s / max(1, cost.epochs)
    if one_epoch > OVERHEAD_RUN_LIMIT_S:
        return Overhead(cost.build_s, 0.0, f"per-run overhead: the build time only (one epoch takes {one_epoch:.0f} s)")
    short = spec.with_settings(
        {"epochs": 1}, "restudy plan: a one-epoch calibration run", key=spec.key + "-calibration"
    )
    with tempfile.TemporaryDirectory(prefix="restudy-plan-") as tmp:
        run_dir = Path(tmp) / "runs" / short.key
        run_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        record = execute(short.to_dict(), str(run_dir), threads)
        wall = time.perf_counter() - t0
        if record.get("status") == "failed":
            why = str(record.get("reason"))[:200]
            return Overhead(cost.build_s, 0.0, f"per-run overhead: the build time only (a one-epoch run failed: {why})")
        with Store(tmp) as store:
            # The driver indexes each record, and reads it back (verified) once all runs ended.
            t1 = time.perf_counter()
            store.put(record)
            store.reindex()
            store.records([record["key"]])
            put_s = time.perf_counter() - t1
        tensors = load_tensors(run_dir / LOGITS_FILE) if (run_dir / LOGITS_FILE).is_file() else {}
        t2 = time.perf_counter()
        if tensors:
            save_tensors(Path(tmp) / "again.safetensors", tensors)
        write_json(Path(tmp) / ("again-" + RUN_FILE), record)
        save_s = time.perf_counter() - t2
    timings = record.get("timings") or {}
    inner = sum(float(timings.get(k) or 0.0) for k in ("train_s", "eval_s", "extras_s"))
    total = max(0.0, wall - inner) + put_s
    per_run = min(total, save_s + put_s)
    return Overhead(total - per_run, per_run)
