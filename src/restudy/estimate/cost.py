"""Cost planning: what running a study's remaining runs will take, estimated from a short calibration.

Each distinct pool task (one run, or a stack of K seeds of a tiny model, cut as the executor would
cut it) is calibrated (``restudy.estimate.calibrate``). Tasks are then placed, in the order the executor
hands them out, on ``workers`` slots (each taken by the first free slot); a slot pays the measured
start of a worker process once and the load of a data set the first time it sees it. The driver's
own work before the first run (checking each data set, building each distinct run once) is done
here as ``restudy run`` does it, timed and added. The estimate is the time of ``restudy run``'s
training phase; the comparison and report that follow are not included.

Two figures: the wall time with the machine's cores free for the run (each timing divided by the
load this process felt while calibrating: wall / CPU seconds, :class:`LoadClock`; one thread on the
CPU only), and the wall time at the load of the moment (the timings as measured). Runs with
``stop_at_fit`` are counted at all their epochs (an upper bound).
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RestudyError
from ..planning.runs import RunSpec
from .calibrate import (
    Overhead,
    TaskCost,
    calibrate_single,
    calibrate_stack,
    dataset_key,
    measure_load,
    measure_overhead,
    measure_startup,
    settings_key,
)

EXECUTORS = ("local", "ray")


@dataclass
class Estimate:
    """What running the remaining runs will take (seconds unless named otherwise)."""

    study: str
    scale: str
    runs: int
    done: int
    todo: int
    tasks: int
    workers: int
    threads: int
    executor: str
    execution: str
    device: str
    gpus: int
    wall_s: float  # with the machine's cores free for the run
    wall_s_now: float  # at the machine's load when planned
    load_factor: float  # wall / CPU time of the calibration (1: a free core)
    busy_s: float  # the tasks' time summed over slots
    core_hours: float
    gpu_hours: float
    overhead_s: float  # per run
    startup_s: float  # per worker process
    driver_s: float  # the driver's work before the first run
    calibration_s: float
    per_experiment: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- scheduling


def tasks_for(specs: Sequence[RunSpec], workers: int, threads: int, execution: str) -> tuple[list[list[RunSpec]], str]:
    """The pool tasks the executor would make of ``specs``, in the order it hands them out, and
    the executor's name."""
    from ..execution.executor import InlineExecutor, choose_executor

    if not specs:
        return [], "none"
    ex = choose_executor(specs, "inline" if workers == 0 else execution, workers or None, threads)
    if isinstance(ex, InlineExecutor):
        return [[s] for s in specs], "inline"
    cut = ex.tasks([(s, Path(".")) for s in specs])
    return [[s for s, _ in task] for task in cut], type(ex).__name__


def makespan(
    tasks: Sequence[tuple[float, str]],
    slots: int,
    startup_s: float,
    load_s: dict[str, float],
    startup_data: str | None = None,
) -> tuple[float, float]:
    """(wall, busy): ``tasks`` (seconds, data key) in order, each on the first free of ``slots``;
    a slot pays ``startup_s`` before its first task and ``load_s[key]`` the first time it meets a
    data set other than ``startup_data`` (the one its start loaded). ``busy`` sums everything the
    slots did."""
    if not tasks:
        return 0.0, 0.0
    slots = max(1, min(slots, len(tasks)))
    heap: list[tuple[float, int]] = [(0.0, i) for i in range(slots)]
    seen: list[set[str]] = [{startup_data} if startup_data else set() for _ in range(slots)]
    started = [False] * slots
    busy = 0.0
    for seconds, key in tasks:
        free_at, i = heapq.heappop(heap)
        extra = 0.0 if started[i] else startup_s
        started[i] = True
        if key not in seen[i]:
            seen[i].add(key)
            extra += load_s.get(key, 0.0)
        busy += seconds + extra
        heapq.heappush(heap, (free_at + seconds + extra, i))
    return max(t for t, _ in heap), busy


# --------------------------------------------------------------------------- the estimate


@dataclass
class LoadClock:
    """Wall and CPU seconds (of this thread) of the calibrated training steps. Their ratio is the
    machine's load as this process felt it: 1 when it had a core to itself, 3 when it got a third
    of one. With one intra-op thread on the CPU, the timings divided by it are those of a machine
    whose cores are free for the run."""

    wall: float = 0.0
    cpu: float = 0.0

    @contextlib.contextmanager
    def section(self) -> Iterator[None]:
        w, c = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.thread_time() - c

    @property
    def factor(self) -> float:
        return max(1.0, self.wall / self.cpu) if self.cpu > 0 else 1.0


def estimate(
    study: Any,
    scale: str,
    specs: Sequence[RunSpec],
    *,
    done: set[str] = frozenset(),
    workers: int | None = None,
    threads: int = 1,
    execution: str = "auto",
    executor: str = "local",
    progress: Any = None,
    fit_epochs: dict[tuple[str, str], float] | None = None,
) -> Estimate:
    """Calibrate and estimate the runs of ``specs`` not in ``done``.

    Args:
        study: the ``Study`` the runs are of (its checks run first, as ``restudy run`` runs them).
        workers: worker slots (None: one per core; 0: in this process). With ``executor="ray"``
            the cluster's slots, which must be given.
        threads: intra-op threads per worker, as ``restudy run --threads``.
        execution: ``auto``, ``stacked`` or ``pool`` (how the executor cuts the runs into tasks).
        progress: called with a short text before each measurement (or None).
        fit_epochs: for runs that stop when their training set is fit, the epochs their pilot
            runs took, by (experiment, variant id) (:func:`restudy.estimate.pilots.fit_epochs`); other
            such runs are counted at all their epochs.
    """
    import torch

    from ..execution.executor import default_workers
    from ..execution.runner import preflight_data, preflight_parts
    from ..training.build import device_for

    if executor not in EXECUTORS:
        raise RestudyError("unknown executor", where="--executor", got=executor, allowed=list(EXECUTORS))
    if executor == "ray" and not workers:
        raise RestudyError(
            "with --executor ray, give --workers N: the CPU (or GPU) slots of the cluster the runs go to "
            "(restudy plan does not connect to a cluster)",
            where="--workers",
        )
    say = progress or (lambda text: None)
    t_start = time.perf_counter()
    saved_threads = torch.get_num_threads()
    todo = [s for s in specs if s.key not in done]
    slots = default_workers() if workers is None else workers
    tasks, ex_name = tasks_for(todo, slots, threads, execution)
    notes: list[str] = []
    costs: dict[tuple[str, int], TaskCost] = {}
    load_s: dict[str, float] = {}
    clock = LoadClock()
    try:
        driver_s = 0.0
        if todo:
            # The driver's work before the first run, done as `restudy run` does it (and timed).
            say("checking the data and building each distinct run once")
            t0 = time.perf_counter()
            preflight_data(todo)
            preflight_parts(study, todo)
            driver_s = time.perf_counter() - t0
        for task in tasks:
            spec = task[0]
            dkey = dataset_key(spec)
            if dkey not in load_s:
                say(f"loading {spec.engine.data}")
                load_s[dkey] = measure_load(spec)
            ckey = (settings_key(spec), len(task))
            if ckey not in costs:
                stack = f", stack of {len(task)}" if len(task) > 1 else ""
                say(f"timing {spec.experiment} ({spec.variant_id}{stack})")
                with clock.section():
                    single = len(task) == 1
                    costs[ckey] = calibrate_single(spec, threads) if single else calibrate_stack(task, threads)
        overhead = Overhead(0.0, 0.0)
        if tasks:
            key = min(costs, key=lambda k: costs[k].train_s / max(1, costs[k].size))
            cheapest = costs[key]
            spec = next(t[0] for t in tasks if (settings_key(t[0]), len(t)) == key)
            say("timing one run end to end (per-run overhead)")
            overhead = measure_overhead(spec, threads, cheapest)
            if overhead.note:
                notes.append(overhead.note)
        pooled = ex_name not in ("inline", "none")
        startup_s, startup_cpu = 0.0, 0.0
        if pooled and executor == "local":
            say("starting a worker process")
            startup_s, startup_cpu = measure_startup(todo[0], threads)
    finally:
        torch.set_num_threads(saved_threads)
    # Free cores: timings divided by the load felt (one thread on the CPU only; CPU time says
    # nothing of a GPU's time, and several threads add their CPU time up).
    device = _device(todo or specs, device_for)
    free = threads == 1 and device == "cpu"
    f_in = clock.factor if free else 1.0
    f_child = max(1.0, startup_s / startup_cpu) if free and startup_cpu > 0 else 1.0
    fit = fit_epochs or {}

    def fraction(spec: RunSpec) -> float:
        """The share of its epochs a run that stops at the fit trains, as its pilots did."""
        took = fit.get((spec.experiment, spec.variant_id)) if spec.engine.stop_at_fit else None
        return min(1.0, took / max(1, int(spec.engine.epochs))) if took else 1.0

    timed = [
        (
            (costs[(settings_key(t[0]), len(t))].train_s * fraction(t[0]) + overhead.of(len(t))) / f_in,
            dataset_key(t[0]),
        )
        for t in tasks
    ]
    # In this process (inline) the data loaded before the first run is reused: no load per slot.
    first = dataset_key(todo[0]) if todo else None
    loads = {} if ex_name == "inline" else {k: v / f_in for k, v in load_s.items()}
    wall, busy = makespan(timed, slots or 1, startup_s / f_child, loads, first)
    wall += driver_s / f_in
    # At the load of this moment: the same schedule with the timings as measured.
    raw = [(t * f_in, k) for t, k in timed]
    wall_now = driver_s + makespan(raw, slots or 1, startup_s, {} if ex_name == "inline" else load_s, first)[0]
    if not free and tasks:
        notes.append("with several threads per worker or a GPU, the estimate is at the machine's load when planned")
    n_slots = min(max(1, slots or 1), len(tasks))
    gpus = 0
    if device == "cuda":
        gpus = n_slots if executor == "ray" else min(n_slots, max(1, torch.cuda.device_count()))
    stopping = {(s.experiment, s.variant_id) for s in todo if s.engine.stop_at_fit}
    if stopping:
        known, n = len(stopping & set(fit)), len(stopping)
        what = "runs that stop when their training set is fit (stop_at_fit): "
        if known == n:
            what += f"{f'all {n} groups' if n > 1 else 'its one group'} counted at the epochs their pilot runs took"
        else:
            what += f"{known} of {n} groups at the epochs their pilot runs took, the others " if known else ""
            what += "counted at all their epochs (an upper bound; a pilot run per group makes it closer)"
        notes.append(what)
    if len(done & {s.key for s in specs}):
        notes.append(f"{len(done & {s.key for s in specs})} of {len(specs)} runs are already done in the output folder")
    return Estimate(
        study=study.id,
        scale=scale,
        runs=len(specs),
        done=len(specs) - len(todo),
        todo=len(todo),
        tasks=len(tasks),
        workers=slots,
        threads=threads,
        executor=executor,
        execution=ex_name,
        device=device,
        gpus=gpus,
        wall_s=wall,
        wall_s_now=wall_now if tasks else 0.0,
        load_factor=f_in,
        busy_s=busy,
        core_hours=wall * max(1, n_slots) * threads / 3600.0 if tasks else 0.0,
        gpu_hours=wall * gpus / 3600.0,
        overhead_s=overhead.of(1) / f_in,
        startup_s=startup_s / f_child,
        driver_s=driver_s / f_in,
        calibration_s=time.perf_counter() - t_start,
        per_experiment=per_experiment(specs, tasks, [t for t, _ in timed]),
        notes=notes,
    )


def per_experiment(specs: Sequence[RunSpec], tasks: Sequence[Sequence[RunSpec]], seconds: Sequence[float]) -> list:
    """One row per experiment: its runs, those done and to run, the tasks it has runs in, the
    runs stacked, and its estimated run time (summed, and per run). A stack may hold runs of
    several experiments (same settings, other seeds): each run gets an equal share of its task."""
    rows = {s.experiment: {"experiment": s.experiment, "runs": 0, "done": 0} for s in specs}
    for s in specs:
        rows[s.experiment]["runs"] += 1
    for r in rows.values():
        r.update(todo=0, tasks=0, run_s=0.0, stacked_runs=0)
    for task, t in zip(tasks, seconds):
        for exp in {spec.experiment for spec in task}:
            rows[exp]["tasks"] += 1
        for spec in task:
            r = rows[spec.experiment]
            r["todo"] += 1
            r["run_s"] += t / len(task)
            r["stacked_runs"] += 1 if len(task) > 1 else 0
    for r in rows.values():
        r["done"] = r["runs"] - r["todo"]
        r["per_run_s"] = r["run_s"] / r["todo"] if r["todo"] else None
    return list(rows.values())


def _device(specs: Sequence[RunSpec], device_for: Any) -> str:
    names = {device_for(str(s.engine.device)) for s in specs}
    return "cuda" if "cuda" in names else (names.pop() if len(names) == 1 else "cpu")
