"""The worker and the shared training loop: determinism, divergence, failures, what a run records."""

from __future__ import annotations

import json

import pytest
import torch

from restudy.execution.executor import InlineExecutor
from restudy.execution.runner import run_study
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.safeio import load_tensors


@pytest.fixture(scope="module")
def smoke_specs():
    return plan(load_study("enorm"), "smoke")


def _one(specs, experiment="fc", method="enorm", depth="9", seed_index=0):
    return next(
        s
        for s in specs
        if s.experiment == experiment and s.variant == {"method": method, "depth": depth} and s.seed_index == seed_index
    )


def test_same_spec_twice_is_bit_identical(tmp_path, smoke_specs):
    spec = _one(smoke_specs)
    a = execute(spec.to_dict(), str(tmp_path / "a"), threads=1)
    b = execute(spec.to_dict(), str(tmp_path / "b"), threads=1)
    assert a["status"] == b["status"] == "finished"
    assert a["curves"] == [
        {**row, "train_s": a["curves"][i]["train_s"], "eval_s": a["curves"][i]["eval_s"]}
        for i, row in enumerate(b["curves"])
    ]
    la, lb = load_tensors(tmp_path / "a" / LOGITS_FILE), load_tensors(tmp_path / "b" / LOGITS_FILE)
    assert torch.equal(la["logits"], lb["logits"])
    assert a["artifacts"][LOGITS_FILE]["sha256"] == b["artifacts"][LOGITS_FILE]["sha256"]


def test_different_seed_index_gives_different_results(tmp_path, smoke_specs):
    a = execute(_one(smoke_specs, seed_index=0).to_dict(), str(tmp_path / "a"), threads=1)
    b = execute(_one(smoke_specs, seed_index=1).to_dict(), str(tmp_path / "b"), threads=1)
    assert a["artifacts"][LOGITS_FILE]["sha256"] != b["artifacts"][LOGITS_FILE]["sha256"]


def test_run_records_environment_flags_and_separate_splits(tmp_path, smoke_specs):
    rec = execute(_one(smoke_specs).to_dict(), str(tmp_path), threads=1)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["key"] == rec["key"]
    env = rec["env"]
    assert env["threads"] == 1 and env["memory_format"] == "contiguous"
    assert env["determinism"]["deterministic_algorithms"] is True
    assert env["torch"] == torch.__version__ and env["fingerprint"]
    for row in rec["curves"]:
        assert {"train_acc", "train_loss", "test_acc", "test_loss"} <= set(row)
    assert rec["metrics"]["n_test"] == 200 and rec["metrics"]["n_train"] == 400
    logits = load_tensors(tmp_path / LOGITS_FILE)
    assert logits["logits"].shape == (200, 4) and logits["index"].shape == (200,)


def test_training_lowers_the_loss(tmp_path, smoke_specs):
    spec = plan(load_study("enorm"), "smoke", overrides=parse_overrides(["epochs=8"]))
    rec = execute(_one(spec, method="baseline", depth="1").to_dict(), str(tmp_path), threads=1)
    curves = rec["curves"]
    assert curves[-1]["train_loss"] < curves[0]["train_loss"]
    assert rec["metrics"]["test_acc"] > 100 / 4 + 10  # well above chance on 4 classes


def test_nan_loss_marks_the_run_diverged_and_the_study_goes_on(tmp_path):
    st = load_study("enorm")
    ov = parse_overrides(["fc:optimizer.lr=1e6"])
    out = run_study(st, "smoke", tmp_path, overrides=ov, executor=InlineExecutor(1))
    by_exp = {}
    for r in out.records:
        by_exp.setdefault(r["spec"]["experiment"], []).append(r["status"])
    assert "diverged" in by_exp["fc"]
    assert all(s == "finished" for s in by_exp["fc_bias"])  # the other experiment is untouched
    assert len(out.records) == len(out.specs)
    div = next(r for r in out.records if r["status"] == "diverged")
    assert "non-finite loss" in div["reason"] and div["metrics"]["diverged"] == 1.0


def test_a_crashing_run_is_failed_with_its_error_and_others_finish(tmp_path):
    from restudy import plugins

    st = load_study("enorm")
    # A model whose code raises makes every fc run fail at build time (once the check that builds
    # each run's parts before the first run is off: it refuses the study).
    with plugins.scoped():

        @plugins.register("model", "colour_model")
        def colour_model(input_shape, num_classes):
            """A model whose construction fails."""
            raise ValueError("no colour for this model")

        ov = parse_overrides(["fc:model=colour_model"])
        out = run_study(st, "smoke", tmp_path, overrides=ov, executor=InlineExecutor(1), check_parts=False)
        fc = [r for r in out.records if r["spec"]["experiment"] == "fc"]
        assert fc and all(r["status"] == "failed" and "colour" in r["reason"] for r in fc)
        assert all("Traceback" in r["env"]["traceback"] for r in fc)  # the user's code's traceback is stored
        assert all(r["status"] == "finished" for r in out.records if r["spec"]["experiment"] == "fc_bias")
        # Failed runs are retried on resume; finished ones are not.
        again = run_study(st, "smoke", tmp_path, overrides=ov, executor=InlineExecutor(1), check_parts=False)
    assert sorted(again.executed) == sorted(r["key"] for r in fc)


def test_runs_reused_from_another_environment_are_flagged(tmp_path):
    st = load_study("enorm")
    first = run_study(st, "smoke", tmp_path, executor=InlineExecutor(1))
    assert first.env_mismatch == []
    victim = tmp_path / "runs" / first.records[0]["key"] / "run.json"
    rec = json.loads(victim.read_text())
    rec["env"]["fingerprint"] = "another-machine"
    victim.write_text(json.dumps(rec))
    again = run_study(st, "smoke", tmp_path, executor=InlineExecutor(1))
    assert again.executed == [] and again.env_mismatch == [first.records[0]["key"]]


def test_penultimate_features_are_stored_for_cka(tmp_path):
    specs = plan(load_study("enorm"), "smoke", overrides=parse_overrides(["cka_examples=20"]))
    rec = execute(_one(specs, method="baseline", depth="1").to_dict(), str(tmp_path), threads=1)
    feats = load_tensors(tmp_path / LOGITS_FILE)["features"]
    assert rec["status"] == "finished" and feats.shape == (20, 16)  # width 16 at smoke scale
    assert torch.all(feats >= 0)  # after the last hidden ReLU
