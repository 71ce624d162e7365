"""The Ray executor: each run (or stack of seeds) is one Ray task; its files come back to the driver.

A task runs the same worker code as the local pool (``worker.execute``, or ``stacked.execute_stack``
for a stack) in a temporary folder on whichever node Ray picks, then returns that folder's files
(``run.json`` and the tensors it lists) as bytes with their sha256. The driver checks them (the
hashes, the record schema, the artifacts the record lists) and writes them into the run's folder, so
that the store holds exactly what a local run leaves: workers need no shared file system, and only
the driver writes the store (no SQLite index on NFS).

Failures: a worker process or node that dies is a *system* failure; Ray re-runs the task up to
``retries`` times (``max_retries``), after which the run is a ``failed`` record naming the error.
A run that fails by itself (an exception in the run) is never retried: the worker already returns
it as a ``failed`` record, as in the local pool. Ctrl-C (the runner's stop flag): no new task is
submitted and the ones in flight finish; closing the generator (a second Ctrl-C) cancels them.
Only ``capacity`` tasks are in flight at a time (the cluster's CPUs / ``threads``, or its GPUs /
``gpus_per_run``), so that "not started" is well defined and a resumed study redoes nothing.

Ray is optional: this module imports it only when a study runs on it (:func:`import_ray`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import RestudyError
from ..planning.runs import RunSpec
from ..storage import artifacts
from ..storage.record import validate
from ..storage.safeio import atomic_write_bytes
from .executor import EXECUTION_MODES, POLL_S, StackedExecutor, Task, any_stackable, failed_record

INSTALL_HINT = "pip install 'restudy[ray]'"
CANCEL_WAIT_S = 10.0  # how long closing waits for force-cancelled tasks to end
# Ray's own default for tasks: a node lost once (preempted, rebooted) costs one retry; a run that
# kills its worker every time (e.g. a crash in native code) is given up after 4 attempts, not looped on.
DEFAULT_RETRIES = 3


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        RestudyError: Ray is not installed (names the command that installs it).
    """
    try:
        import ray
    except ImportError as e:
        raise RestudyError(
            f"the Ray executor needs Ray, which is not installed: {INSTALL_HINT}",
            where="--executor ray",
            got=str(e),
        ) from None
    return ray


def ray_executor(
    specs: Sequence[RunSpec],
    execution: str = "auto",
    *,
    threads: int = 1,
    address: str | None = None,
    retries: int = DEFAULT_RETRIES,
    gpus_per_run: float | None = None,
) -> RayExecutor:
    """The Ray executor for ``specs``: stacks seeds as ``executor.choose_executor`` would
    (``stacked``; ``auto`` when some group of seeds is stackable and large enough; ``pool``: never).

    Raises:
        RestudyError: an unknown execution mode, or a negative ``retries`` or ``gpus_per_run``.
    """
    allowed = tuple(m for m in EXECUTION_MODES if m != "inline")
    if execution not in allowed:
        raise RestudyError("unknown execution mode", where="--execution", got=execution, allowed=allowed)
    stack = execution == "stacked" or (execution == "auto" and any_stackable(specs))
    return RayExecutor(address, retries=retries, threads=threads, stack=stack, gpus_per_run=gpus_per_run)


class RayExecutor(StackedExecutor):
    """Runs on a Ray cluster (``address``: ``"auto"``, ``"ray://host:10001"``, ``host:6379``; None
    starts a local Ray instance on this machine's cores, or uses the one this process joined).

    Args:
        address: the cluster to join, if this process has not joined one already.
        retries: how often Ray re-runs a task whose worker or node died.
        threads: intra-op threads per run; each task asks Ray for that many CPUs.
        stack: train the seeds of tiny models as stacks, one task each (``StackedExecutor.tasks``).
        gpus_per_run: GPUs each task asks for (a fraction shares a GPU between small runs). None:
            one when some run may use CUDA (``device`` ``cuda`` or ``auto``) and the cluster has
            GPUs, else 0.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        retries: int = DEFAULT_RETRIES,
        threads: int = 1,
        stack: bool = False,
        gpus_per_run: float | None = None,
        max_stack: int = 32,
    ) -> None:
        super().__init__(max_stack=max_stack, workers=1, threads=threads)
        if retries < 0:
            raise RestudyError("retries must be 0 or more", where="--retries", got=retries)
        if gpus_per_run is not None and gpus_per_run < 0:
            raise RestudyError("GPUs per run must be 0 or more", where="--gpus-per-run", got=gpus_per_run)
        self.address = address
        self.retries = retries
        self.stack = stack
        self.gpus_per_run = gpus_per_run
        self.nodes: dict[str, str] = {}  # run key -> the Ray node that produced the accepted result
        self.in_flight: dict[Any, Task] = {}  # the tasks submitted and not yet collected

    def tasks(self, pending: Sequence[tuple[RunSpec, Path]]) -> list[Task]:
        return super().tasks(pending) if self.stack else [[m] for m in pending]

    def run(
        self, specs: Sequence[RunSpec], run_dirs: Sequence[Path], stop: threading.Event | None = None
    ) -> Iterator[dict]:
        if not specs:
            return
        ray = import_ray()
        connect(ray, self.address)
        stop = stop or threading.Event()
        gpus = self._gpus(ray, specs)
        self.workers = self._capacity(ray, gpus)  # the stacks are cut to keep every CPU busy
        remote = ray.remote(_run_task).options(
            num_cpus=self.threads,
            num_gpus=gpus,
            max_retries=self.retries,
            retry_exceptions=False,
        )
        env = _task_env(self.threads, specs[0].kernels)
        queue = deque(self.tasks(list(zip(specs, run_dirs))))
        running = self.in_flight = {}
        try:
            while running or (queue and not stop.is_set()):
                capacity = self._capacity(ray, gpus)
                while queue and not stop.is_set() and len(running) < capacity:
                    task = queue.popleft()
                    running[remote.remote([spec.to_dict() for spec, _ in task], self.threads, env)] = task
                done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in done:
                    yield from self._collect(ray, ref, running.pop(ref), stop)
        finally:
            if running:  # interrupted (a second Ctrl-C) or closed: stop the tasks now
                for ref in running:
                    ray.cancel(ref, force=True)
                # and return once they have stopped, so that no worker of them outlives this call
                ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)

    def _collect(self, ray: Any, ref: Any, task: Task, stop: threading.Event) -> Iterator[dict]:
        """The records of one finished task, its files written into the runs' folders."""
        try:
            node, payloads = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return  # not run
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as e:
            if stop.is_set():
                return
            why = f"the Ray worker or its node died during this run ({self.retries} retries used): {_first_line(e)}"
            yield from (failed_record(spec, why) for spec, _ in task)
            return
        except ray.exceptions.RayError as e:  # e.g. killed by Ray's memory monitor, or the task could not start
            yield from (failed_record(spec, f"{type(e).__name__}: {_first_line(e)}") for spec, _ in task)
            return
        for (spec, run_dir), payload in zip(task, payloads):
            record = accept(payload, spec, run_dir)
            self.nodes[spec.key] = node
            yield record

    def _gpus(self, ray: Any, specs: Sequence[RunSpec]) -> float:
        if self.gpus_per_run is not None:
            return float(self.gpus_per_run)
        may_use_cuda = any(s.engine.device != "cpu" for s in specs)
        return 1.0 if may_use_cuda and ray.cluster_resources().get("GPU", 0) > 0 else 0.0

    def _capacity(self, ray: Any, gpus: float) -> int:
        """How many tasks the cluster runs at once now (nodes may join or leave)."""
        res = ray.cluster_resources()
        n = int(res.get("CPU", 0) // self.threads)
        if gpus > 0:
            n = min(n, int(res.get("GPU", 0) // gpus))
        return max(1, n)


def cluster_slots(address: str | None, threads: int = 1) -> int:
    """How many runs of ``threads`` CPUs the Ray cluster at ``address`` runs at once (its CPUs
    over ``threads``), as `restudy plan --executor ray` schedules them; joins the cluster for the
    question only (a cluster this process had already joined stays joined).

    Raises:
        RestudyError: Ray is not installed, or no cluster answers at ``address``.
    """
    ray = import_ray()
    joined = ray.is_initialized()
    connect(ray, address)
    try:
        return max(1, int(ray.cluster_resources().get("CPU", 0) // max(1, threads)))
    finally:
        if not joined:
            ray.shutdown()


def connect(ray: Any, address: str | None) -> None:
    """Join the cluster at ``address`` unless this process has joined one (None: a local one).

    Raises:
        RestudyError: no cluster answers at ``address``.
    """
    if ray.is_initialized():
        return
    hint = "start one with `ray start --head` (and `ray start --address HEAD:6379` on the other machines)"
    reachable = _reachable(address)
    if reachable is not None:
        raise RestudyError(f"cannot join the Ray cluster: {reachable}; {hint}", where="--address", got=address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RestudyError(
            f"cannot join the Ray cluster: {_first_line(e)}; {hint}", where="--address", got=address
        ) from None


def _reachable(address: str | None, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers at ``host:port`` (or ``ray://host:port``), or None (answers, or an
    address Ray resolves itself: None, ``auto``, ``local``). Ray itself retries an unanswered
    address for minutes; this fails in seconds."""
    if not address or address in ("auto", "local"):
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return None  # not host:port: Ray's own error says what it accepts
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        return f"nothing answers at {host}:{port} ({e.strerror or e})"
    return None


def _task_env(threads: int, kernels: str) -> dict[str, str]:
    """The environment a task sets before it imports torch (as ``seeding.prepare_process_env`` sets
    it for the local pool: thread counts, and cuBLAS's workspace for deterministic kernels). A Ray
    worker process serves one driver and imports torch in its first task, so this takes effect;
    setting it here rather than as a Ray ``runtime_env`` lets the tasks use the workers Ray has
    already started, which Ray does not for a ``runtime_env`` (benchmarks/bench_ray.py, 24 smoke
    runs: 0.93x of the pool's wall time with a ``runtime_env``, 0.81x without)."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if kernels == "deterministic":
        env["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return env


def _run_task(spec_dicts: list[dict[str, Any]], threads: int, env: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """A Ray task: the runs (one, or a stack) in a temporary folder; returns this node's id and,
    per run, its files as bytes with their sha256."""
    os.environ.update(env)
    import ray

    node = ray.get_runtime_context().get_node_id()
    with tempfile.TemporaryDirectory(prefix="restudy-task-") as tmp:
        dirs = [Path(tmp) / str(i) for i in range(len(spec_dicts))]
        for d in dirs:
            d.mkdir()
        if len(spec_dicts) == 1:
            from .worker import execute

            execute(spec_dicts[0], str(dirs[0]), threads)
        else:
            from .stacked import execute_stack

            execute_stack(spec_dicts, [str(d) for d in dirs], threads)
        return node, [_pack(d) for d in dirs]


def _pack(folder: Path) -> dict[str, Any]:
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}
    return {"files": files, "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}


def accept(payload: dict[str, Any], spec: RunSpec, run_dir: Path) -> dict[str, Any]:
    """Write a run's files, returned by a task, into ``run_dir``; return its record.

    The files must arrive whole (each one's sha256 as sent), ``run.json`` must pass the record
    schema for this run, and every artifact it lists must be among the files with its recorded
    sha256. The artifacts are written first and ``run.json`` last (atomically each), so that a
    driver killed in between leaves a run that is not done. Anything else is a ``failed`` record
    saying what was wrong (not written: the run is redone on resume).
    """
    try:
        files, sums = payload["files"], payload["sha256"]
        for name, data in files.items():
            if Path(name).name != name or name.startswith("."):
                raise ValueError(f"a returned file has a name that is not a plain file name: {name!r}")
            if hashlib.sha256(data).hexdigest() != sums.get(name):
                raise ValueError(f"{name} arrived damaged (its sha256 differs from the one sent)")
        if artifacts.RUN_FILE not in files:
            raise ValueError(f"the task returned no {artifacts.RUN_FILE}")
        record = json.loads(files[artifacts.RUN_FILE])
        validate(record, spec.key, where=f"{artifacts.RUN_FILE} returned by the task of run {spec.key}")
        for name, info in record.get("artifacts", {}).items():
            if sums.get(name) != info["sha256"]:
                raise ValueError(f"{name}, listed in the run's record, was not returned with its recorded sha256")
    except (RestudyError, ValueError, KeyError, TypeError, AttributeError) as e:
        return failed_record(spec, f"the result returned by Ray was refused: {e}")
    for name, data in files.items():
        if name != artifacts.RUN_FILE:
            atomic_write_bytes(run_dir / name, data)
    atomic_write_bytes(run_dir / artifacts.RUN_FILE, files[artifacts.RUN_FILE])
    return record


def _first_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    text = str(cause if isinstance(cause, BaseException) else e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
