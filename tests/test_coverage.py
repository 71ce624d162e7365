"""Coverage: every claim a study's documents make, tested by a study claim or with the reason
none can, checked when the study loads and shown in the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from restudy.compare import compare
from restudy.report import write_report
from restudy.spec.coverage import coverage_counts
from restudy.spec.study import Study
from restudy.storage.record import row
from test_report import ENV, _plan_info, _records, _study

COVERAGE = [
    {"says": "ENorm beats the baseline at every depth", "document": "orig", "where": "§4", "tested_by": ["beats"]},
    {
        "says": "Table 1's numbers",
        "document": "orig",
        "where": "Table 1",
        "tested_by": ["table1", "grows"],
        "note": "each cell within the tolerance",
    },
    {"says": "Our code is easy to read", "document": "orig", "where": "§6", "untested": "a judgement of style"},
]


def _covered(coverage: list[dict[str, Any]]) -> Study:
    return Study.model_validate({**_study().model_dump(mode="json", exclude_none=True), "coverage": coverage})


@pytest.mark.parametrize(
    ("entry", "where", "words"),
    [
        ({"says": "x", "document": "orig", "tested_by": ["nope"]}, "coverage.0.tested_by.0", ["no claim has this id"]),
        ({"says": "x", "document": "rep", "tested_by": ["beats"]}, "coverage.0.document", ["allowed: orig"]),
        ({"says": "x", "document": "orig"}, "coverage.0", ["either tested_by", "or untested"]),
        ({"says": "x", "document": "orig", "tested_by": ["beats"], "untested": "y"}, "coverage.0", ["not both"]),
    ],
)
def test_a_coverage_entry_names_claims_that_exist_or_says_why_none(entry: dict, where: str, words: list[str]) -> None:
    with pytest.raises(Exception) as err:
        _covered([entry])
    text = str(err.value)
    assert where in text.replace("[", ".").replace("]", ""), text
    assert all(w in text for w in words), text


def test_counts_say_how_many_claims_are_tested_and_at_which_scale() -> None:
    study = _covered(COVERAGE)
    assert coverage_counts(study, "small") == {"claims": 3, "tested": 2, "untested": 1, "at_scale": 2}


def test_the_report_lists_each_documented_claim_with_its_verdicts_here(tmp_path: Path) -> None:
    study, scale = _covered(COVERAGE), "small"
    recs = _records(scale)
    paths = write_report(
        tmp_path,
        study,
        scale,
        compare(study, scale, [row(r) for r in recs]),
        recs,
        ENV,
        plan_info=_plan_info(study, scale),
    )
    md = paths["markdown"].read_text()
    assert "What the documents claim" in md
    assert "3 claims in the documents: 2 (67%) tested by a study claim (2 with a verdict at small scale" in md
    assert "[beats](#claim-beats) | 🟢 reproduced" in md
    assert "read as: each cell within the tolerance" in md
    assert "untested: a judgement of style" in md
    html = paths["html"].read_text()
    assert 'id="coverage"' in html and 'href="#claim-table1"' in html
    data = json.loads(paths["results"].read_text())["coverage"]
    assert data[1]["tested_by"] == [
        {"id": "table1", "verdict": "not_evaluated"},
        {"id": "grows", "verdict": "reproduced"},
    ]
    assert data[2]["untested"] == "a judgement of style"
