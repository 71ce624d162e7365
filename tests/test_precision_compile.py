"""Settings ``precision`` and ``compile``: a mixed-precision run finishes and records its setting;
a compiled model is compiled once per structure and reused by the next seed's run."""

from __future__ import annotations

import pytest
import torch

from restudy.execution.stacked import structural_reason
from restudy.execution.worker import execute
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.training import devices
from restudy.training.devices import amp_for, compiled_forward


@pytest.fixture(scope="module")
def enorm():
    return load_study("enorm")


def _specs(study, *overrides: str):
    specs = plan(study, "smoke", overrides=parse_overrides(["epochs=1", *overrides]))
    first = specs[0]
    return [s for s in specs if s.experiment == first.experiment and s.variant == first.variant]


def test_bf16_run_finishes_and_records_its_precision(tmp_path, enorm):
    spec = _specs(enorm, "precision=bf16")[0]
    rec = execute(spec.to_dict(), str(tmp_path), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    assert rec["spec"]["settings"]["precision"] == "bf16"
    assert 0 <= rec["metrics"]["test_acc"] <= 100


def test_fp16_uses_a_grad_scaler_and_fp32_no_wrapper():
    assert amp_for("fp32", "cpu") is None
    amp = amp_for("fp16", "cpu")
    assert amp.dtype == torch.float16 and amp.scaler is not None
    assert amp_for("bf16", "cuda").device_type == "cuda"


def test_mixed_precision_and_compiled_runs_are_not_stacked(enorm):
    assert "precision" in structural_reason(_specs(enorm, "precision=bf16")[0])
    assert "compile" in structural_reason(_specs(enorm, "compile=default")[0])


def test_precision_changes_the_run_key(enorm):
    assert _specs(enorm)[0].key != _specs(enorm, "precision=bf16")[0].key


@pytest.mark.skipif(devices.compiler_problem() is not None, reason=str(devices.compiler_problem()))
def test_compile_once_per_structure_reused_across_runs(tmp_path, enorm):
    import torch._dynamo.utils as dynamo_utils

    a, b = _specs(enorm, "compile=default")[:2]
    before = dict(devices.COMPILE_STATS)
    ra = execute(a.to_dict(), str(tmp_path / "a"), threads=1)
    graphs = dynamo_utils.counters["stats"]["unique_graphs"]
    rb = execute(b.to_dict(), str(tmp_path / "b"), threads=1)
    assert ra["status"] == rb["status"] == "finished", (ra["reason"], rb["reason"])
    assert devices.COMPILE_STATS["compiled"] - before["compiled"] == 1
    assert devices.COMPILE_STATS["reused"] - before["reused"] == 1
    assert dynamo_utils.counters["stats"]["unique_graphs"] == graphs  # the second seed compiled nothing
    assert ra["metrics"]["test_acc"] != rb["metrics"]["test_acc"] or ra["curves"] != rb["curves"]


def test_compile_off_is_the_model_itself():
    model = torch.nn.Linear(3, 2)
    assert compiled_forward(model, "off") is model
