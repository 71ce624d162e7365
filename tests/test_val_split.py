"""A validation split held out of the training data (``data.val_fraction``), for post-hoc steps
such as temperature scaling: it is drawn from its own stream, never overlaps the training or test
data, and a run metric fits on it instead of on the test set."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from restudy import plugins
from restudy.data.dataset import hold_out
from restudy.errors import DataError
from restudy.execution.runner import run_study
from restudy.plugins import create
from restudy.spec.studyfile import load_study
from restudy.training.build import split_seed


def test_the_held_out_split_is_disjoint_seeded_and_leaves_the_test_set_alone():
    data = create("dataset", "synthetic", n_train=200, n_test=50, dim=5, num_classes=3)
    a = hold_out(data, 0.25, split_seed(1))
    assert a.y_val.shape[0] == 50 and a.y_train.shape[0] == 150
    train, val = set(a.idx_train.tolist()), set(a.idx_val.tolist())
    assert not train & val and train | val == set(data.idx_train.tolist())
    assert torch.equal(a.x_test, data.x_test) and torch.equal(a.y_test, data.y_test)
    assert torch.equal(hold_out(data, 0.25, split_seed(1)).idx_val, a.idx_val)  # the same seed, the same split
    assert not torch.equal(hold_out(data, 0.25, split_seed(2)).idx_val, a.idx_val)
    assert "50 of 200 training examples held out" in a.description
    with pytest.raises(DataError, match="holds out 200 of 200"):
        hold_out(data, 0.999, 0)


def _h(value: Any) -> dict[str, Any]:
    return {"value": value, "provenance": "assumed"}


def test_a_run_metric_fits_a_temperature_on_the_validation_split(tmp_path: Path):
    seen: list[tuple[int, int]] = []
    with plugins.scoped():

        @plugins.register("run_metric", "temperature_scaled_nll")
        def temperature_scaled_nll(*, model, x_val, y_val, x_test, y_test, test_logits, **_):
            """Fit a temperature on the validation split (a grid), report the test NLL at it."""
            seen.append((int(y_val.shape[0]), int(y_test.shape[0])))
            with torch.no_grad():
                val_logits = model(x_val)
            grid = [0.25 * k for k in range(1, 17)]
            nll = [float(torch.nn.functional.cross_entropy(val_logits / t, y_val)) for t in grid]
            t = grid[min(range(len(grid)), key=nll.__getitem__)]
            return {
                "temperature": t,
                "test_nll_scaled": float(torch.nn.functional.cross_entropy(test_logits / t, y_test)),
            }

        temperature_scaled_nll.metrics = ("temperature", "test_nll_scaled")
        study = {
            "id": "calibrate",
            "title": "Temperature scaling on a held-out split",
            "paper": {"title": "A test"},
            "documents": [{"id": "paper", "kind": "original", "title": "A test"}],
            "defaults": {
                "data": _h("synthetic"),
                "data.n_train": _h(256),
                "data.n_test": _h(100),
                "data.dim": _h(10),
                "data.num_classes": _h(3),
                "data.val_fraction": _h(0.25),
                "model": _h("fc"),
                "model.width": _h(16),
                "optimizer.lr": _h(0.1),
                "epochs": _h(2),
                "batch_size": _h(64),
                "run_metrics": _h(["temperature_scaled_nll"]),
            },
            "experiments": [{"id": "main", "seeds": 2}],
        }
        path = tmp_path / "calibrate.yaml"
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        result = run_study(load_study(path), "smoke", tmp_path / "out", workers=0)
    assert seen == [(64, 100), (64, 100)]  # fitted on 64 held-out training examples, applied to the test set
    for rec in result.records:
        m = rec["metrics"]
        assert rec["status"] == "finished" and m["n_train"] == 192 and m["n_val"] == 64
        assert 0.25 <= m["temperature"] <= 4.0 and math.isfinite(m["test_nll_scaled"])
        assert "64 of 256 training examples held out" in rec["env"]["dataset"]
