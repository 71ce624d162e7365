"""Evaluation: predictions in eval mode, independent of the batch size, one split at a time."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from restudy.training.evaluate import evaluate, mean_logits, metrics_from_logits, predict


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3))


def test_predict_uses_eval_mode_and_restores_the_callers_mode():
    model = _model().train()
    x = torch.randn(10, 4)
    a, b = predict(model, x), predict(model, x)
    assert torch.equal(a, b)  # no dropout, running BN statistics
    assert model.training
    model.eval()
    assert torch.equal(predict(model, x), a) and not model.training


def test_predictions_do_not_depend_on_the_batch_size():
    model, x = _model(), torch.randn(37, 4)
    assert torch.allclose(predict(model, x, batch_size=5), predict(model, x, batch_size=1024), atol=1e-6)
    assert predict(model, x, batch_size=5).shape == (37, 3)


def test_metrics_from_logits():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 0, 0])
    m = metrics_from_logits(logits, y, "test")
    assert (m.split, m.n) == ("test", 4) and m.acc == pytest.approx(75.0)
    assert m.loss == pytest.approx(nn.functional.cross_entropy(logits, y).item())


def test_non_finite_outputs_give_nan_loss_not_an_exception():
    logits = torch.tensor([[float("nan"), 0.0], [1.0, 0.0]])
    m = metrics_from_logits(logits, torch.tensor([0, 0]), "train")
    assert math.isnan(m.loss)


def test_evaluate_returns_metrics_and_the_logits():
    model, x, y = _model(), torch.randn(9, 4), torch.randint(0, 3, (9,))
    m, logits = evaluate(model, x, y, "test", batch_size=4)
    assert torch.equal(logits, predict(model, x, batch_size=4))
    assert m == metrics_from_logits(logits, y, "test")


def test_ensemble_averages_logits():
    a, b = torch.tensor([[1.0, 3.0]]), torch.tensor([[3.0, -1.0]])
    assert torch.equal(mean_logits([a, b]), torch.tensor([[2.0, 1.0]]))
    with pytest.raises(ValueError):
        mean_logits([])


def test_top5_counts_a_label_among_the_five_largest_logits_and_is_a_built_in_run_metric():
    from restudy import plugins
    from restudy.training.evaluate import top_k_accuracy

    logits = torch.tensor([[9.0, 8, 7, 6, 5, 4, 0], [0.0, 1, 2, 3, 4, 5, 6], [1.0, 0, 0, 0, 0, 0, 0]])
    y = torch.tensor([4, 0, 0])  # 5th largest: in; smallest: out; largest: in
    assert top_k_accuracy(logits, y, 5) == pytest.approx(200 / 3)
    assert top_k_accuracy(logits[:, :3], torch.tensor([2, 0, 1]), 5) == 100.0  # three classes: always in
    fn = plugins.get("run_metric", "top5")
    model = torch.nn.Identity()
    assert fn(model=model, x_train=None, y_train=None, x_test=logits, y_test=y, settings={}) == {
        "test_acc_top5": pytest.approx(200 / 3)
    }
    # the run's final test logits, when given, are read instead of running the model again
    unused = torch.nn.Linear(1, 1)  # its output would not even have the right shape
    assert fn(model=unused, x_train=None, y_train=None, x_test=None, y_test=y, settings={}, test_logits=logits) == {
        "test_acc_top5": pytest.approx(200 / 3)
    }
