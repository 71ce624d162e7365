"""Executors run ``RunSpec``s and yield their records as they finish.

``LocalExecutor`` is a process pool (spawn) of single-threaded workers, one per core by default:
on a small CPU, N one-thread processes train N seeds faster than one N-thread process (see
benchmarks/bench_pool.py). A crashing run becomes a ``failed`` record; the others continue.
``InlineExecutor`` runs in the calling process (tests, debugging). ``StackedExecutor`` trains the
seeds of tiny models as stacks (one stacked model per pool task, see ``restudy.execution.stacked``) and the
other runs like ``LocalExecutor``; ``choose_executor`` picks one of them for a list of runs.

On CUDA (setting ``device`` resolves to cuda), the pool has ``runs_per_gpu`` workers per GPU, each
pinned to one GPU round-robin through ``CUDA_VISIBLE_DEVICES``; ``runs_per_gpu="auto"`` measures
one run of each distinct model in a probe process (peak memory, free memory) and lets
:func:`restudy.training.devices.slots_per_gpu` decide (:func:`gpu_plan`).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import RestudyError
from ..planning.runs import RunSpec
from ..planning.seeding import prepare_process_env
from ..storage.env import RUNS_PER_GPU_ENV
from ..storage.record import RunRecord, now

EXECUTION_MODES = ("auto", "stacked", "pool", "inline")
# "auto" stacks only when every group of seeds is at least this large: smaller stacks gain little
# over the process pool, which already runs one seed per core.
MIN_AUTO_STACK = 4

Task = list[tuple[RunSpec, Path]]  # one pool task: a single run, or the runs of one stack


# How often a waiting driver looks at its stop flag (Ctrl-C) and a worker at its parent.
POLL_S = 0.5


class Executor(Protocol):
    def run(
        self, specs: Sequence[RunSpec], run_dirs: Sequence[Path], stop: threading.Event | None = None
    ) -> Iterator[dict]:
        """Yield one record per run. Once ``stop`` is set, start no more runs: the runs started
        finish and are yielded, the others are not run (and yield nothing)."""
        ...


def default_workers() -> int:
    """One worker per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(threads: int, parent: int | None = None, gpus: tuple[str, ...] = (), counter=None) -> None:
    """A worker: ``threads`` intra-op threads; ignores Ctrl-C (its driver decides what stops) and
    exits when its driver (``parent``) dies, even by SIGKILL. With ``gpus``, the n-th worker
    started (``counter``, shared) sees only GPU ``gpus[n % len(gpus)]``, set before torch
    initialises CUDA."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _exit_with_parent(parent)
    if gpus and counter is not None:
        with counter.get_lock():
            n = counter.value
            counter.value += 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[n % len(gpus)]
    import torch

    torch.set_num_threads(threads)


def _exit_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies (``PR_SET_PDEATHSIG``); elsewhere,
    and as a second guard, a thread checks every ``POLL_S`` seconds that the parent is still ours."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(POLL_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="restudy-parent-watch", daemon=True).start()


def failed_record(spec: RunSpec, reason: str) -> dict:
    at = now()
    return RunRecord(
        key=spec.key, spec=spec.to_dict(), status="failed", reason=reason, started_at=at, finished_at=at
    ).to_dict()


class InlineExecutor:
    """Runs each spec in this process, one after the other."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def run(
        self, specs: Sequence[RunSpec], run_dirs: Sequence[Path], stop: threading.Event | None = None
    ) -> Iterator[dict]:
        import torch

        from .worker import execute

        threads = self.threads or torch.get_num_threads()
        for spec, d in zip(specs, run_dirs):
            if stop is not None and stop.is_set():
                return
            yield execute(spec.to_dict(), str(d), threads)


class LocalExecutor:
    """A spawn process pool of ``workers`` processes with ``threads`` intra-op threads each."""

    def __init__(self, workers: int | None = None, threads: int = 1, runs_per_gpu: int | str = "auto") -> None:
        self.workers = workers or default_workers()
        self.explicit_workers = workers is not None
        self.threads = threads
        self.runs_per_gpu = check_runs_per_gpu(runs_per_gpu)
        self.gpus: tuple[str, ...] = ()
        self.gpu_note = ""  # how the runs per GPU were chosen (empty off CUDA)

    def run(
        self, specs: Sequence[RunSpec], run_dirs: Sequence[Path], stop: threading.Event | None = None
    ) -> Iterator[dict]:
        if not specs:
            return
        stop = stop or threading.Event()
        kernels = specs[0].kernels
        saved = dict(os.environ)
        prepare_process_env(self.threads, kernels)  # inherited by the spawned children
        self._plan_gpus(specs)
        pending = list(zip(specs, run_dirs))
        try:
            while pending and not stop.is_set():
                pending = yield from self._run_pool(pending, stop)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _plan_gpus(self, specs: Sequence[RunSpec]) -> None:
        """On CUDA: the GPUs the workers are spread over and the workers (runs per GPU x GPUs,
        unless ``workers`` was given)."""
        plan = gpu_plan(specs, self.runs_per_gpu, self.threads, cpus=default_workers())
        if plan is None:
            return
        self.gpus, slots, self.gpu_note = plan
        if not self.explicit_workers:
            self.workers = slots * len(self.gpus)
        # Inherited by the workers (the caller's environment is restored after the runs): each run
        # records how many runs shared its GPU, which its timings depend on.
        os.environ[RUNS_PER_GPU_ENV] = f"{-(-self.workers // len(self.gpus))} ({self.gpu_note})"

    def tasks(self, pending: Sequence[tuple[RunSpec, Path]]) -> list[Task]:
        """``pending`` cut into pool tasks: here one run each."""
        return [[m] for m in pending]

    def _run_pool(self, pending: list[tuple[RunSpec, Path]], stop: threading.Event) -> Iterator[dict]:
        """Run ``pending`` as tasks; if the pool breaks (a worker died), return what was not run.

        Once ``stop`` is set, tasks not started are cancelled and the started ones finish. If this
        generator is interrupted (a second Ctrl-C: ``KeyboardInterrupt``) or closed, the workers
        are killed at once.
        """
        ctx = mp.get_context("spawn")
        tasks = self.tasks(pending)
        left: list[tuple[RunSpec, Path]] = []
        pool = cf.ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.threads, os.getpid(), self.gpus, ctx.Value("i", 0) if self.gpus else None),
        )
        finished = False
        try:
            futures = {self._submit(pool, task): task for task in tasks}
            waiting = set(futures)
            broken = False
            cancelled = False
            while waiting:
                if stop.is_set() and not cancelled:
                    cancelled = True
                    for fut in waiting:
                        fut.cancel()  # only those no worker has started
                done, waiting = cf.wait(waiting, timeout=POLL_S, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    task = futures[fut]
                    if fut.cancelled():
                        continue
                    try:
                        records = fut.result()
                    except cf.process.BrokenProcessPool:
                        if stop.is_set():
                            continue
                        if not broken:
                            # The task whose worker died is blamed once (all its runs); the rest are re-queued.
                            broken = True
                            records = [
                                failed_record(spec, "the worker process died (killed or crashed) during this run")
                                for spec, _ in task
                            ]
                        else:
                            left.extend(task)
                            continue
                    except Exception as e:  # e.g. a spec that cannot be sent to a worker
                        records = [failed_record(spec, f"{type(e).__name__}: {e}") for spec, _ in task]
                    yield from records
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:
                _kill_pool(pool)
        return left

    def _submit(self, pool: cf.ProcessPoolExecutor, task: Task) -> cf.Future:
        """Submit one task (one run, or a stack); its future's result is a list of records."""
        if len(task) == 1:
            spec, d = task[0]
            return pool.submit(_execute_one, spec.to_dict(), str(d), self.threads)
        from .stacked import execute_stack

        return pool.submit(execute_stack, [spec.to_dict() for spec, _ in task], [str(d) for _, d in task], self.threads)


class StackedExecutor(LocalExecutor):
    """A ``LocalExecutor`` that trains the seeds of tiny models as stacks.

    Runs that differ only in their seeds and are stackable (``restudy.execution.stacked.stackable``) are split
    into stacks of at most ``max_stack`` runs; each stack is one task of the process pool, so
    ``workers`` single-threaded processes train ``workers`` stacks at once. Groups smaller than
    ``min_stack`` and runs that cannot be stacked are ordinary pool tasks, one run each.
    """

    def __init__(
        self,
        max_stack: int = 32,
        workers: int | None = None,
        threads: int = 1,
        min_stack: int = 2,
        runs_per_gpu: int | str = "auto",
    ) -> None:
        super().__init__(workers, threads, runs_per_gpu)
        if max_stack < 1 or min_stack < 1:
            raise RestudyError("stack sizes must be at least 1", got={"max_stack": max_stack, "min_stack": min_stack})
        self.max_stack = max_stack
        self.min_stack = min_stack

    def tasks(self, pending: Sequence[tuple[RunSpec, Path]]) -> list[Task]:
        """``pending`` cut into pool tasks (stacks and single runs), largest first."""
        from .stacked import group_specs, stackable

        groups = group_specs([spec for spec, _ in pending])
        spread = -(-self.workers // max(1, len(groups)))  # parts per group that keep every worker busy
        out: list[Task] = []
        for idx in groups:
            members = [pending[i] for i in idx]
            if len(members) < self.min_stack or not stackable(members[0][0]):
                out.extend([m] for m in members)
            else:
                out.extend(_split(members, self.max_stack, spread, max(self.min_stack, MIN_AUTO_STACK)))
        return sorted(out, key=len, reverse=True)


def _kill_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started and kill its workers."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle on them
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.kill()
        except (OSError, ValueError, AttributeError):
            pass
    for p in procs:
        try:
            p.join(timeout=5)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass


def _execute_one(spec_dict: dict, run_dir: str, threads: int) -> list[dict]:
    """``worker.execute`` for one run, its record in a list (the shape of a stack's result)."""
    from .worker import execute

    return [execute(spec_dict, run_dir, threads)]


def _split(members: Task, max_stack: int, spread: int, min_part: int) -> list[Task]:
    """``members`` in near-equal stacks of at most ``max_stack``; into ``spread`` stacks when
    that keeps each at least ``min_part`` runs (so that a single group still uses every worker)."""
    n = len(members)
    parts = max(-(-n // max_stack), min(spread, max(1, n // min_part)))
    size, extra = divmod(n, parts)
    out, start = [], 0
    for p in range(parts):
        end = start + size + (p < extra)
        out.append(members[start:end])
        start = end
    return out


def any_stackable(specs: Sequence[RunSpec], min_seeds: int = MIN_AUTO_STACK) -> bool:
    """True when some group of ``specs`` that differ only in seeds is stackable and has at least
    ``min_seeds`` runs (the stacked executor sends the other groups to its process pool)."""
    from .stacked import group_specs, stackable, structural_reason

    groups = [g for g in group_specs(specs) if len(g) >= min_seeds]
    # The cheap checks first: the size check loads the data set to learn its input size.
    return any(stackable(specs[g[0]]) for g in groups if not structural_reason(specs[g[0]]))


def choose_executor(
    specs: Sequence[RunSpec],
    mode: str = "auto",
    workers: int | None = None,
    threads: int = 1,
    runs_per_gpu: int | str = "auto",
) -> Executor:
    """The executor for ``specs``.

    Args:
        specs: the runs to execute.
        mode: ``"inline"`` (this process), ``"pool"`` (``LocalExecutor``), ``"stacked"``
            (``StackedExecutor``: stackable groups as stacks, the rest in its pool) or ``"auto"``:
            stacked when some group of seeds is stackable (tiny models) and has at least
            ``MIN_AUTO_STACK`` runs — those groups are stacked, the others run one by one in the
            pool — else pool.
        workers, threads: worker processes and intra-op threads per worker (or for inline).
        runs_per_gpu: on CUDA, runs trained at once per GPU: ``"auto"`` (measured) or a count.

    Raises:
        RestudyError: an unknown mode or ``runs_per_gpu``, or runs set to ``device: cuda`` where
            CUDA is not available.
    """
    if mode not in EXECUTION_MODES:
        raise RestudyError("unknown execution mode", where="--execution", got=mode, allowed=EXECUTION_MODES)
    runs_per_gpu = check_runs_per_gpu(runs_per_gpu)
    from ..training.devices import resolve_device

    for device in sorted({spec.engine.device for spec in specs}):
        resolve_device(device)  # device: cuda without CUDA fails here, before any run starts
    if mode == "inline":
        return InlineExecutor(threads)
    if mode == "stacked" or (mode == "auto" and any_stackable(specs)):
        return StackedExecutor(workers=workers, threads=threads, runs_per_gpu=runs_per_gpu)
    return LocalExecutor(workers, threads, runs_per_gpu)


# --------------------------------------------------------------------------- runs per GPU


def check_runs_per_gpu(value: int | str) -> int | str:
    """``"auto"`` or a count >= 1 (also as text, from the command line).

    Raises:
        RestudyError: anything else.
    """
    if value == "auto":
        return value
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if isinstance(value, bool) or n < 1 or str(n) != str(value).strip():
        raise RestudyError("runs per GPU must be auto or a whole number >= 1", where="--runs-per-gpu", got=value)
    return n


def visible_gpus(count: int) -> tuple[str, ...]:
    """The ids of the GPUs this process may use (``CUDA_VISIBLE_DEVICES`` when set)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None and env.strip():
        return tuple(g.strip() for g in env.split(",") if g.strip())[:count]
    return tuple(str(i) for i in range(count))


def gpu_plan(
    specs: Sequence[RunSpec], runs_per_gpu: int | str, threads: int, cpus: int
) -> tuple[tuple[str, ...], int, str] | None:
    """``(gpus, runs per GPU, why)`` when the runs train on CUDA, else None.

    Raises:
        RestudyError: a run sets ``device: cuda`` and CUDA is not available (before any run).
    """
    from ..training.devices import resolve_device

    devices = {resolve_device(spec.engine.device)[0] for spec in specs}
    if devices != {"cuda"}:
        return None
    import torch

    gpus = visible_gpus(torch.cuda.device_count())
    if runs_per_gpu != "auto":
        return gpus, int(runs_per_gpu), f"{runs_per_gpu} per GPU (--runs-per-gpu) on {len(gpus)} GPU(s)"
    from ..training.devices import slots_per_gpu

    try:
        m = measure_gpu(specs, threads)
    except Exception as e:  # the probe itself failed: the runs will say why, one at a time
        return gpus, 1, f"1 per GPU: the memory probe failed ({type(e).__name__}: {e})"
    slots, why = slots_per_gpu(
        m["peak_bytes"], m["free_bytes"], cpus_per_gpu=cpus // len(gpus), runs=-(-len(specs) // len(gpus))
    )
    return gpus, slots, f"{why}; {len(gpus)} GPU(s), one run's step {m['step_s'] * 1e3:.1f} ms"


# Distinct models measured by the probe: the first runs of the first few (the largest decides).
PROBE_MODELS = 4


def measure_gpu(specs: Sequence[RunSpec], threads: int) -> dict[str, float]:
    """Measure, in a spawned probe process on the first visible GPU, one run of each distinct model
    (up to ``PROBE_MODELS``): the largest peak reserved memory, the free memory before it and the
    time of a training step (the driver itself never initialises CUDA)."""
    firsts: dict[str, RunSpec] = {}
    for spec in specs:
        shape = {**spec.settings.of_parts("model", "data"), "batch": spec.engine.batch_size}
        firsts.setdefault(repr(sorted(shape.items())) + spec.engine.precision, spec)
    chosen = [s.to_dict() for s in list(firsts.values())[:PROBE_MODELS]]
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_probe, chosen, threads).result()


def _probe(spec_dicts: list[dict], threads: int, steps: int = 3) -> dict[str, float]:
    """Probe process: see :func:`measure_gpu`."""
    import time

    import torch
    import torch.nn.functional as F

    from ..training.build import build_run, prepare

    free, total = torch.cuda.mem_get_info()
    peak, step_s = 0, 0.0
    for d in spec_dicts:
        spec = RunSpec.from_dict(d)
        prep = prepare(spec, threads, "single")
        torch.cuda.reset_peak_memory_stats()
        parts = build_run(spec, prep.data, prep.device)
        x, y = prep.tensors[0][: spec.engine.batch_size], prep.tensors[1][: spec.engine.batch_size]
        fwd = parts.forward or parts.model
        for i in range(steps):
            if i == 1:
                torch.cuda.synchronize()
                t0 = time.perf_counter()
            with parts.amp.autocast() if parts.amp else torch.autocast("cuda", enabled=False):
                loss = F.cross_entropy(fwd(x), y)
            parts.optimizer.zero_grad(set_to_none=True)
            if parts.amp:
                parts.amp.backward_step(loss, parts.optimizer)
            else:
                loss.backward()
                parts.optimizer.step()
        torch.cuda.synchronize()
        step_s = max(step_s, (time.perf_counter() - t0) / (steps - 1))
        with torch.no_grad():
            parts.model(prep.tensors[2][: spec.engine.eval_batch_size])
        peak = max(peak, torch.cuda.max_memory_reserved())
        del parts, prep, x, y, loss
        torch.cuda.empty_cache()
    return {"peak_bytes": peak, "free_bytes": free, "total_bytes": total, "step_s": step_s}
