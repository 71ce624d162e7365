"""Artifacts: the run-directory layout and the names of stored tensors and model-set views."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from restudy.storage import artifacts


def test_run_directory_layout():
    assert artifacts.run_dir("out", "abc") == Path("out") / "runs" / "abc"
    assert artifacts.runs_dir(Path("out")) == Path("out/runs")


@pytest.mark.parametrize(
    "view,tensor",
    [
        ("test", "logits"),
        ("ensemble", "ensemble"),
        ("tta:flip", "tta_flip"),
        ("tta:crop9", "tta_crop9"),
        ("ensemble+tta:crop9", "ensemble_tta_crop9"),
    ],
)
def test_each_view_names_its_tensor_and_matches_the_view_pattern(view, tensor):
    assert artifacts.view_tensor(view) == tensor
    assert re.match(artifacts.VIEW_PATTERN, view)


@pytest.mark.parametrize("view", ["tta", "tta:", "snapshot:1", "crop"])
def test_a_bad_view_lists_the_allowed_views(view):
    with pytest.raises(ValueError) as info:
        artifacts.view_tensor(view)
    assert repr(view) in str(info.value) and "ensemble+tta:<strategy>" in str(info.value)
    assert not re.match(artifacts.VIEW_PATTERN, view)


def test_tensor_names():
    assert artifacts.tta_tensor("flip") == "tta_flip"
    assert artifacts.snapshot_tensor(0) == "snapshot_0"
    assert artifacts.ensemble_tta_tensor("crop9") == "ensemble_tta_crop9"


def test_variant_id_keeps_axis_order():
    assert artifacts.variant_id({"method": "bn", "depth": "9"}) == "method=bn,depth=9"
    assert artifacts.variant_id({}) == "-"
