"""Device choice, GPU arithmetic flags and the runs-per-GPU decision, all checkable on a CPU."""

from __future__ import annotations

import os

import pytest
import torch

from restudy.errors import RestudyError
from restudy.execution.executor import check_runs_per_gpu, gpu_plan, visible_gpus
from restudy.execution.worker import execute
from restudy.planning.runs import plan
from restudy.planning.seeding import apply_determinism
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.env import RUNS_PER_GPU_ENV
from restudy.training import devices
from restudy.training.devices import resolve_device, slots_per_gpu

GIB = 2**30
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


@pytest.fixture(scope="module")
def enorm():
    return load_study("enorm")


def _spec(study, *overrides: str):
    return plan(study, "smoke", overrides=parse_overrides(["epochs=1", *overrides]))[0]


@no_cuda
def test_explicit_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RestudyError) as e:
        resolve_device("cuda")
    text = str(e.value)
    assert text.startswith("device: CUDA is not available") and "got: 'cuda'" in text
    assert torch.__version__ in text  # what torch reports
    assert "auto" in text  # what to set instead


@no_cuda
def test_auto_without_cuda_falls_back_to_cpu_with_a_notice():
    device, notice = resolve_device("auto")
    assert device == "cpu"
    assert notice.startswith("device auto: no CUDA") and "\n" not in notice
    assert resolve_device("cpu") == ("cpu", None)


def test_unknown_device_names_the_allowed_values():
    with pytest.raises(RestudyError, match="auto, cpu, cuda"):
        resolve_device("tpu")


@no_cuda
def test_a_run_on_auto_records_the_cpu_and_the_notice(tmp_path, enorm):
    rec = execute(_spec(enorm).to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished"
    assert rec["env"]["device"] == "cpu"
    assert rec["env"]["device_notice"].startswith("device auto: no CUDA")
    assert rec["env"]["gpu_flags"] == {
        "tf32_matmul": False,
        "tf32_cudnn": False,
        "float32_matmul_precision": "highest",
    }


@no_cuda
def test_a_run_on_cuda_without_cuda_fails_with_the_message(tmp_path, enorm):
    rec = execute(_spec(enorm, "device=cuda").to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "failed"
    assert "CUDA is not available" in rec["reason"]


@no_cuda
def test_the_driver_refuses_cuda_runs_before_any_starts(enorm):
    with pytest.raises(RestudyError, match="CUDA is not available"):
        gpu_plan([_spec(enorm, "device=cuda")], "auto", threads=1, cpus=2)
    assert gpu_plan([_spec(enorm)], "auto", threads=1, cpus=2) is None  # auto on a CPU: no GPU plan


def test_tf32_flags_are_set_explicitly_both_ways():
    try:
        on = devices.apply_tf32(True)
        assert on == {"tf32_matmul": True, "tf32_cudnn": True, "float32_matmul_precision": "high"}
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        off = devices.apply_tf32(False)
    assert off["float32_matmul_precision"] == "highest" and not torch.backends.cudnn.allow_tf32


def test_cublas_workspace_is_set_for_deterministic_kernels_only(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        flags = apply_determinism("nondeterministic", 1)
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ and flags["cudnn_benchmark"] is True
        flags = apply_determinism("deterministic", 1)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert flags["cublas_workspace_config"] == ":4096:8" and flags["cudnn_deterministic"] is True
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's value is kept
        assert apply_determinism("deterministic", 1)["cublas_workspace_config"] == ":16:8"
    finally:
        apply_determinism("deterministic", 1)


# --------------------------------------------------------------------------- runs per GPU


def test_slots_follow_memory_when_memory_is_short():
    slots, why = slots_per_gpu(int(3.4 * GIB), 16 * GIB, cpus_per_gpu=16, context_bytes=int(0.6 * GIB))
    assert slots == 3  # 16 * 0.85 / 4.0 = 3.4
    assert "limited by memory" in why and "4.00 GiB" in why


def test_slots_are_capped_by_cores_cap_and_runs():
    small, free = 200 * 2**20, 130 * GIB
    assert slots_per_gpu(small, free, cpus_per_gpu=3)[0] == 3
    assert slots_per_gpu(small, free, cpus_per_gpu=64)[0] == devices.MAX_RUNS_PER_GPU
    assert slots_per_gpu(small, free, cpus_per_gpu=64, cap=20)[0] == 20
    assert slots_per_gpu(small, free, cpus_per_gpu=64, runs=2)[0] == 2


def test_one_slot_even_when_one_run_does_not_fit():
    slots, why = slots_per_gpu(40 * GIB, 10 * GIB, cpus_per_gpu=8)
    assert slots == 1 and "memory" in why


def test_bad_memory_figures_are_refused():
    with pytest.raises(RestudyError):
        slots_per_gpu(0, GIB, cpus_per_gpu=1)


def test_runs_per_gpu_values():
    assert check_runs_per_gpu("auto") == "auto"
    assert check_runs_per_gpu("3") == 3 and check_runs_per_gpu(2) == 2
    for bad in ("0", "many", -1, 1.5, True):
        with pytest.raises(RestudyError, match="auto or a whole number"):
            check_runs_per_gpu(bad)


def test_gpus_come_from_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus(2) == ("2", "5")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus(3) == ("0", "1", "2")


def test_workers_are_pinned_round_robin(monkeypatch):
    import multiprocessing as mp

    from restudy.execution import executor

    counter = mp.get_context("spawn").Value("i", 0)
    seen = []
    monkeypatch.setattr(executor.signal, "signal", lambda *a: None)
    for _ in range(5):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        executor._init_worker(1, None, ("0", "1"), counter)
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["0", "1", "0", "1", "0"]


def test_env_records_the_device_and_no_gpu_facts_without_cuda():
    from restudy.storage.env import capture

    env = capture(threads=1, with_packages=False, device="cpu", gpu_flags=devices.apply_tf32(False))
    assert env["device"] == "cpu" and env["gpu_flags"]["tf32_matmul"] is False
    if not torch.cuda.is_available():
        assert env["gpu"] is None and "driver" not in env


def test_the_gpu_probe_measures_each_model_once(monkeypatch, enorm):
    """The probe's own code path on the CPU, with the CUDA memory calls replaced by fakes."""
    from restudy.execution import executor

    calls = {"reset": 0}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (10 * GIB, 16 * GIB))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: 3 * GIB)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: calls.__setitem__("reset", calls["reset"] + 1))
    a, b = _spec(enorm), _spec(enorm, "precision=bf16")
    m = executor._probe([a.to_dict(), b.to_dict()], threads=1)
    assert calls["reset"] == 2
    assert m["peak_bytes"] == 3 * GIB and m["free_bytes"] == 10 * GIB and m["step_s"] > 0


@no_cuda
def test_restudy_run_with_device_cuda_stops_before_any_run(tmp_path):
    from typer.testing import CliRunner

    from restudy.cli import app

    out = tmp_path / "out"
    r = CliRunner().invoke(
        app, ["run", "enorm", "--scale", "smoke", "--out", str(out), "device=cuda"], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 2, r.output
    assert "CUDA is not available" in r.output and "device" in r.output
    assert not list(out.glob("runs/*/run.json"))  # nothing ran


def test_restudy_run_refuses_a_bad_runs_per_gpu(tmp_path):
    from typer.testing import CliRunner

    from restudy.cli import app

    r = CliRunner().invoke(app, ["run", "enorm", "--scale", "smoke", "--out", str(tmp_path), "--runs-per-gpu", "0"])
    assert r.exit_code == 2 and "auto or a whole number" in r.output


def test_on_cuda_the_pool_has_runs_per_gpu_times_gpus_workers(monkeypatch, enorm):
    from restudy.execution import executor

    monkeypatch.setattr(executor, "gpu_plan", lambda specs, per_gpu, threads, cpus: (("0", "1"), 3, "why"))
    monkeypatch.delenv(RUNS_PER_GPU_ENV, raising=False)
    ex = executor.LocalExecutor()
    ex._plan_gpus([_spec(enorm)])
    assert ex.workers == 6 and ex.gpus == ("0", "1") and ex.gpu_note == "why"
    assert os.environ[RUNS_PER_GPU_ENV] == "3 (why)"  # what each run records
    given = executor.LocalExecutor(workers=2)
    given._plan_gpus([_spec(enorm)])
    assert given.workers == 2  # --workers wins
    monkeypatch.delenv(RUNS_PER_GPU_ENV)
