"""The driver: plan (once) → check the data → skip finished runs → execute the rest → index records.

``run_study`` resumes by default: runs that ended (finished or diverged) are never redone unless
``fresh``; failed runs are retried. Progress is reported through a callback so that the CLI can
render it and tests can observe it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import capture, fingerprint
from .executor import Executor, choose_executor
from .plan import RunSpec, plan
from .record import DONE_STATUSES
from .registry import import_study_module
from .settings import part_args
from .store import Store
from .study import Study

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


def worker_fingerprint(threads: int, execution: str | None = "single") -> str:
    """Fingerprint of the environment a worker of this process would record (for runs executed
    one by one, or stacked)."""
    env = capture(threads=threads, with_packages=False, execution=execution)
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
    execution: str = "auto",
    specs: list[RunSpec] | None = None,
) -> RunOutcome:
    """Run every planned run of ``study`` at ``scale`` that has not ended yet; return all records.

    ``specs``: the plan, when the caller made it already (``plan(study, scale, seeds=...,
    overrides=...)``); planned here otherwise. ``execution`` (``auto``, ``stacked``, ``pool``; see
    ``executor.choose_executor``) picks the executor when none is given; ``workers=0`` always runs
    inline.
    """
    t0 = time.perf_counter()
    notify = progress or (lambda event, info: None)
    if specs is None:
        specs = plan(study, scale, seeds=seeds, overrides=list(overrides))
    if check_data:
        preflight_data(specs)
    if executor is None:
        executor = choose_executor(specs, "inline" if workers == 0 else execution, workers, threads)
    env = capture(threads=threads, study_path=study_path)
    current_fp = {mode: worker_fingerprint(threads, mode) for mode in ("single", "stacked")}
    with Store(out) as store:
        store.reindex()
        done = set() if fresh else store.done_keys()
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
        executed = []
        try:
            for rec in executor.run(mine, [store.run_dir(s.key) for s in mine]):
                store.put(rec)
                store.release(rec["key"])
                executed.append(rec["key"])
                notify("run", {"record": rec})
        finally:
            for s in mine:
                store.release(s.key)
        _wait_for_others(store, specs, done | set(executed), wait_for_others_s, notify)
        store.reindex()
        records = store.records([s.key for s in specs])
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
    )


def preflight_data(specs: list[RunSpec]) -> None:
    """Load each distinct data set once before any run starts, so that missing or corrupt data is
    one clear error (``DataError``) instead of every run failing with it. The study's own module is
    imported first: it may register the data set."""
    from .data import load_dataset

    for module, folder in sorted({(s.study_module, s.study_dir) for s in specs if s.study_module}, key=str):
        import_study_module(module, folder)
    seen = set()
    for s in specs:
        args = part_args(s.settings, "data")
        ident = (s.engine.data, repr(sorted(args.items())))
        if ident not in seen:
            seen.add(ident)
            load_dataset(s.engine.data, **args)


def _wait_for_others(store: Store, specs: list[RunSpec], have: set[str], limit_s: float, notify: Progress) -> None:
    """Runs claimed by another live driver on the same directory: wait until they end."""
    deadline = time.monotonic() + limit_s
    while True:
        statuses = store.statuses()
        store.reindex()
        waiting = [
            s.key
            for s in specs
            if s.key not in have and statuses.get(s.key) not in DONE_STATUSES and store.claimed_elsewhere(s.key)
        ]
        if not waiting or time.monotonic() > deadline:
            return
        notify("waiting", {"keys": waiting})
        time.sleep(1.0)
