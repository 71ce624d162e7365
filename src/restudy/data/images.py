"""Streamed image data: JPEG/PNG decoding with Pillow, the standard ImageNet crops, and
:class:`LazyImages`, a train or test split that decodes its images batch by batch.

A data set too large for memory (ImageNet: 1.28M JPEGs) keeps file paths instead of pixels.
:class:`LazyImages` stands where the engine expects an input tensor ``[N, 3, size, size]``: it has
``shape``, ``dtype``, ``device``, ``len``, ``.to(device)`` and indexing, and indexing decodes:

* ``x[idx]`` with an int64 index tensor (a training batch) and ``x[a:b]`` (an evaluation slice)
  return a float32 batch on the view's device, normalised per channel;
* without a decode-time augmentation every image gets the *eval* pipeline: resize the shorter side
  to ``resize`` (bilinear), center-crop ``size`` x ``size``;
* a view returned by :meth:`LazyImages.with_augment` gives index-tensor batches the *train*
  pipeline instead: random-resized-crop to ``size`` (area scale ``(0.08, 1)``, aspect ratio
  ``(3/4, 4/3)``, torchvision's algorithm), then a horizontal flip with probability 1/2; slices
  (evaluation) keep the eval pipeline.

The train pipeline is the augmentation ``random_resized_crop_flip`` (registered here, kind
``augment``); it draws from the run's ``augment`` stream, a fixed number of values per image
(:data:`DRAWS_PER_IMAGE`) whatever the image sizes, in batch order, on the main thread, so a batch
is bit-identical for the same generator state and thread count. Decoding and resizing run on a
few threads (Pillow releases the GIL); they do not draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError, RestudyError
from ..plugins import register

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)
ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before its center-crop fallback
# Per image: ATTEMPTS x (area, log-ratio, top, left) uniforms, then one for the flip.
DRAWS_PER_IMAGE = 4 * ATTEMPTS + 1

Box = tuple[int, int, int, int]  # top, left, height, width


# --------------------------------------------------------------------------- pure functions


def decode(path: str | Path) -> Image.Image:
    """The image at ``path`` as RGB (grayscale and CMYK JPEGs converted), fully read.

    Raises:
        DataError: the file is missing or not an image Pillow can read.
    """
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot decode image: {e}", where=str(path)) from e


def center_box(height: int, width: int, size: int) -> Box:
    """The ``size`` x ``size`` box in the middle of a ``height`` x ``width`` image (torchvision's
    rounding: the top-left corner is ``round((H - size) / 2)``)."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size


def eval_image(img: Image.Image, size: int, resize: int) -> np.ndarray:
    """The eval pipeline: shorter side resized to ``resize`` (bilinear), center crop ``size``.

    Returns:
        uint8 ``[size, size, 3]``.
    """
    w, h = img.size
    if w <= h:
        nw, nh = resize, max(1, int(resize * h / w))
    else:
        nw, nh = max(1, int(resize * w / h)), resize
    top, left, ch, cw = center_box(nh, nw, size)
    out = img.resize((nw, nh), Image.Resampling.BILINEAR) if (nw, nh) != (w, h) else img
    return np.asarray(out.crop((left, top, left + cw, top + ch)), dtype=np.uint8)


def resized_crop_box(
    height: int,
    width: int,
    u: Sequence[float],
    scale: tuple[float, float] = SCALE,
    ratio: tuple[float, float] = RATIO,
) -> Box:
    """The box random-resized-crop takes from a ``height`` x ``width`` image, from uniforms ``u``.

    torchvision's algorithm: up to :data:`ATTEMPTS` times draw an area fraction in ``scale`` and a
    log-uniform aspect ratio in ``ratio``; the first box that fits is placed uniformly; if none
    fits, the largest box of the clamped ratio is centred. Here the uniforms are given (``u``:
    ``4 * ATTEMPTS`` values in [0, 1)) so that every image draws the same count from the stream.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for k in range(ATTEMPTS):
        ua, ur, ut, ul = u[4 * k : 4 * k + 4]
        target = area * (scale[0] + (scale[1] - scale[0]) * ua)
        aspect = math.exp(log_lo + (log_hi - log_lo) * ur)
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return min(int(ut * (height - h + 1)), height - h), min(int(ul * (width - w + 1)), width - w), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def train_image(img: Image.Image, size: int, u: Sequence[float]) -> np.ndarray:
    """The train pipeline on one image: random-resized-crop to ``size`` (bilinear), then a flip
    when ``u[-1] < 0.5``; ``u`` holds :data:`DRAWS_PER_IMAGE` uniforms.

    Returns:
        uint8 ``[size, size, 3]``.
    """
    w, h = img.size
    top, left, ch, cw = resized_crop_box(h, w, u[:-1])
    out = np.asarray(
        img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch)), dtype=np.uint8
    )
    return out[:, ::-1] if u[-1] < 0.5 else out


def to_batch(
    pixels: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float], device: torch.device | str
) -> torch.Tensor:
    """uint8 ``[H, W, 3]`` images to one float32 batch ``[N, 3, H, W]`` on ``device``, on the
    [0, 1] scale, normalised per channel. The uint8 pixels travel to the device (4x fewer bytes)."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(pixels))).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return x.sub_(m).div_(s).contiguous()


# --------------------------------------------------------------------------- decode-time augmentation


class DecodeAugment:
    """An augmentation applied while a streamed data set decodes (the train pipeline).

    The training loop hands it to its inputs once, before the first batch (:meth:`bind`); the
    loop then applies no batch augmentation of its own. Called on a tensor batch it refuses: the
    crop is taken from the original image, which an in-memory batch no longer has.
    """

    at_decode = True

    def __init__(self, generator: torch.Generator, name: str) -> None:
        self.generator = generator
        self.name = name

    def uniforms(self, n: int) -> np.ndarray:
        """``[n, DRAWS_PER_IMAGE]`` uniforms from the generator (one draw, on its device)."""
        u = torch.rand(n, DRAWS_PER_IMAGE, generator=self.generator, device=self.generator.device)
        return u.double().cpu().numpy()

    def bind(self, x: object) -> LazyImages:
        """``x`` as a view applying this augmentation while decoding training batches.

        Raises:
            RestudyError: ``x`` is an in-memory tensor, not a streamed image data set.
        """
        if not isinstance(x, LazyImages):
            raise self._refuse(x)
        return x.with_augment(self)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise self._refuse(x)

    def _refuse(self, x: object) -> RestudyError:
        return RestudyError(
            f"augment '{self.name}' crops the original images while decoding: it needs a streamed image "
            "data set (e.g. data: imagenet); for in-memory images use flip or flip_crop",
            where="augment",
            got=type(x).__name__,
        )


@register("augment", "random_resized_crop_flip")
def random_resized_crop_flip(generator: torch.Generator, pad: int) -> DecodeAugment:
    """Random-resized-crop (scale (0.08, 1), ratio (3/4, 4/3)) then horizontal flip, taken from the
    original images of a streamed data set while they are decoded (``pad`` is not used)."""
    return DecodeAugment(generator, "random_resized_crop_flip")


# --------------------------------------------------------------------------- the lazy split


@dataclass(frozen=True, eq=False)
class LazyImages:
    """A split of image files that decodes batch by batch, standing in for an input tensor.

    Attributes:
        paths: the image files, in split order.
        size: side of the square images a batch holds.
        resize: shorter side before the center crop of the eval pipeline.
        mean, std: per-channel normalisation on the [0, 1] pixel scale.
        device: where batches are put.
        augment: the decode-time augmentation of index-tensor batches, or None (eval pipeline).
        workers: decoding threads.
    """

    paths: tuple[str, ...]
    size: int
    resize: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    device: torch.device = torch.device("cpu")
    augment: DecodeAugment | None = None
    workers: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.size <= self.resize:
            raise DataError(
                "image sizes must satisfy 1 <= size <= resize", got={"size": self.size, "resize": self.resize}
            )

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), 3, self.size, self.size))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def ndim(self) -> int:
        return 4

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.paths)

    def to(self, device: torch.device | str) -> LazyImages:
        """A view decoding onto ``device``."""
        return replace(self, device=torch.device(device))

    def head(self, n: int) -> LazyImages:
        """A view of the first ``n`` images, still decoded batch by batch (``self[:n]`` would
        decode them all at once: 6 GB for 10,000 ImageNet images)."""
        return replace(self, paths=self.paths[:n])

    def with_augment(self, augment: DecodeAugment | None) -> LazyImages:
        """A view whose index-tensor batches get ``augment`` (None: the eval pipeline)."""
        return replace(self, augment=augment)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        if isinstance(index, slice):
            rows, train = range(len(self.paths))[index], False
        elif isinstance(index, torch.Tensor) and index.dim() == 1 and not index.is_floating_point():
            rows, train = index.tolist(), self.augment is not None
        else:
            raise TypeError(f"LazyImages takes a slice or a 1-D int64 index tensor, not {type(index).__name__}")
        return self.batch([self.paths[i] for i in rows], train)

    def batches(self, order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        """The batches ``self[order[i : i + batch_size]]`` in turn, each decoded by a background
        thread while the one before trains (one batch ahead). One thread decodes them in order, so
        the augmentation's draws are those of decoding them one by one: the same batches, bit for
        bit. Closing the iterator early (a diverged run) waits for the batch in progress and
        decodes no further one."""
        return self._ahead([order[i : i + batch_size] for i in range(0, int(order.shape[0]), batch_size)])

    def eval_batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """The split in order through the eval pipeline, ``batch_size`` images a batch, each
        decoded while the one before is evaluated (the batches ``self[i : i + batch_size]``)."""
        return self._ahead([slice(i, i + batch_size) for i in range(0, len(self.paths), batch_size)])

    def _ahead(self, chunks: Sequence[torch.Tensor | slice]) -> Iterator[torch.Tensor]:
        """``self[chunk]`` for each chunk in turn, one decoded ahead by one background thread."""
        with ThreadPoolExecutor(1) as ahead:
            pending = ahead.submit(self.__getitem__, chunks[0]) if chunks else None
            for k in range(len(chunks)):
                assert pending is not None
                batch = pending.result()
                pending = ahead.submit(self.__getitem__, chunks[k + 1]) if k + 1 < len(chunks) else None
                yield batch

    def batch(self, paths: Sequence[str], train: bool) -> torch.Tensor:
        """The images ``paths`` as one normalised batch: the train pipeline when ``train`` (draws
        from the augmentation's generator), else the eval pipeline."""
        if not paths:
            return torch.empty((0, 3, self.size, self.size), device=self.device)
        if train:
            assert self.augment is not None
            u = self.augment.uniforms(len(paths))  # drawn here, in order, before any thread runs
            pixels = self._map(lambda k: train_image(decode(paths[k]), self.size, u[k]), len(paths))
        else:
            pixels = self._map(lambda k: eval_image(decode(paths[k]), self.size, self.resize), len(paths))
        return to_batch(pixels, self.mean, self.std, self.device)

    def _map(self, fn: Callable[[int], np.ndarray], n: int) -> list[np.ndarray]:
        if self.workers <= 1 or n == 1:
            return [fn(k) for k in range(n)]
        with ThreadPoolExecutor(min(self.workers, n)) as pool:
            return list(pool.map(fn, range(n)))
