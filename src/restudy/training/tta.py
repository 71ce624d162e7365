"""Test-time augmentation: average a model's logits over fixed views of each test input.

Re-implemented after Summers & Dinneen (ICML 2021), their code's ``evaluate.py``, strategy ``'tta'``:

* the **logits** (not probabilities) of all views are averaged, and the original view is always
  one of them;
* ``flip``: original + horizontal mirror (2 views);
* ``crop25``: the normalised image is padded by 4 on each side with the normalised value of a
  black pixel (zero in raw pixel space, like the training RandomCrop), then every 32×32 crop at
  offsets {0, 2, 4, 6, 8}² is taken: 25 crops + original = 26 views. Offset (4, 4) is the original
  image, which is therefore counted twice, as in the original;
* ``crop81``: offsets 0..8 (stride 1): 81 + 1 = 82 views;
* ``flip_crop25`` / ``flip_crop81``: original + the crops of the image and of its mirror:
  1 + 50 = 51 and 1 + 162 = 163 views.

Naming, generalised to any input size: ``cropN`` with ``N = k²`` (k ≥ 2) takes ``k`` offsets per
spatial axis, ``0, s, 2s, ..., 2·pad`` with stride ``s = 2·pad/(k − 1)``, which must be a whole
number. With the default ``pad = 4`` this gives the paper's ``crop25`` (stride 2) and ``crop81``
(stride 1), and also ``crop9`` (stride 4) and ``crop4`` (offsets {0, 8}). For small images use a
smaller pad, e.g. 8×8 digits with ``pad = 1``: ``crop9`` = offsets {0, 1, 2}² (stride 1) and
``crop4`` = offsets {0, 2}² (stride 2). A ``flip_`` prefix adds the same crops of the mirror.

1-D analogues (inputs ``[N, L]`` or ``[N, C, L]``, e.g. MNIST-1D): ``flip`` reverses the sequence;
``cropN`` (still ``N = k²``, so one name means the same offsets everywhere) takes the ``k`` shifts
at offsets ``0, s, ..., 2·pad`` of the sequence padded by ``pad`` at both ends, so ``crop25`` is
1 + 5 views in 1-D. These are analogues chosen here, not part of the paper.

Inputs are evaluated in chunks of ``batch_size`` examples, one view at a time, so memory stays
bounded (163 views of 10,000 CIFAR images are never materialised at once). The name grammar is
torch-free so that planning can validate ``tta`` settings without importing torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import RestudyError
from ..spec.tta_strategies import EXAMPLES, TTAStrategy, num_views, parse_strategy, strategy_problem, tta_names_problem

if TYPE_CHECKING:
    import torch

__all__ = [
    "TTAStrategy",
    "parse_strategy",
    "strategy_problem",
    "tta_names_problem",
    "pad_value_from_normalization",
    "iter_views",
    "num_views",
    "tta_logits",
    "EXAMPLES",
]


def pad_value_from_normalization(normalization: dict[str, Any], channels: int) -> list[float]:
    """Per-channel normalised value of a raw 0 (a black pixel), to pad crops with.

    ``(0 − mean)/std`` per channel when ``normalization`` has ``mean``/``std`` lists of
    ``channels`` values (CIFAR, as Summers & Dinneen's ``evaluate.py`` pads); a single scalar
    mean/std (digits, MNIST-1D) is applied to every channel; data that is not standardised (no
    ``mean``/``std``, e.g. ``kind: none``) pads with 0, which is then also the raw 0.

    Raises:
        RestudyError: the mean/std lists have neither 1 nor ``channels`` values, or a std is 0.
    """
    if "mean" not in normalization or "std" not in normalization:
        return [0.0] * channels
    mean, std = list(normalization["mean"]), list(normalization["std"])
    if len(mean) == 1 and len(std) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise RestudyError(
            "cannot derive the TTA pad value from the data's normalisation",
            where="tta",
            got=normalization,
            allowed=f"1 or {channels} values, std > 0",
        )
    return [(0.0 - m) / s for m, s in zip(mean, std)]


def _spatial_dims(x: torch.Tensor) -> int:
    """2 for images ``[N, C, H, W]``, 1 for sequences ``[N, L]`` or ``[N, C, L]``."""
    if x.dim() == 4:
        return 2
    if x.dim() in (2, 3):
        return 1
    raise RestudyError("TTA needs inputs [N, C, H, W], [N, C, L] or [N, L]", where="tta", got=tuple(x.shape))


def _pad(x: torch.Tensor, pad: int, pad_value: Sequence[float]) -> torch.Tensor:
    """``x`` padded by ``pad`` on both sides of every spatial axis with a per-channel constant.

    The interior is copied, not recomputed, so a crop at offset ``pad`` equals ``x`` bitwise.
    """
    import torch

    dims = _spatial_dims(x)
    shape = list(x.shape)
    for d in range(x.dim() - dims, x.dim()):
        shape[d] += 2 * pad
    value = torch.tensor(list(pad_value), dtype=x.dtype, device=x.device)
    if x.dim() == 2:
        if value.numel() != 1:
            raise RestudyError("inputs [N, L] take one pad value", where="tta", got=list(pad_value))
        out = value.reshape(1, 1).expand(shape).clone()
        out[:, pad : pad + x.shape[1]] = x
        return out
    if value.numel() != x.shape[1]:
        raise RestudyError(
            "one pad value per channel is needed", where="tta", got=list(pad_value), allowed=f"{x.shape[1]} values"
        )
    out = value.reshape((1, -1) + (1,) * dims).expand(shape).clone()
    interior = (slice(None), slice(None)) + tuple(slice(pad, pad + n) for n in x.shape[2:])
    out[interior] = x
    return out


def _crops(padded: torch.Tensor, offsets: list[int], size: Sequence[int]) -> Iterator[torch.Tensor]:
    """Every crop of ``padded`` of spatial ``size`` at the offsets (row-major over axes)."""
    if len(size) == 2:
        h, w = size
        for dy in offsets:
            for dx in offsets:
                yield padded[..., dy : dy + h, dx : dx + w]
    else:
        (n,) = size
        for d in offsets:
            yield padded[..., d : d + n]


def iter_views(x: torch.Tensor, strategy: str, *, pad_value: Sequence[float], pad: int = 4) -> Iterator[torch.Tensor]:
    """The views of ``x`` that ``strategy`` averages, in summation order.

    Order: the original; then (crop strategies) the crops of ``x`` at offsets (dy, dx) in
    row-major order; then, with ``flip``, the mirror (``flip``) or the crops of the mirror
    (``flip_cropN``). Mirroring reverses the last axis (width, or the sequence in 1-D).

    Args:
        x: a chunk of inputs ``[N, C, H, W]``, ``[N, C, L]`` or ``[N, L]``.
        strategy: a strategy name.
        pad_value: per-channel pad value (one value for ``[N, L]``).
        pad: padding on each side of every spatial axis, for crops.
    """
    s = parse_strategy(strategy)
    dims = _spatial_dims(x)
    yield x
    if not s.per_axis:
        yield x.flip(-1)
        return
    offsets = s.offsets(pad)
    padded = _pad(x, pad, pad_value)
    size = tuple(x.shape[-dims:])
    yield from _crops(padded, offsets, size)
    if s.flip:
        # The pad is the same constant on both sides, so mirroring the padded input equals
        # padding the mirror.
        yield from _crops(padded.flip(-1), offsets, size)


def tta_logits(
    model: torch.nn.Module,
    x: torch.Tensor,
    strategy: str,
    *,
    pad_value: Sequence[float],
    batch_size: int = 1024,
    memory_format: torch.memory_format | None = None,
    pad: int = 4,
) -> torch.Tensor:
    """Mean of the model's logits over the views of ``strategy`` (Summers & Dinneen's ``evaluate.py``).

    The model runs in eval mode (its mode is restored afterwards), on chunks of ``batch_size``
    inputs and one view at a time; logits are summed in float32 in the order of
    :func:`iter_views` and divided by the number of views.

    Args:
        model: the classifier.
        x: inputs ``[N, C, H, W]`` (images) or ``[N, C, L]`` / ``[N, L]`` (1-D analogues).
        strategy: e.g. ``"flip"``, ``"crop25"``, ``"flip_crop81"``.
        pad_value: per-channel pad value, see :func:`pad_value_from_normalization`.
        batch_size: inputs per forward pass.
        memory_format: layout for 4-D views (None: contiguous).
        pad: crop padding on each side.

    Returns:
        Float32 logits ``[N, num_classes]``.
    """
    import torch

    parse_strategy(strategy).offsets(pad)  # fail before any forward pass on a bad pad
    fmt = torch.contiguous_format if memory_format is None else memory_format
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            chunks = [
                _chunk_mean(model, x[i : i + batch_size], strategy, pad_value, pad, fmt)
                for i in range(0, x.shape[0], batch_size)
            ]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def _chunk_mean(
    model: torch.nn.Module,
    x: torch.Tensor,
    strategy: str,
    pad_value: Sequence[float],
    pad: int,
    fmt: torch.memory_format,
) -> torch.Tensor:
    """Mean logits over the views of one chunk."""
    total, count = None, 0
    for view in iter_views(x, strategy, pad_value=pad_value, pad=pad):
        if view.dim() == 4:
            view = view.contiguous(memory_format=fmt)
        else:
            view = view.contiguous()
        out = model(view).float()
        total = out if total is None else total + out
        count += 1
    assert total is not None
    return total / count
