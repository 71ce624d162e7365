"""Tables as papers lay them out: a table of one row (or one column) needs no axis for it; runs at
another scale stand in for a paper's rows only when declared (shown as such, never a verdict); and a
scale that swaps the part an axis level names is refused, instead of labelling its runs wrongly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from restudy import compare as cmp
from restudy.errors import StudyError
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study
from test_compare import _grid, _study

ONE_ROW = {
    "id": "by_method",
    "title": "Test accuracy by method (%)",
    "document": "orig",
    "where": "Table 2",
    "rows": ["depth 1"],
    "columns": ["enorm", "baseline"],
    "values": {"depth 1": {"enorm": "63.0", "baseline": "60.0"}},
    "layout": {"experiment": "fc", "column_axis": "method", "where": {"depth": 1}},
}


def _rows(**kw):
    return _grid({"enorm": lambda d, s: 63.0 + 0.1 * s, "baseline": lambda d, s: 60.0 - 0.1 * s}, **kw)


def test_a_table_of_one_row_needs_no_row_axis():
    result = cmp.compare(_study([], [ONE_ROW]), "paper", _rows())
    cells = {c.column: c for c in result.cells if c.table == "by_method"}
    assert cells["enorm"].n == 3 and cells["baseline"].n == 3  # depth 1 only, 3 seeds each
    assert cells["enorm"].mean == pytest.approx(63.1) and cells["baseline"].mean == pytest.approx(59.9)


def test_a_table_of_several_rows_without_its_axis_is_refused():
    two = {**ONE_ROW, "rows": ["a", "b"], "values": {"a": {"enorm": 1.0}, "b": {"enorm": 2.0}}}
    with pytest.raises(ValidationError) as err:
        _study([], [two])
    assert "row_axis" in str(err.value) and "needs the axis its rows are levels of" in str(err.value)


STAND_IN = {
    "id": "paper_net",
    "title": "Test accuracy of the paper's network (%)",
    "document": "orig",
    "where": "Table 3",
    "rows": ["enorm", "baseline"],
    "columns": ["deep"],
    "values": {"enorm": {"deep": "91.0"}, "baseline": {"deep": "90.0"}},
    "layout": {
        "experiment": "fc",
        "row_axis": "method",
        "column_axis": "depth",
        "stand_ins": {"small": {"columns": {"deep": 5}, "reason": "the paper's 56 layers do not fit a CPU"}},
    },
}


def test_stand_in_runs_are_shown_beside_the_papers_rows_with_no_verdict():
    result = cmp.compare(_study([], [STAND_IN]), "small", _rows(scale="small"))
    cells = {c.row: c for c in result.cells if c.table == "paper_net"}
    assert cells["enorm"].n == 3 and cells["enorm"].stand_in == "5 for deep"
    assert cells["enorm"].mean == pytest.approx(63.1)  # the depth-5 runs, nothing else
    assert {c.verdict for c in cells.values()} == {"not_evaluated"}  # no numeric verdict across scales
    # at the table's own scale its own levels are read: no run has depth "deep"
    paper = cmp.compare(_study([], [STAND_IN]), "paper", _rows())
    assert {c.n for c in paper.cells if c.table == "paper_net"} == {0}


def test_a_stand_in_must_be_a_level_of_its_axis():
    bad = {
        **STAND_IN,
        "layout": {**STAND_IN["layout"], "stand_ins": {"small": {"columns": {"deep": 7}, "reason": "x"}}},
    }
    with pytest.raises((StudyError, ValidationError)) as err:
        _study([], [bad])
    assert "axis 'depth' has no such level" in str(err.value)


def test_a_scale_that_swaps_an_axis_levels_model_is_refused(study_file):
    """The workaround a user first tried: a level named after the paper's network while the small
    scale trains another; its runs would carry the paper network's name."""

    def swap(d):
        fc = d["experiments"][0]
        fc["axes"]["arch"] = {"levels": {"paper_net": {"model": "fc", "model.width": 64}}}
        d["scales"]["smoke"]["settings"]["model"] = "resnet14"

    with pytest.raises(StudyError) as err:
        plan(load_study(study_file(swap)), "smoke")
    text = str(err.value)
    assert "axis 'arch' at level 'paper_net' trains model 'fc', but at smoke scale 'resnet14'" in text
    assert "stand_ins" in text and "scales.smoke.settings.model" in text


def test_numbers_no_run_produces_are_kept_as_the_paper_prints_them():
    """A paper's ImageNet table in a CPU study: no layout, a note saying why; its cells get no
    runs and no verdict, and the report lists them as reported."""
    imagenet = {
        "id": "imagenet",
        "title": "Top-1 accuracy on ImageNet (%)",
        "document": "orig",
        "where": "Figure 3",
        "rows": ["Inception", "BN-x5"],
        "columns": ["max accuracy"],
        "values": {"Inception": {"max accuracy": "72.2"}, "BN-x5": {"max accuracy": "73.0"}},
        "note": "ImageNet-scale runs are beyond this study; the numbers are kept as the paper prints them",
    }
    result = cmp.compare(_study([], [imagenet]), "paper", _rows())
    cells = [c for c in result.cells if c.table == "imagenet"]
    assert len(cells) == 2 and {c.n for c in cells} == {0} and {c.verdict for c in cells} == {"not_evaluated"}
    assert cells[1].reported_text == "73.0"  # the printed digits
    with pytest.raises(ValidationError, match="needs a 'layout'"):
        _study([], [{**imagenet, "note": ""}])
