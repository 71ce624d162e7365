"""Test-time augmentation (Summers & Dinneen's ``evaluate.py``, strategy ``'tta'``): views, padding,
averaging of logits, 1-D analogues."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from restudy import plugins
from restudy.errors import RestudyError, StudyError
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.training.tta import (
    iter_views,
    num_views,
    pad_value_from_normalization,
    parse_strategy,
    tta_logits,
    tta_names_problem,
)


class Recorder(nn.Module):
    """Returns fixed linear logits of its input and remembers every batch it saw."""

    def __init__(self, features: int, classes: int = 3) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.proj = nn.Linear(features, classes)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(classes, features, generator=torch.Generator().manual_seed(0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return self.proj(x.reshape(x.shape[0], -1))


def _images(n: int = 4, c: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    "strategy,views", [("flip", 2), ("crop25", 26), ("crop81", 82), ("flip_crop25", 51), ("flip_crop81", 163)]
)
def test_view_counts_match_the_paper(strategy, views):
    x = _images(n=2)
    model = Recorder(3 * 32 * 32)
    tta_logits(model, x, strategy, pad_value=[0.0, 0.0, 0.0], batch_size=16)
    assert len(model.seen) == views == num_views(strategy)
    assert all(v.shape == x.shape for v in model.seen)
    assert torch.equal(model.seen[0], x)  # the original view is always included, first


def test_flip_view_is_the_horizontal_mirror():
    x = _images()
    original, mirror = list(iter_views(x, "flip", pad_value=[0.0] * 3))
    assert torch.equal(original, x) and torch.equal(mirror, x.flip(3))


@pytest.mark.parametrize("strategy,position", [("crop25", 1 + 2 * 5 + 2), ("crop81", 1 + 4 * 9 + 4)])
def test_crop_at_offset_4_4_is_the_original(strategy, position):
    x = _images()
    views = list(iter_views(x, strategy, pad_value=[-1.0, -2.0, -3.0]))
    assert torch.equal(views[position], x)  # counted twice, as in the original
    assert sum(torch.equal(v, x) for v in views) == 2


def test_mirror_crops_are_crops_of_the_mirror():
    x = _images()
    views = list(iter_views(x, "flip_crop25", pad_value=[0.5, 0.5, 0.5]))
    plain = list(iter_views(x.flip(3), "crop25", pad_value=[0.5, 0.5, 0.5]))
    assert len(views) == 51
    for a, b in zip(views[26:], plain[1:]):
        assert torch.equal(a, b)


def test_pad_value_is_the_normalised_black_pixel():
    norm = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010], "computed_on": "fixed"}
    value = pad_value_from_normalization(norm, 3)
    assert value == pytest.approx([-0.4914 / 0.2023, -0.4822 / 0.1994, -0.4465 / 0.2010])
    x = _images()
    corner = list(iter_views(x, "crop25", pad_value=value))[1]  # offset (0, 0)
    mean, std = torch.tensor(norm["mean"]), torch.tensor(norm["std"])
    raw = corner * std[None, :, None, None] + mean[None, :, None, None]
    assert torch.allclose(raw[:, :, :4, :], torch.zeros_like(raw[:, :, :4, :]), atol=1e-6)
    assert torch.allclose(raw[:, :, :, :4], torch.zeros_like(raw[:, :, :, :4]), atol=1e-6)
    assert torch.equal(corner[:, :, 4:, 4:], x[:, :, :28, :28])


def test_pad_value_for_scalar_and_unknown_normalisation():
    assert pad_value_from_normalization({"mean": [2.0], "std": [4.0]}, 3) == [-0.5, -0.5, -0.5]
    assert pad_value_from_normalization({"kind": "none"}, 2) == [0.0, 0.0]
    with pytest.raises(RestudyError, match="pad value"):
        pad_value_from_normalization({"mean": [0.1, 0.2], "std": [1.0, 1.0]}, 3)


def test_logits_are_averaged_not_probabilities():
    x = _images(n=5)
    model = Recorder(3 * 32 * 32)
    got = tta_logits(model, x, "flip_crop25", pad_value=[0.1, 0.2, 0.3], batch_size=64)
    with torch.no_grad():
        per_view = torch.stack(
            [model.proj(v.reshape(5, -1)) for v in iter_views(x, "flip_crop25", pad_value=[0.1, 0.2, 0.3])]
        )
    torch.testing.assert_close(got, per_view.mean(0))
    via_probs = per_view.softmax(-1).mean(0).log()
    assert not torch.allclose(got, via_probs, atol=1e-3)


def test_chunked_evaluation_equals_unchunked():
    model = plugins.create("model", "small_cnn", input_shape=(3, 32, 32), num_classes=10)
    x = _images(n=7)
    whole = tta_logits(model, x, "flip_crop25", pad_value=[-1.0, 0.0, 1.0], batch_size=1000)
    chunked = tta_logits(model, x, "flip_crop25", pad_value=[-1.0, 0.0, 1.0], batch_size=3)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    last = tta_logits(
        model, x, "flip_crop25", pad_value=[-1.0, 0.0, 1.0], batch_size=3, memory_format=torch.channels_last
    )
    torch.testing.assert_close(last, whole, rtol=1e-4, atol=1e-5)


def test_model_mode_is_restored_and_eval_is_used():
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(3 * 32 * 32, 4))
    model.train()
    x = _images(n=3)
    a = tta_logits(model, x, "flip", pad_value=[0.0] * 3, batch_size=8)
    b = tta_logits(model, x, "flip", pad_value=[0.0] * 3, batch_size=8)
    assert torch.equal(a, b) and model.training


def test_small_images_with_a_small_pad():
    x = _images(n=3, c=1, h=8, w=8)
    assert parse_strategy("crop9").offsets(1) == [0, 1, 2]
    assert parse_strategy("crop4").offsets(1) == [0, 2]
    assert parse_strategy("crop9").offsets(4) == [0, 4, 8]
    views = list(iter_views(x, "crop9", pad_value=[-1.0], pad=1))
    assert len(views) == 10 and torch.equal(views[1 + 4], x)
    model = plugins.create("model", "small_cnn", input_shape=(1, 8, 8), num_classes=10)
    assert tta_logits(model, x, "flip_crop9", pad_value=[-1.0], pad=1, batch_size=2).shape == (3, 10)
    with pytest.raises(RestudyError, match="tta.pad"):
        tta_logits(model, x, "crop81", pad_value=[-1.0], pad=1, batch_size=2)


def test_one_dimensional_analogues():
    x = torch.arange(2 * 10, dtype=torch.float32).reshape(2, 10)
    flip = list(iter_views(x, "flip", pad_value=[-7.0]))
    assert torch.equal(flip[1], x.flip(1))
    views = list(iter_views(x, "crop25", pad_value=[-7.0], pad=4))  # offsets 0, 2, ..., 8: 5 shifts
    assert len(views) == 1 + 5 == num_views("crop25", spatial_dims=1)
    assert torch.equal(views[1][:, :4], torch.full((2, 4), -7.0))
    assert torch.equal(views[1][:, 4:], x[:, :6])
    assert torch.equal(views[3], x)  # offset 4 is the original
    assert torch.equal(views[5][:, :6], x[:, 4:])
    assert len(list(iter_views(x, "flip_crop81", pad_value=[0.0]))) == 1 + 2 * 9
    seq3 = x.reshape(2, 1, 10)
    assert len(list(iter_views(seq3, "crop9", pad_value=[0.0]))) == 4
    model = nn.Linear(10, 3)
    assert tta_logits(model, x, "flip_crop25", pad_value=[0.0], batch_size=1).shape == (2, 3)


def test_strategy_names():
    for good in ("flip", "crop25", "crop81", "flip_crop25", "flip_crop81", "crop9", "crop4"):
        assert tta_names_problem([good]) is None
    for bad in ("crop24", "crop1", "flipcrop25", "crop", "mirror", "crop025"):
        problem = tta_names_problem([bad])
        assert problem and "crop25" in problem, bad
    assert tta_names_problem("flip") is not None
    assert tta_names_problem(["flip", "flip"]) is not None
    assert parse_strategy("flip_crop81") == parse_strategy("flip_crop81")
    assert parse_strategy("flip_crop81").per_axis == 9 and parse_strategy("flip_crop81").flip


def test_tta_settings_are_validated_at_plan_time_and_pad_dropped_without_tta():
    st = load_study("enorm")
    with pytest.raises(StudyError) as e:
        plan(st, "smoke", overrides=parse_overrides(["tta=[flip, crop26]"]))
    assert "tta" in str(e.value) and "crop25" in str(e.value) and "crop26" in str(e.value)
    specs = plan(st, "smoke")
    assert specs[0].settings.values["tta"] == [] and not specs[0].settings.has("tta.pad")
    specs = plan(st, "smoke", overrides=parse_overrides(["tta=[flip_crop25]", "tta.pad=2"]))
    assert specs[0].settings.values["tta"] == ["flip_crop25"] and specs[0].settings.values["tta.pad"] == 2
