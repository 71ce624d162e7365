"""The driver: plan (once) → check the data → skip finished runs → execute the rest → index records.

``run_study`` resumes by default: runs that ended (finished or diverged) are never redone unless
``fresh``; failed runs are retried; runs found invalid on disk (removed, damaged, tampered) are
redone and reported (``RunOutcome.invalid``). Runs another driver on the same directory holds are
waited for, and taken over when that driver dies (its claims expire). Ctrl-C (SIGINT): the first
stops handing out runs and lets the started ones finish (``RunOutcome.interrupted``); the second
stops at once (``KeyboardInterrupt``). Progress is reported through a callback so that the CLI can
render it and tests can observe it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import plugins
from ..errors import RestudyError, StudyError
from ..planning.runs import RunSpec, plan
from ..plugins import import_study_module
from ..spec.study import Study
from ..storage.env import capture, fingerprint
from ..storage.record import DONE_STATUSES
from ..storage.store import Store
from ..training.devices import resolve_device
from .executor import Executor, choose_executor

Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class RunOutcome:
    specs: list[RunSpec]
    records: list[dict[str, Any]]
    executed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    env_mismatch: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)  # run key -> why its stored run was invalid (redone)
    taken_over: list[str] = field(default_factory=list)  # runs a dead driver had claimed, run here
    interrupted: bool = False  # stopped by Ctrl-C: some runs were not run


def worker_fingerprint(threads: int, execution: str | None = "single", device: str | None = None) -> str:
    """Fingerprint of the environment a worker of this process would record (for runs executed
    one by one, or stacked, on ``device``: default cuda when available, else cpu)."""
    env = capture(threads=threads, with_packages=False, execution=execution, device=device)
    return fingerprint(env)


def run_study(
    study: Study,
    scale: str,
    out: str | Path,
    *,
    seeds: int | None = None,
    workers: int | None = None,
    threads: int = 1,
    fresh: bool = False,
    overrides: list[tuple[str | None, str, Any]] = (),
    executor: Executor | None = None,
    progress: Progress | None = None,
    study_path: str | None = None,
    wait_for_others_s: float = 3600.0,
    check_data: bool = True,
    check_parts: bool = True,
    execution: str = "auto",
    specs: list[RunSpec] | None = None,
    runs_per_gpu: int | str = "auto",
) -> RunOutcome:
    """Run every planned run of ``study`` at ``scale`` that has not ended yet; return all records.

    ``specs``: the plan, when the caller made it already (``plan(study, scale, seeds=...,
    overrides=...)``); planned here otherwise. ``execution`` (``auto``, ``stacked``, ``pool``; see
    ``executor.choose_executor``) picks the executor when none is given; ``workers=0`` always runs
    inline; ``runs_per_gpu`` (on CUDA: ``"auto"`` or a count) is passed to it. ``check_data`` /
    ``check_parts``: load each data set and build each distinct run's parts once before the first
    run (:func:`preflight_data`, :func:`preflight_parts`).
    """
    t0 = time.perf_counter()
    notify = progress or (lambda event, info: None)
    if specs is None:
        specs = plan(study, scale, seeds=seeds, overrides=list(overrides))
    if check_data:
        preflight_data(specs)
    if check_parts:
        preflight_parts(study, specs)
    if executor is None:
        executor = choose_executor(specs, "inline" if workers == 0 else execution, workers, threads, runs_per_gpu)
    env = capture(threads=threads, study_path=study_path)
    device = resolve_device(specs[0].engine.device)[0] if specs else None
    current_fp = {mode: worker_fingerprint(threads, mode, device) for mode in ("single", "stacked")}
    with Store(out) as store, _interrupts(notify) as stop:
        store.reindex()
        done = set() if fresh else store.done_keys()
        invalid = store.invalid()
        if invalid:
            notify("invalid", {"runs": invalid})
        todo, mine = [], []
        for s in specs:
            if s.key in done:
                continue
            if store.claim(s.key):
                if not fresh and store.ended_on_disk(s.key):
                    store.release(s.key)  # another driver finished it since we looked
                    continue
                mine.append(s)
                todo.append(s)
        notify(
            "start",
            {
                "total": len(specs),
                "done": len(specs) - len(todo),
                "todo": len(todo),
                "specs": specs,
                "todo_keys": {s.key for s in mine},
            },
        )
        executed: list[str] = []
        for wave in input_waves(interleaved(mine)):  # a run after the run it reads
            if stop.is_set():
                break
            _execute(executor, store, wave, executed, stop, notify)
        taken = _wait_for_others(
            store, specs, done | set(executed), wait_for_others_s, notify, stop, executor, executed
        )
        store.reindex()
        records = store.records([s.key for s in specs])
        invalid = {**invalid, **store.invalid()}
    by_key = {r["key"]: r for r in records}
    ordered = [by_key[s.key] for s in specs if s.key in by_key]
    reused = [r["key"] for r in ordered if r["key"] not in executed]
    # A reused run is flagged when the environment changed since it ran (versions, CPU, threads...);
    # its execution mode is part of its own fingerprint, so runs are compared like for like.
    mismatch = [
        r["key"]
        for r in ordered
        if r["key"] in reused
        and r.get("env", {}).get("fingerprint")
        not in (None, current_fp.get(r.get("env", {}).get("execution") or "single"))
    ]
    return RunOutcome(
        specs=specs,
        records=ordered,
        executed=executed,
        reused=reused,
        env_mismatch=mismatch,
        wall_s=time.perf_counter() - t0,
        env=env,
        invalid=invalid,
        taken_over=taken,
        interrupted=stop.is_set(),
    )


def interleaved(specs: list[RunSpec]) -> list[RunSpec]:
    """The runs seed by seed (every variant of seed 0, then of seed 1, ...), each seed's in plan
    order: arms a claim compares (BN and ND, baseline and ENorm) then run side by side in time, so
    a drift of the host's speed or load during the study falls on both, not on whichever ran last.
    The order changes no run's numbers (each run's randomness comes from its own seeds)."""
    return sorted(specs, key=lambda s: s.seed_index)  # stable: plan order within a seed


def input_waves(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """``specs`` in waves, each run in a wave after the run it reads (its ``input_run``) when that one
    is among ``specs`` too; order kept within a wave. One wave when no run reads another."""
    pending = {s.key for s in specs}
    waves, left = [], list(specs)
    while left:
        wave = [s for s in left if not s.input_run or s.input_run["key"] not in pending] or left
        keys = {s.key for s in wave}
        waves.append(wave)
        pending -= keys
        left = [s for s in left if s.key not in keys]
    return waves


def preflight_data(specs: list[RunSpec]) -> None:
    """Load each distinct data set once before any run starts, so that missing or corrupt data is
    one clear error (``DataError``) instead of every run failing with it. The study's own module is
    imported first: it may register the data set."""
    from ..data import load_dataset

    for module, folder in sorted({(s.study_module, s.study_dir) for s in specs if s.study_module}, key=str):
        import_study_module(module, folder)
    seen = set()
    for s in specs:
        args = s.settings.part_args("data")
        ident = (s.engine.data, repr(sorted(args.items())))
        if ident not in seen:
            seen.add(ident)
            load_dataset(s.engine.data, **args)


PARTS = ("data", "model", "method", "optimizer", "schedule")


def preflight_parts(study: Study, specs: list[RunSpec]) -> None:
    """Build each distinct run's parts once, on the CPU, before any run starts (model, optimizer,
    schedule, method; the data is loaded by :func:`preflight_data`): a part name or argument its
    factory refuses is one ``StudyError`` naming the experiment, variant and the study file's
    ``file:line`` (or the command-line override) that set it, instead of every run failing."""
    from ..training.build import build_run, load_data

    plugins.load_builtins()
    for module, folder in sorted({(s.study_module, s.study_dir) for s in specs if s.study_module}, key=str):
        import_study_module(module, folder)
    seen: set[str] = set()
    for s in specs:
        ident = s.settings.canonical()
        if ident in seen:
            continue
        seen.add(ident)
        try:
            build_run(s, load_data(s.settings), "cpu")
        except Exception as e:  # noqa: BLE001 - any failure here is the study's, named with its place
            raise _located(study, s, e) from None


def _located(study: Study, spec: RunSpec, e: Exception) -> StudyError:
    """A part that failed to build, as an error that names the setting responsible and where it is
    set: the argument named in the error if any, else the part's name."""
    text = e.message if isinstance(e, RestudyError) else f"{type(e).__name__}: {e}"
    names = list(spec.settings.of_parts(*PARTS))
    named = [k for k in names if "." in k and f"'{k.split('.', 1)[1]}'" in text] or [
        k for k in names if "." in k and k.split(".", 1)[1] in text
    ]
    part = next((p for p in PARTS if p in text.split("'")), None)
    setting = named[0] if named else (part or "model")
    variant = ", ".join(f"{k}={v}" for k, v in spec.variant.items()) or "(no axes)"
    message = f"experiment '{spec.experiment}', variant {variant}: this run cannot be built: {text}"
    where = _where_set(study, spec, setting)
    return StudyError(message, where=where, got={setting: spec.settings.named(setting)})


def _where_set(study: Study, spec: RunSpec, setting: str) -> str:
    """``file:line`` of the place that gave ``setting`` its value in this run (the last one in the
    order settings resolve), or the command-line override."""
    from ..planning.runs import setting_paths
    from ..spec.studyfile import where

    if spec.settings.provenance.get(setting, {}).get("source") == "command-line override":
        return f"command line: {setting}={spec.settings.named(setting)!r}"
    paths = setting_paths(study, spec.experiment, spec.variant, spec.scale, setting)
    return where(study, paths[-1]) if paths else setting


def _execute(
    executor: Executor,
    store: Store,
    batch: list[RunSpec],
    executed: list[str],
    stop: threading.Event,
    notify: Progress,
) -> None:
    """Run ``batch`` (claimed by this driver), index each record as it comes, release the claims."""
    try:
        runs = executor.run(batch, [store.run_dir(s.key) for s in batch], stop=stop)
        try:
            for rec in runs:
                store.put(rec)
                store.release(rec["key"])
                executed.append(rec["key"])
                notify("run", {"record": rec})
        finally:
            close = getattr(runs, "close", None)
            if close is not None:
                close()  # a generator interrupted here stops its workers
    finally:
        for s in batch:
            store.release(s.key)


def _wait_for_others(
    store: Store,
    specs: list[RunSpec],
    have: set[str],
    limit_s: float,
    notify: Progress,
    stop: threading.Event,
    executor: Executor,
    executed: list[str],
) -> list[str]:
    """Runs claimed by another driver on the same directory: wait until they end; take over (and
    run here) those whose driver died, its claims expired. Returns the runs taken over."""
    deadline = time.monotonic() + limit_s
    taken_over: list[str] = []
    by_key = {s.key: s for s in specs}
    while not stop.is_set():
        statuses = store.statuses()
        store.reindex()
        have = have | set(executed)
        open_ = [s.key for s in specs if s.key not in have and statuses.get(s.key) not in DONE_STATUSES]
        taken = store.claim_pending(open_)
        if taken:
            notify("takeover", {"keys": taken})
            taken_over += taken
            _execute(executor, store, [by_key[k] for k in taken], executed, stop, notify)
            continue
        waiting = [k for k in open_ if store.claimed_elsewhere(k)]
        if not waiting or time.monotonic() > deadline:
            break
        notify("waiting", {"keys": waiting})
        stop.wait(1.0)
    return taken_over


@contextlib.contextmanager
def _interrupts(notify: Progress) -> Iterator[threading.Event]:
    """While running: the first Ctrl-C (SIGINT) sets the yielded event (no more runs are started;
    the started ones finish); the second raises ``KeyboardInterrupt`` (stop now). Only in the main
    thread (elsewhere the event is never set by a signal)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        try:
            notify("interrupt", {})
        except Exception:  # noqa: BLE001 - printing must not turn a Ctrl-C into a crash
            pass

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
