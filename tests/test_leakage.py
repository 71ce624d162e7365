"""The leakage guard: reported test values that look like training-set numbers are flagged, on
synthetic runs with known train and test accuracies, and the report shows the flag."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from restudy import compare as cmp
from restudy.compare import leakage as lk
from restudy.report import write_report
from restudy.spec.study import Study
from restudy.storage.record import row

N_TEST = 10000
TRAIN = {"bn": 99.9, "nd": 99.95}  # the reported 100-epoch values in the [Re] report sit here
TEST = {"bn": 93.0, "nd": 94.0}


def _study(
    metric: str = "test_acc",
    scale: str = "small",
    values: dict[str, float] | None = None,
    epochs: tuple[int, ...] = (100,),
) -> Study:
    values = values or {"bn": 99.9, "nd": 94.1}
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy study",
            "paper": {"title": "A toy paper"},
            "documents": [{"id": "rep", "kind": "reproduction", "title": "The reproduction"}],
            "experiments": [
                {
                    "id": "cnn",
                    "axes": {"norm": {"bn": {}, "nd": {}}, "epochs": {"path": "epochs", "values": list(epochs)}},
                }
            ],
            "scales": {"small": {"dataset": "digits"}, "paper": {"dataset": "CIFAR-10"}},
            "tables": [
                {
                    "id": "t4",
                    "title": "Accuracy after 100 epochs",
                    "document": "rep",
                    "where": "Table 4",
                    "metric": metric,
                    "scale": scale,
                    "rows": [100],
                    "columns": ["bn", "nd"],
                    "values": {100: values},
                    "layout": {"experiment": "cnn", "row_axis": "epochs", "column_axis": "norm"},
                }
            ],
            "claims": [],
        }
    )


def _record(norm: str, seed: int, test: float, train: float, scale: str = "small") -> dict[str, Any]:
    return {
        "key": f"cnn-norm={norm},epochs=100-{seed}-{scale}",
        "spec": {
            "experiment": "cnn",
            "variant": {"norm": norm, "epochs": "100"},
            "seed_index": seed,
            "scale": scale,
            "dataset_label": "digits",
        },
        "status": "finished",
        "reason": "",
        "metrics": {"test_acc": test, "train_acc": train, "test_loss": 0.3, "train_loss": 0.01, "n_test": N_TEST},
        "curves": [],
        "timings": {"wall_s": 1.0},
        "env": {"fingerprint": "f00"},
    }


def _records(seeds: int = 3, scale: str = "small", gap: float = 1.0) -> list[dict[str, Any]]:
    """Runs whose train and test accuracies are TRAIN/TEST (gap = 1) with small seed noise."""
    jitter = (-0.2, 0.0, 0.2, 0.1, -0.1)
    return [
        _record(
            n,
            s,
            TEST[n] + jitter[s],
            TEST[n] + gap * (TRAIN[n] - TEST[n]) + jitter[s] / 4,
            scale,
        )
        for n in ("bn", "nd")
        for s in range(seeds)
    ]


def _guard(study: Study, records: list[dict[str, Any]], scale: str = "small") -> dict[str, cmp.LeakageResult]:
    comp = cmp.compare(study, scale, [row(r) for r in records])
    return {x.column: x for x in comp.leakage}


def test_a_test_value_equal_to_the_train_accuracy_is_flagged_and_a_test_one_is_clear() -> None:
    got = _guard(_study(), _records())
    assert got["bn"].status == lk.FLAGGED
    assert got["bn"].looks_like == "training-set"
    assert "looks like a training-set number" in got["bn"].note
    assert got["bn"].n == 3 and got["bn"].side_low > 0
    assert got["nd"].status == lk.CLEAR and got["nd"].side_high < 0


def test_a_train_table_value_that_is_a_test_number_is_flagged_the_other_way() -> None:
    got = _guard(_study("train_acc", values={"bn": 93.1, "nd": 99.9}), _records())
    assert (got["bn"].status, got["bn"].looks_like) == (lk.FLAGGED, "test-set")
    assert got["nd"].status == lk.CLEAR


@pytest.mark.parametrize(
    ("records", "scale", "table_scale", "why"),
    [
        (_records(seeds=1), "small", "small", "at least 2 are needed"),
        (_records(scale="smoke"), "smoke", "smoke", "smoke checks the pipeline only"),
        (_records(), "small", "paper", "reported at paper scale"),
        (_records(gap=0.0), "small", "small", "cannot be told apart"),
    ],
    ids=["one-seed", "smoke", "other-scale", "no-gap"],
)
def test_cannot_tell_without_seeds_at_smoke_at_another_scale_or_without_a_gap(
    records: list[dict[str, Any]], scale: str, table_scale: str, why: str
) -> None:
    got = _guard(_study(scale=table_scale), records, scale)
    for x in got.values():
        assert x.status == lk.CANNOT_TELL
        assert why in x.note
    # the numbers are still shown for information
    bn = [r["metrics"]["test_acc"] for r in records if r["spec"]["variant"]["norm"] == "bn"]
    assert math.isclose(got["bn"].own_mean, sum(bn) / len(bn))


def test_identical_seeds_do_not_make_a_tiny_distance_beyond_noise() -> None:
    """Seeds that agree exactly (SD 0) are floored by the binomial test-set SD: a value a hair past
    the midpoint is not flagged."""
    recs = [_record("bn", s, 93.0, 94.0) for s in range(5)] + [_record("nd", s, 93.0, 99.0) for s in range(5)]
    got = _guard(_study(values={"bn": 93.6, "nd": 98.9}), recs)
    assert got["bn"].status == lk.CANNOT_TELL
    assert got["nd"].status == lk.FLAGGED


def test_the_report_flags_the_cell_and_lists_it_and_results_json_holds_every_decision(tmp_path: Path) -> None:
    study, recs = _study(), _records()
    comp = cmp.compare(study, "small", [row(r) for r in recs])
    plan_info = {"scale_description": "small", "dataset": "digits", "settings": {}, "command": "restudy run toy"}
    paths = write_report(tmp_path, study, "small", comp, recs, {"fingerprint": "f00"}, plan_info=plan_info)
    md = paths["markdown"].read_text()
    assert "t4: 100 / bn ⚠ looks like a training-set number" in md
    assert "t4: 100 / nd ⚠" not in md
    section = md.split("Train/test leakage guard", 2)[2]
    assert "1 of 2 reported train/test values flagged; 1 clear; 0 cannot tell" in section
    assert "α = 0.05" in section
    html = paths["html"].read_text()
    assert 'class="flag"' in html and "Train/test leakage guard" in html
    data = json.loads(paths["results"].read_text())
    assert {x["column"]: x["status"] for x in data["leakage"]} == {"bn": "flagged", "nd": "clear"}


def test_no_section_without_a_train_or_test_table(tmp_path: Path) -> None:
    study = _study()
    study = study.model_copy(update={"tables": []})
    comp = cmp.compare(study, "small", [row(r) for r in _records()])
    assert comp.leakage == []


def test_the_best_test_accuracy_over_epochs_is_checked_against_the_train_accuracy() -> None:
    recs = _records()
    for r in recs:
        r["metrics"]["test_acc_best"] = r["metrics"]["test_acc"] + 0.1
    got = _guard(_study("test_acc_best"), recs)
    assert (got["bn"].status, got["bn"].other) == (lk.FLAGGED, "train_acc")
    assert got["nd"].status == lk.CLEAR


def test_the_report_says_why_nothing_is_judged_at_another_scale(tmp_path: Path) -> None:
    study, recs = _study(scale="paper"), _records()
    comp = cmp.compare(study, "small", [row(r) for r in recs])
    plan_info = {"scale_description": "small", "dataset": "digits", "settings": {}, "command": "restudy run toy"}
    md = write_report(tmp_path, study, "small", comp, recs, {}, plan_info=plan_info)["markdown"].read_text()
    assert "looks like a training-set number" not in md
    assert "0 of 2 reported train/test values flagged; 0 clear; 2 cannot tell." in md
    why = "reported at paper scale on the paper data; these runs are small scale on digits"
    assert f"Not judged at this scale: {why}" in md
    assert "Its runs let the leakage guard judge 2 reported train/test values." in md


def test_runs_outside_the_tables_cells_are_named_by_their_data_set(tmp_path: Path) -> None:
    # a stand-in model at small scale: no run falls in the paper table's cells (other epochs)
    recs = _records()
    for r in recs:
        r["spec"]["variant"]["epochs"] = "20"
        r["key"] = r["key"].replace("epochs=100", "epochs=20")
    study = _study(scale="paper", epochs=(20, 100))
    comp = cmp.compare(study, "small", [row(r) for r in recs])
    assert {x.n for x in comp.leakage} == {0}
    for x in comp.leakage:
        assert x.note.endswith("these runs are small scale on digits")
