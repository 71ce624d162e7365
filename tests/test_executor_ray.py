"""The Ray executor: the same study gives the same results as the local pool, bit for bit; a worker
or node that dies is retried; Ctrl-C leaves a store that resumes; without Ray, a clear error.

One local Ray instance (2 CPUs) serves the module; the last test starts its own two-node cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restudy.cli import app
from restudy.errors import RestudyError
from restudy.execution.executor import LocalExecutor
from restudy.execution.runner import run_study
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study
from restudy.storage import artifacts
from restudy.storage.safeio import read_json
from restudy.storage.store import Store

try:
    import ray
except ImportError:  # CI installs the extra: there a missing Ray is a failure, not a skip
    if os.environ.get("CI"):
        raise
    pytest.skip("Ray is not installed (pip install 'restudy[ray]')", allow_module_level=True)

from restudy.execution.ray_executor import RayExecutor, _reachable, import_ray, ray_executor  # noqa: E402

DYING_MODULE = '''"""Models that kill their worker process: always, or on the first attempt only."""
import os
from pathlib import Path

from restudy import registry
from restudy.plugins import register

MARK = Path(__file__).with_name("died-once")


@register("model", "die_always")
def die_always(**kwargs):
    os._exit(3)


@register("model", "die_once")
def die_once(**kwargs):
    if not MARK.exists():
        MARK.write_text("killed")
        os._exit(3)
    return registry.get("model", "fc")(**kwargs)
'''

HELD_MODULE = '''"""A model whose first attempt writes its Ray node's id and holds that node until it is removed."""
import time
from pathlib import Path

import ray

from restudy import registry
from restudy.plugins import register

MARK = Path(__file__).with_name("held-on")


@register("model", "fc_held_once")
def fc_held_once(**kwargs):
    if not MARK.exists():
        MARK.write_text(ray.get_runtime_context().get_node_id())
        time.sleep(120)  # the test removes this node long before: the retry runs on the other
    return registry.get("model", "fc")(**kwargs)
'''


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def study():
    return load_study("enorm")


@pytest.fixture(scope="module")
def specs(study):
    return plan(study, "smoke")[:4]


@pytest.fixture(scope="module")
def pool_results(study, specs, tmp_path_factory):
    """The four runs in the local process pool: the reference."""
    out = tmp_path_factory.mktemp("pool")
    outcome = run_study(study, "smoke", out, specs=specs, executor=LocalExecutor(workers=2))
    return _results(outcome.records)


def _results(records: list[dict]) -> dict[str, tuple]:
    """What must agree bit for bit: status, metrics, the learning curve and the tensors' sha256."""
    return {
        r["key"]: (r["status"], r["metrics"], r.get("step_curve"), r["artifacts"], r["env"]["fingerprint"])
        for r in records
    }


def _text(output: str) -> str:
    """The words of a panel printed by the CLI, without its frame and line breaks."""
    return " ".join(output.replace("│", " ").split())


def test_ray_gives_the_local_pools_results_and_an_interrupted_study_resumes(
    local_ray, study, specs, pool_results, tmp_path: Path
):
    out = tmp_path / "ray"
    stop = threading.Event()
    first = []
    with Store(out) as store:
        for rec in RayExecutor().run(specs, [store.run_dir(s.key) for s in specs], stop=stop):
            first.append(rec)
            stop.set()  # Ctrl-C after the first run: the run in flight finishes, no other starts
    assert 1 <= len(first) < len(specs)
    assert all(r["status"] == "finished" for r in first)
    outcome = run_study(study, "smoke", out, specs=specs, executor=RayExecutor())
    assert sorted(outcome.reused) == sorted(r["key"] for r in first)  # kept, not redone
    assert len(outcome.executed) == len(specs) - len(first)
    assert _results(outcome.records) == pool_results
    assert not outcome.invalid and not outcome.env_mismatch
    with Store(out) as store:  # the store holds what a local run leaves, and it checks out
        assert {r["key"] for r in store.records([s.key for s in specs])} == {s.key for s in specs}
        assert not store.invalid()


def test_stopping_at_once_cancels_the_runs_in_flight_and_writes_nothing_of_them(local_ray, specs, tmp_path: Path):
    executor = RayExecutor()
    runs = executor.run(specs, [artifacts.run_dir(tmp_path, s.key) for s in specs])
    first = next(runs)
    in_flight = {spec.key for task in executor.in_flight.values() for spec, _ in task}
    refs = list(executor.in_flight)
    runs.close()  # what a second Ctrl-C does: the runner closes the executor's generator
    _, still = ray.wait(refs, num_returns=len(refs), timeout=0)
    assert not still  # closing returned once the cancelled tasks had ended: no worker of theirs lives on
    assert in_flight and first["key"] not in in_flight
    written = {p.parent.name for p in artifacts.runs_dir(tmp_path).glob(f"*/{artifacts.RUN_FILE}")}
    assert written == {first["key"]}  # the driver alone writes: a cancelled run leaves nothing


def test_a_killed_task_is_retried_and_a_run_that_always_kills_its_worker_fails(local_ray, specs, tmp_path: Path):
    (tmp_path / "dying_study.py").write_text(DYING_MODULE)
    spec = specs[0]

    def variant(key: str, model: str):
        settings = spec.settings.with_values({"model": model}, "test")
        module = {"study_module": "dying_study", "study_dir": str(tmp_path)}
        return dataclasses.replace(spec, key=key, settings=settings, **module)

    runs = [variant("once", "die_once"), variant("always", "die_always"), variant("bad", "nope")]
    out = tmp_path / "out"
    records = {r["key"]: r for r in RayExecutor(retries=1).run(runs, [artifacts.run_dir(out, s.key) for s in runs])}
    assert (tmp_path / "died-once").exists()  # the first attempt was killed...
    assert records["once"]["status"] == "finished", records["once"].get("reason")  # ...and the retry finished it
    assert read_json(artifacts.run_dir(out, "once") / artifacts.RUN_FILE) == records["once"]
    assert records["always"]["status"] == "failed"
    assert "worker or its node died" in records["always"]["reason"] and "1 retries" in records["always"]["reason"]
    # A run that fails by itself is not retried: its own error is the record's.
    assert records["bad"]["status"] == "failed" and "unknown model 'nope'" in records["bad"]["reason"]


def test_a_stack_of_seeds_is_one_task_with_the_results_of_a_local_stack(local_ray, tmp_path: Path):
    from restudy.execution.stacked import execute_stack, group_specs, stackable

    specs = plan(load_study("nondeterminism"), "smoke")
    group = next(g for g in group_specs(specs) if len(g) >= 4 and stackable(specs[g[0]]))
    members = [specs[i] for i in group[:4]]
    local = execute_stack(
        [s.to_dict() for s in members], [str(artifacts.run_dir(tmp_path / "local", s.key)) for s in members]
    )
    executor = RayExecutor(stack=True)
    records = list(executor.run(members, [artifacts.run_dir(tmp_path / "ray", s.key) for s in members]))
    assert {(r["env"]["execution"], r["env"]["stack_size"]) for r in records} == {("stacked", 4)}
    assert _results(records) == _results(local)


def test_restudy_run_on_ray_end_to_end(local_ray, tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", "enorm", "--scale", "smoke", "--seeds", "1", "--executor", "ray", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    with Store(out) as store:
        statuses = store.statuses()
    assert len(statuses) == 12 and set(statuses.values()) == {"finished"}
    assert (out / "report.md").is_file()


def test_plan_counts_the_slots_of_the_cluster_it_would_run_on(local_ray, tmp_path):
    from restudy.execution.ray_executor import cluster_slots

    assert cluster_slots(None, threads=1) == 2 and cluster_slots(None, threads=2) == 1
    assert ray.is_initialized()  # a cluster this process had joined stays joined
    out = tmp_path / "out"
    args = ["plan", "enorm", "--scale", "smoke", "--executor", "ray", "--json", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["workers"] == 2


def test_without_ray_a_clear_error_and_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    with pytest.raises(RestudyError, match=r"pip install 'restudy\[ray\]'"):
        import_ray()
    args = ["run", "enorm", "--scale", "smoke", "--executor", "ray", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "pip install 'restudy[ray]'" in _text(result.output)
    assert not (tmp_path / "o").exists()


def test_restudy_imports_no_ray():
    code = (
        "import sys, restudy.execution.ray_executor, restudy.execution.runner, restudy.cli; print('ray' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


def test_bad_options_are_refused(specs):
    with pytest.raises(RestudyError, match="retries"):
        RayExecutor(retries=-1)
    with pytest.raises(RestudyError, match="unknown execution mode"):
        ray_executor(specs, "inline")
    assert ray_executor(specs, "pool").stack is False and ray_executor(specs, "stacked").stack is True
    assert "nothing answers at 127.0.0.1:1" in _reachable("ray://127.0.0.1:1")  # not minutes of Ray's retries
    assert _reachable("auto") is None  # Ray resolves it (and says so when no cluster runs here)
    result = CliRunner().invoke(app, ["run", "enorm", "--scale", "smoke", "--retries", "2"])
    assert result.exit_code == 2 and "--executor ray only" in _text(result.output)


def test_a_node_removed_mid_study_its_runs_finish_on_the_other(specs, pool_results, tmp_path: Path):
    """Two simulated worker nodes of one CPU each (the head runs no task). One run's first attempt
    holds its node and says which node that is; once another run has finished, that node is removed:
    the held run is retried on the node left, and all results equal the local pool's bit for bit."""
    from ray.cluster_utils import Cluster

    (tmp_path / "held_study.py").write_text(HELD_MODULE)
    held_key = specs[1].key
    runs = [
        dataclasses.replace(
            s,
            settings=s.settings.with_values({"model": "fc_held_once"}, "test"),
            study_module="held_study",
            study_dir=str(tmp_path),
        )
        if s.key == held_key
        else s
        for s in specs
    ]
    mark = tmp_path / "held-on"
    ray.shutdown()  # the module's local instance: this test joins its own cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        nodes = {n.node_id: n for n in (cluster.add_node(num_cpus=1), cluster.add_node(num_cpus=1))}
        cluster.wait_for_nodes()
        executor = RayExecutor(address=cluster.address, retries=2)
        records, removed = [], None
        with Store(tmp_path / "out") as store:
            for rec in executor.run(runs, [store.run_dir(s.key) for s in runs]):
                records.append(rec)
                if removed is None:  # a run other than the held one has finished: remove the held one's node
                    assert rec["key"] != held_key
                    removed = _wait_for_text(mark)
                    cluster.remove_node(nodes[removed])
        (kept,) = set(nodes) - {removed}
        assert {r["status"] for r in records} == {"finished"} and len(records) == len(specs)
        assert executor.nodes[held_key] == kept  # retried on the node left
        assert _results(records) == pool_results
        assert ray.cluster_resources().get("CPU") == 1
    finally:
        ray.shutdown()
        cluster.shutdown()


def _wait_for_text(path: Path, timeout_s: float = 60.0) -> str:
    """The text of a file another process writes, once it is there."""
    deadline = time.monotonic() + timeout_s
    while not (path.is_file() and path.read_text()):
        assert time.monotonic() < deadline, f"{path.name} was not written in {timeout_s:.0f} s"
        time.sleep(0.05)
    return path.read_text()
