"""Claims on any metric a run records compare in the metric's own direction and write its unit:
a lower loss, or a lower value of a run metric declared lower-is-better (an ECE), beats a higher one."""

from __future__ import annotations

from typing import Any

import pytest

from restudy import compare as cmp
from restudy.api import MetricInfo, metric_info, register, scoped_registrations
from restudy.compare.select import level_unit, unit
from restudy.display.draw import metric_label
from test_compare import BEATS, _claim, _grid, _study


def _with(metric: str, lower_for: str, *, declare=None) -> tuple[list[dict[str, Any]], dict]:
    """Rows where ``lower_for``'s method has the lower ``metric`` by 0.05 at every seed and depth."""
    rows = _grid({"enorm": lambda d, s: 60.0, "baseline": lambda d, s: 60.0})
    for r in rows:
        r["metrics"][metric] = 0.30 + 0.01 * r["seed_index"] - (0.05 if r["variant"]["method"] == lower_for else 0.0)
    return rows, {**BEATS, "metric": metric}


def test_a_lower_loss_beats_by_default():
    rows, claim = _with("test_loss", lower_for="enorm")
    c = _claim(cmp.compare(_study([claim]), "paper", rows), "enorm_wins")
    assert c.verdict == "reproduced", c.summary
    assert c.evidence["higher_is_better"] is False
    rows, claim = _with("test_loss", lower_for="baseline")
    assert _claim(cmp.compare(_study([claim]), "paper", rows), "enorm_wins").verdict == "not_reproduced"


def test_a_run_metric_declared_lower_is_better_is_compared_that_way():
    with scoped_registrations():

        @register("run_metric", "calibration")
        def calibration(**_):
            return {"ece": 0.0}

        calibration.metrics = {"ece": MetricInfo(higher_is_better=False, unit="%", label="expected calibration error")}
        assert metric_info("ece").higher_is_better is False
        assert unit("ece") == " pp" and level_unit("ece") == "%"
        assert metric_label("ece") == "expected calibration error (%)"
        rows, claim = _with("ece", lower_for="enorm")
        c = _claim(cmp.compare(_study([claim]), "paper", rows), "enorm_wins")
        assert c.verdict == "reproduced", c.summary
        assert " pp" in c.summary  # the difference in the metric's declared unit
        # the claim may still say which way it means, against the metric's own direction
        c = _claim(cmp.compare(_study([{**claim, "higher_is_better": True}]), "paper", rows), "enorm_wins")
        assert c.verdict == "not_reproduced"
    assert metric_info("ece") == MetricInfo()  # gone with the registration: higher is better, no unit


@pytest.mark.parametrize(
    ("name", "higher", "diff_unit"),
    [("test_acc", True, " pp"), ("test_acc_tta_flip", True, " pp"), ("wall_s", False, " s"), ("diverged", False, "")],
)
def test_built_in_metrics_declare_their_direction_and_unit(name, higher, diff_unit):
    assert metric_info(name).higher_is_better is higher and unit(name) == diff_unit


def test_a_list_of_names_is_still_accepted_and_a_bad_declaration_is_refused():
    from restudy.spec.metrics import declared

    assert declared(("weight_norm",)) == {"weight_norm": MetricInfo()}
    assert declared({"ece": {"higher_is_better": False}})["ece"].higher_is_better is False
    with pytest.raises(TypeError):
        declared({"ece": {"lower": True}})
