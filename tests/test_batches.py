"""Batch augmentation: flips and crops drawn only from the augmentation stream's generator."""

from __future__ import annotations

import pytest
import torch

from restudy import plugins
from restudy.errors import RestudyError
from restudy.training.batches import make_augment, random_crop, random_flip


def _images(n: int = 16) -> torch.Tensor:
    return torch.arange(n * 2 * 5 * 6, dtype=torch.float32).reshape(n, 2, 5, 6)


def _in_memory(name: str) -> bool:
    """Batch augmentations of in-memory tensors (decode-time ones need a streamed data set and are
    tested with it, in test_imagenet.py)."""
    return name != "none" and not getattr(make_augment(name, torch.Generator(), 4), "at_decode", False)


@pytest.mark.parametrize("name", [a for a in plugins.names("augment") if _in_memory(a)])
def test_same_generator_seed_same_batch_and_the_global_rng_is_untouched(name: str):
    x = _images()
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = make_augment(name, torch.Generator().manual_seed(7), 4)(x)
    b = make_augment(name, torch.Generator().manual_seed(7), 4)(x)
    c = make_augment(name, torch.Generator().manual_seed(8), 4)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a.shape == x.shape


def test_a_decode_time_augmentation_refuses_in_memory_images_with_the_alternatives():
    with pytest.raises(RestudyError, match="streamed image data set.*flip or flip_crop"):
        make_augment("random_resized_crop_flip", torch.Generator(), 4)(_images())


def test_none_is_no_augmentation():
    assert make_augment("none", torch.Generator(), 4) is None


def test_flip_mirrors_some_images_and_leaves_the_others():
    x = _images(64)
    y = random_flip(x, torch.Generator().manual_seed(0))
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 16 < sum(flipped) < 48


def test_crop_translates_with_zero_fill_by_at_most_pad():
    x = torch.ones(32, 1, 6, 6)
    y = random_crop(x, torch.Generator().manual_seed(0), pad=2)
    assert y.shape == x.shape
    zeros_per_image = (y == 0).flatten(1).sum(1)
    assert zeros_per_image.max() <= 6 * 6 - 4 * 4  # shifted by <= 2 in each direction
    assert (zeros_per_image > 0).any()
    assert torch.equal(random_crop(x, torch.Generator(), pad=0), x)


def test_unknown_augmentation_and_non_image_input_are_errors():
    with pytest.raises(RestudyError) as info:
        make_augment("mixup", torch.Generator(), 4)
    assert "'mixup'" in str(info.value) and "flip_crop" in str(info.value)
    with pytest.raises(RestudyError, match=r"\(N, C, H, W\)"):
        make_augment("flip", torch.Generator(), 4)(torch.ones(4, 10))
