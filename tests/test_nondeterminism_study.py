"""The built-in Nondeterminism study end to end at smoke scale: factorial sources, zero variability
without nondeterminism on CPU, variability tables and claims in the report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from restudy.cli import app
from restudy.compare import compare, load_predictions
from restudy.spec.studyfile import load_study
from restudy.storage.record import row
from restudy.storage.safeio import load_tensors


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("nd") / "nondeterminism-smoke"
    r = CliRunner().invoke(
        app, ["run", "nondeterminism", "--scale", "smoke", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    return out, json.loads((out / "results.json").read_text())


def _runs(out, experiment):
    recs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/run.json")]
    return [r for r in recs if r["spec"]["experiment"] == experiment]


def test_nothing_varies_gives_bit_identical_models_and_zero_variability(smoke):
    out, results = smoke
    runs = _runs(out, "deterministic")
    assert len(runs) == 4 and len({r["spec"]["seeds"]["init"] for r in runs}) == 1
    logits = [load_tensors(out / "runs" / r["key"] / "test_logits.safetensors")["logits"] for r in runs]
    assert all((lg == logits[0]).all() for lg in logits)
    # trained one by one, not as slices of one stacked model
    assert all(r["env"].get("execution") != "stacked" for r in runs)
    claim = next(c for c in results["claims"] if c["id"] == "zero_without_nondeterminism")
    assert claim["verdict"] == "not_evaluated" and "smoke checks the pipeline only" in claim["summary"]
    # the same runs judged as if they were a verdict scale: exact zeros from separate trainings
    study = load_study("nondeterminism")
    rows = [{**row(r), "scale": "small"} for r in runs]
    judged = compare(study, "small", rows, predictions=load_predictions(out))
    zero = next(c for c in judged.claims if c.id == "zero_without_nondeterminism")
    assert zero.verdict == "reproduced", zero.summary


def test_zero_claim_refuses_slices_of_one_stacked_model(smoke):
    out, _ = smoke
    runs = _runs(out, "deterministic")
    rows = [{**row(r), "scale": "small", "execution": "stacked", "stack_size": 4} for r in runs]
    judged = compare(load_study("nondeterminism"), "small", rows, predictions=load_predictions(out))
    zero = next(c for c in judged.claims if c.id == "zero_without_nondeterminism")
    assert zero.verdict == "inconclusive" and "stacked model" in zero.summary


def test_smoke_gives_no_verdict(smoke):
    _, results = smoke
    assert {c["verdict"] for c in results["claims"]} == {"not_evaluated"}


def test_one_source_varies_at_a_time(smoke):
    out, _ = smoke
    for experiment, source in (("init", "init"), ("order", "order"), ("augment", "augment")):
        seeds = [r["spec"]["seeds"] for r in _runs(out, experiment)]
        assert len({s[source] for s in seeds}) == 4
        assert all(len({s[o] for s in seeds}) == 1 for o in ("init", "order", "augment") if o != source)
    changes = [r["env"]["perturbation"] for r in _runs(out, "onebit")]
    assert len(changes) == 4 and all(abs(int(c["new_bits"], 16) - int(c["old_bits"], 16)) == 1 for c in changes)


def test_report_has_variability_tables_claims_and_the_cpu_kernels_note(smoke):
    out, results = smoke
    tables = {t["table"] for t in results["variability"]}
    assert {"sources", "instability", "reduction", "n_models", "n_epochs"} <= tables
    verdicts = {c["id"]: c["verdict"] for c in results["claims"]}
    assert verdicts["kernels_like_all"] == "not_evaluated"  # paper scale only
    assert set(verdicts) >= {
        "each_source_like_all",
        "one_bit_like_all",
        "tta_reduces_variability",
        "ensembles_reduce_variability",
        "ensemble_tta_reduces_more",
        "longer_training_more_diverse",
        "model_count_changes_only_error_bars",
    }
    md = (out / "report.md").read_text()
    assert "Run-to-run variability" in md and "kernels" in md and "CPU" in md
    assert "Not comparable: these runs are smoke scale on digits" in md  # says what ran instead
    assert "Not comparable: reported at another scale" not in md
    snap = _runs(out, "snapshot")[0]
    stored = load_tensors(out / "runs" / snap["key"] / "test_logits.safetensors")
    assert {"ensemble", "tta_crop9", "ensemble_tta_crop9", "snapshot_0", "snapshot_1"} <= set(stored)
