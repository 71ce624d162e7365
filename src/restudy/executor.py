"""Executors run ``RunSpec``s and yield their records as they finish.

``LocalExecutor`` is a process pool (spawn) of single-threaded workers, one per core by default:
on a small CPU, N one-thread processes train N seeds faster than one N-thread process (see
benchmarks/bench_pool.py). A crashing run becomes a ``failed`` record; the others continue.
``InlineExecutor`` runs in the calling process (tests, debugging).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from .plan import RunSpec
from .record import RunRecord
from .seeding import prepare_process_env


class Executor(Protocol):
    def run(self, specs: Sequence[RunSpec], run_dirs: Sequence[Path]) -> Iterator[dict]: ...


def default_workers() -> int:
    """One worker per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _failed(spec: RunSpec, reason: str) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return RunRecord(key=spec.key, spec=spec.to_dict(), status="failed", reason=reason,
                     started_at=now, finished_at=now).to_dict()


class InlineExecutor:
    """Runs each spec in this process, one after the other."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def run(self, specs: Sequence[RunSpec], run_dirs: Sequence[Path]) -> Iterator[dict]:
        import torch

        from .worker import execute

        threads = self.threads or torch.get_num_threads()
        for spec, d in zip(specs, run_dirs):
            yield execute(spec.to_dict(), str(d), threads)


class LocalExecutor:
    """A spawn process pool of ``workers`` processes with ``threads`` intra-op threads each."""

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.workers = workers or default_workers()
        self.threads = threads

    def run(self, specs: Sequence[RunSpec], run_dirs: Sequence[Path]) -> Iterator[dict]:
        if not specs:
            return
        kernels = specs[0].kernels
        saved = dict(os.environ)
        prepare_process_env(self.threads, kernels)  # inherited by the spawned children
        pending = list(zip(specs, run_dirs))
        try:
            while pending:
                pending = yield from self._run_pool(pending)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def _run_pool(self, pending: list[tuple[RunSpec, Path]]) -> Iterator[dict]:
        """Run ``pending``; if the pool breaks (a worker died), return what was not run."""
        from .worker import execute

        ctx = mp.get_context("spawn")
        workers = min(self.workers, len(pending))
        left: list[tuple[RunSpec, Path]] = []
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                    initargs=(self.threads,)) as pool:
            futures = {pool.submit(execute, spec.to_dict(), str(d), self.threads): (spec, d)
                       for spec, d in pending}
            broken = False
            for fut in cf.as_completed(futures):
                spec, d = futures[fut]
                try:
                    yield fut.result()
                except cf.process.BrokenProcessPool:
                    if not broken:
                        # The run whose worker died is blamed once; the rest are re-queued.
                        broken = True
                        yield _failed(spec, "the worker process died (killed or crashed) during this run")
                    else:
                        left.append((spec, d))
                except Exception as e:  # e.g. a spec that cannot be sent to a worker
                    yield _failed(spec, f"{type(e).__name__}: {e}")
        return left
