"""Each built-in claim kind returns the evidence its figure and report section show: the figures can
be redrawn from ``results.json`` alone, and the points in the evidence are the runs themselves.
One number formatter writes every number, with one mark for a missing one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from restudy import compare as cmp
from restudy.api import claim_kind
from restudy.compare.views import view_tensor
from restudy.spec.study import Study
from restudy.storage import artifacts


def _study(claims: list[dict[str, Any]]) -> Study:
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy",
            "paper": {"title": "A toy paper"},
            "documents": [{"id": "orig", "kind": "original", "title": "The paper"}],
            "experiments": [
                {
                    "id": "fc",
                    "axes": {
                        "method": {"baseline": {}, "enorm": {"method": "enorm"}},
                        "depth": {"path": "model.hidden", "values": [1, 3]},
                    },
                }
            ],
            "tables": [
                {
                    "id": "t1",
                    "title": "Accuracy",
                    "document": "orig",
                    "rows": [1, 3],
                    "columns": ["baseline", "enorm"],
                    "values": {1: {"baseline": 60.0, "enorm": {"value": 62.0, "pm": 0.5}}},
                    "layout": {"experiment": "fc", "row_axis": "depth", "column_axis": "method"},
                }
            ],
            "claims": claims,
        }
    )


def _row(method: str, depth: str, seed: int, acc: float, status: str = "finished") -> dict[str, Any]:
    variant = {"method": method, "depth": depth}
    vid = f"method={method},depth={depth}"
    return {
        "key": f"{vid}-{seed}",
        "experiment": "fc",
        "variant": variant,
        "variant_id": vid,
        "seed_index": seed,
        "scale": "paper",
        "dataset": "CIFAR-10",
        "status": status,
        "reason": "",
        "metrics": {"test_acc": acc, "n_test": 10000, "diverged": float(status == "diverged")},
        "wall_s": 1.0,
        "env_fingerprint": "abc",
    }


ROWS = [
    _row(
        m,
        d,
        s,
        60.0 + (2.0 if m == "enorm" else 0.0) * int(d) + 0.3 * s - 0.1 * (s % 2) * int(d),
        "diverged" if (m, d, s) == ("enorm", "3", 3) else "finished",
    )
    for m in ("baseline", "enorm")
    for d in ("1", "3")
    for s in range(4)
]
SEL = {"experiment": "fc", "where": {"method": "enorm"}}
BASE = {"experiment": "fc", "where": {"method": "baseline"}}
CLAIMS = [
    {"id": "beats", "kind": "a_beats_b", "statement": "s", "a": SEL, "b": BASE},
    {
        "id": "trend",
        "kind": "trend",
        "statement": "s",
        "select": SEL,
        "baseline": BASE,
        "over": "depth",
        "direction": "increasing",
    },
    {"id": "mean", "kind": "threshold", "statement": "s", "select": SEL, "op": ">=", "value": 50},
    {
        "id": "rate",
        "kind": "threshold",
        "statement": "s",
        "metric": "diverged",
        "select": SEL,
        "op": "<=",
        "value": 0.5,
    },
    {
        "id": "cells",
        "kind": "numeric",
        "statement": "s",
        "cells": [{"table": "t1", "row": 1, "column": "baseline"}, {"table": "t1", "row": 1, "column": "enorm"}],
    },
]


@pytest.fixture(scope="module")
def judged() -> tuple[Study, dict[str, cmp.ClaimResult]]:
    study = _study(CLAIMS)
    return study, {c.id: c for c in cmp.compare(study, "paper", ROWS).claims}


@pytest.mark.parametrize("cid", [c["id"] for c in CLAIMS])
def test_figure_is_redrawn_from_results_json_alone(judged, cid: str, tmp_path: Path) -> None:
    study, results = judged
    stored = json.loads(json.dumps(results[cid].to_dict(), allow_nan=False))  # what results.json holds
    claim = next(c for c in study.claims if c.id == cid)
    path = claim_kind(claim.kind).figure(claim, cmp.ClaimResult(**stored), tmp_path / f"{cid}.png")
    assert path is not None and path.read_bytes()[:4] == b"\x89PNG"


def test_beats_evidence_holds_every_run_and_every_pair(judged) -> None:
    _, results = judged
    ev = results["beats"].evidence
    assert ev["axis"] == "depth"
    a, b = ev["series"]
    assert len(a["points"]) == 8 and len(b["points"]) == 8  # diverged runs are in, failed would not be
    assert sorted(p[1] for p in a["points"]) == sorted(
        r["metrics"]["test_acc"] for r in ROWS if r["variant"]["method"] == "enorm"
    )
    diffs = [p[1] for p in ev["differences"][0]["points"]]
    assert len(diffs) == ev["comparisons"][0]["pairs"] == 8
    assert ev["comparisons"][0]["n"] == 4  # the test counts seeds: 2 depths per seed are averaged
    assert sum(diffs) / len(diffs) == pytest.approx(ev["comparisons"][0]["mean_diff"])
    level = next(lv for lv in ev["differences"][0]["levels"] if lv["x"] == "3")
    assert level["ci_low"] < level["mean"] < level["ci_high"]


def test_trend_and_threshold_evidence_are_what_is_drawn(judged) -> None:
    _, results = judged
    trend = results["trend"].evidence
    assert len(trend["points"]) == 8 and [lv["x"] for lv in trend["levels"]] == [1.0, 3.0]
    assert all(lv["ci_low"] <= lv["mean"] <= lv["ci_high"] for lv in trend["levels"])
    assert trend["intercept"] + trend["slope"] * 1.0 == pytest.approx(trend["levels"][0]["mean"], abs=0.5)
    rate = results["rate"].evidence
    assert [(g["label"], g["k"], g["n"]) for g in rate["groups"]] == [
        ("method=enorm,depth=1", 0, 4),
        ("method=enorm,depth=3", 1, 4),
        ("all", 0.5, 4),  # pooled, the rate still counts seeds: one seed's two runs are half diverged
    ]
    # every variant is tested (the default quantifier): a cell's interval is its group's
    assert [c["ci_low"] for c in rate["cells"]] == [g["ci_low"] for g in rate["groups"][:2]]
    mean = results["mean"].evidence
    assert [len(s["points"]) for s in mean["series"]] == [4, 4]
    cells = results["cells"].evidence
    assert [len(p) for p in cells["points"]] == [4, 4]
    assert sum(cells["points"][0]) / 4 == pytest.approx(cells["cells"][0]["mean"])


def test_a_claim_not_evaluated_at_this_scale_has_no_evidence_and_no_figure(tmp_path: Path) -> None:
    only_paper = _study([{**CLAIMS[0], "scales": ["paper"]}])
    skipped = cmp.compare(only_paper, "small", [{**r, "scale": "small"} for r in ROWS]).claims[0]
    assert skipped.verdict == "not_evaluated" and skipped.evidence == {}
    claim = only_paper.claims[0]
    assert claim_kind(claim.kind).figure(claim, skipped, tmp_path / "x.png") is None


@pytest.mark.parametrize("view", ["test", "tta:flip", "tta:crop25", "ensemble", "ensemble+tta:flip_crop81"])
def test_builtin_views_read_the_tensors_the_runs_store(view: str) -> None:
    assert view_tensor(view) == artifacts.view_tensor(view)


@pytest.mark.parametrize(
    "view,words",
    [
        ("tta:spin", ["unknown TTA strategy 'spin'", "flip"]),
        ("logits", ["unknown view 'logits'", "ensemble", "tta"]),
        ("test:flip", ["takes no ':argument'"]),
    ],
)
def test_bad_views_say_what_is_allowed(view: str, words: list[str]) -> None:
    from restudy.spec.claim_base import ModelSet

    with pytest.raises(ValueError) as e:
        ModelSet(experiment="fc", view=view)
    assert all(w in str(e.value) for w in words)
