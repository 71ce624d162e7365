"""``"cifar10"`` and ``"cifar100"``: the official *binary* releases, read with numpy (no pickle).

Layouts under ``root`` (default: ``$RESTUDY_DATA`` or ``~/.cache/restudy/data``)::

    cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin  # record: label byte, 3072 pixels
    cifar-100-binary/train.bin, test.bin                        # record: coarse, fine, 3072 pixels

Pixels are stored channel-major (1024 red, 1024 green, 1024 blue, each row-major), which is exactly
``[3, 32, 32]``, so a file is one ``frombuffer`` and a reshape.

What is verified (``verify=True``, the default):

* every ``.bin`` file that is read has exactly the official byte count, and
* its SHA-1 matches the official file's. The Toronto site publishes only the md5 of each *archive*;
  the per-file SHA-1s of the extracted binary files are those Apache MXNet's Gluon
  ``CIFAR10``/``CIFAR100`` loaders check (the same official archives, extracted).
* The archive's md5 (the value the Toronto site publishes) is checked whenever an archive is
  downloaded or extracted (``download=True``).

``md5={"data_batch_1.bin": "..."}`` replaces the built-in table: the listed files must have those
md5s, official sizes are not enforced (only whole records), and files not listed are not
checksummed. Tests use it to load fake files written in the real format.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..plugins import register
from ..storage.safeio import file_digest
from .dataset import Dataset, maybe_flatten, normalize_channels_, split_note, subset_size

log = logging.getLogger(__name__)

PIXELS = 3 * 32 * 32
BASE_URL = "https://www.cs.toronto.edu/~kriz/"
NORMALIZE_MODES = ("train_stats", "fixed", "none")
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class CifarSpec:
    """Everything that differs between the CIFAR-10 and CIFAR-100 binary releases.

    Attributes:
        name: registry name.
        title: human name for messages and descriptions.
        folder: folder the archive extracts to.
        train_files: train files in split order (their concatenation is the train split).
        test_files: test files in split order.
        label_bytes: label bytes in front of each record's pixels.
        label_column: which of those bytes is the label used (CIFAR-100: 1, the fine label).
        num_classes: number of classes of that label.
        official_records: records per official file (gives the exact official byte count).
        sha1: SHA-1 of each official extracted file.
        archive: archive file name (also its name under ``BASE_URL``).
        archive_md5: md5 of the official archive, as published on the CIFAR page.
    """

    name: str
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_bytes: int
    label_column: int
    num_classes: int
    official_records: dict[str, int]
    sha1: dict[str, str]
    archive: str
    archive_md5: str

    @property
    def record_size(self) -> int:
        """Bytes per record: label byte(s) then 3072 pixel bytes."""
        return self.label_bytes + PIXELS

    @property
    def url(self) -> str:
        """Where the official archive is downloaded from."""
        return BASE_URL + self.archive

    @property
    def files(self) -> tuple[str, ...]:
        """All data files, train first."""
        return self.train_files + self.test_files


CIFAR10 = CifarSpec(
    name="cifar10",
    title="CIFAR-10",
    folder="cifar-10-batches-bin",
    train_files=tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    test_files=("test_batch.bin",),
    label_bytes=1,
    label_column=0,
    num_classes=10,
    official_records={**{f"data_batch_{i}.bin": 10000 for i in range(1, 6)}, "test_batch.bin": 10000},
    sha1={
        "data_batch_1.bin": "aadd24acce27caa71bf4b10992e9e7b2d74c2540",
        "data_batch_2.bin": "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795",
        "data_batch_3.bin": "1dd00a74ab1d17a6e7d73e185b69dbf31242f295",
        "data_batch_4.bin": "aab85764eb3584312d3c7f65fd2fd016e36a258e",
        "data_batch_5.bin": "26e2849e66a845b7f1e4614ae70f4889ae604628",
        "test_batch.bin": "67eb016db431130d61cd03c7ad570b013799c88c",
    },
    archive="cifar-10-binary.tar.gz",
    archive_md5="c32a1d4ab5d03f1284b67883e8d87530",
)

CIFAR100 = CifarSpec(
    name="cifar100",
    title="CIFAR-100",
    folder="cifar-100-binary",
    train_files=("train.bin",),
    test_files=("test.bin",),
    label_bytes=2,
    label_column=1,
    num_classes=100,
    official_records={"train.bin": 50000, "test.bin": 10000},
    sha1={
        "train.bin": "e207cd2e05b73b1393c74c7f5e7bea451d63e08e",
        "test.bin": "8fb6623e830365ff53cf14adec797474f5478006",
    },
    archive="cifar-100-binary.tar.gz",
    archive_md5="03b5dce01913d631647c71ecec9e9cb8",
)

# Files whose checksum already matched in this process, keyed by (path, size, mtime, algo,
# expected): hashing 180 MB on every load of a multi-seed study would be wasted time.
_VERIFIED: set[tuple[str, int, int, str, str]] = set()


# --- locating and fetching the files -----------------------------------------------------------


def default_root() -> Path:
    """``$RESTUDY_DATA`` if set, else ``~/.cache/restudy/data``."""
    return Path(os.environ.get("RESTUDY_DATA") or "~/.cache/restudy/data").expanduser()


def _data_dir(spec: CifarSpec, root: Path) -> Path:
    """The folder holding the ``.bin`` files; ``root`` may also name that folder itself."""
    if not (root / spec.folder).is_dir() and root.name == spec.folder:
        return root
    return root / spec.folder


def _missing_error(spec: CifarSpec, root: Path, path: Path) -> DataError:
    """The error for a missing file, saying where it was looked for and how to get it."""
    return DataError(
        f"{spec.title} file '{path.name}' is missing under {root}; download {spec.url} and "
        f"extract it into {root} (giving {spec.folder}/), or pass download=True "
        f"(on the command line: data.download=true), or set "
        f"RESTUDY_DATA to the folder that holds {spec.folder}/",
        where=str(path),
    )


def _fetch(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest`` via a temporary file, so a broken transfer leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            while block := resp.read(1 << 20):
                f.write(block)
    except (urllib.error.URLError, OSError) as e:  # URLError covers "no network" and HTTP errors
        tmp.unlink(missing_ok=True)
        raise DataError(
            f"cannot download {url} (no network access?): {e}; download it by hand and place it at {dest}",
            where=str(dest),
        ) from e
    os.replace(tmp, dest)


def _check_tar_member(member: tarfile.TarInfo, dest: Path, archive: Path) -> None:
    """Refuse members that could write outside ``dest``: absolute paths, ``..``, links, devices."""
    path = PurePosixPath(member.name)
    unsafe = (
        path.is_absolute()
        or member.name.startswith("\\")
        or ".." in path.parts
        or re.match(r"^[A-Za-z]:", member.name) is not None
    )
    if unsafe:
        raise DataError(
            "refusing to extract an archive member with an absolute or parent path", where=str(archive), got=member.name
        )
    if not (member.isfile() or member.isdir()):
        # A data archive needs no links; a symlink could redirect a later member outside dest.
        raise DataError(
            "refusing to extract an archive member that is not a file or folder", where=str(archive), got=member.name
        )
    if not (dest / member.name).resolve().is_relative_to(dest.resolve()):
        raise DataError(
            "refusing to extract an archive member outside the target folder", where=str(archive), got=member.name
        )


def safe_extract_tar(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Extract a tar archive into ``dest`` after checking *every* member first.

    Nothing is written if any member is unsafe (see :func:`_check_tar_member`).

    Raises:
        DataError: the archive is unreadable or holds an unsafe member.
    """
    archive, dest = Path(archive), Path(dest)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                _check_tar_member(m, dest, archive)
            dest.mkdir(parents=True, exist_ok=True)
            # Python's own "data" filter (3.11.4+) is a second line of defence.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **extra)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot extract the archive: {e}", where=str(archive)) from e


def _verify_archive(spec: CifarSpec, archive: Path, md5: dict[str, str] | None) -> None:
    """Check the archive's md5 (the published one, or ``md5[spec.archive]`` if overridden)."""
    expected = (md5 or {}).get(spec.archive, spec.archive_md5)
    actual = file_digest(archive, "md5")
    if actual != expected:
        raise DataError(
            f"checksum mismatch for '{archive.name}': expected md5 {expected}, "
            f"got {actual}; delete it and download again",
            where=str(archive),
        )


def _download_and_extract(spec: CifarSpec, root: Path, md5: dict[str, str] | None) -> None:
    """Fetch the archive (unless already in ``root``), check its md5, extract it into ``root``."""
    archive = root / spec.archive
    if not archive.is_file():
        _fetch(spec.url, archive)
    _verify_archive(spec, archive, md5)
    log.info("extracting %s into %s", archive, root)
    safe_extract_tar(archive, root)


# --- checking and reading the files ------------------------------------------------------------


def _check_md5_override(spec: CifarSpec, md5: dict[str, str] | None) -> None:
    """Reject override keys that name no file of this dataset, and values that are not md5s."""
    if md5 is None:
        return
    allowed = spec.files + (spec.archive,)
    for name, digest in md5.items():
        if name not in allowed:
            raise DataError(
                f"md5 override names a file that {spec.title} does not have",
                where=f"dataset '{spec.name}'",
                got=name,
                allowed=allowed,
            )
        if not isinstance(digest, str) or not _MD5_RE.match(digest):
            raise DataError(
                "md5 override values must be 32 lower-case hex digits", where=f"dataset '{spec.name}'", got=digest
            )


def _count_records(spec: CifarSpec, path: Path, official_size: bool) -> int:
    """Records in ``path``; checks whole records and, if asked, the official byte count."""
    size = path.stat().st_size
    if official_size:
        expected = spec.official_records[path.name] * spec.record_size
        if size != expected:
            raise DataError(
                f"'{path.name}' has {size} bytes, the official file has {expected}: "
                "it is truncated or not the official file",
                where=str(path),
            )
    if size == 0 or size % spec.record_size:
        raise DataError(
            f"'{path.name}' is truncated or corrupt: {size} bytes is not a whole "
            f"number of {spec.record_size}-byte records",
            where=str(path),
        )
    return size // spec.record_size


def _verify_checksum(path: Path, algo: str, expected: str) -> None:
    """Raise :class:`DataError` naming the file, expected and actual digest on a mismatch."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, algo, expected)
    if key in _VERIFIED:
        return
    actual = file_digest(path, algo)
    if actual != expected:
        raise DataError(
            f"checksum mismatch for '{path.name}': expected {algo} {expected}, "
            f"got {actual}; the file is corrupt or not the official one",
            where=str(path),
        )
    _VERIFIED.add(key)


def _expected_digest(spec: CifarSpec, name: str, verify: bool, md5: dict[str, str] | None) -> tuple[str, str] | None:
    """``(algo, hexdigest)`` a file must match, or ``None`` when it is not checksummed."""
    if not verify:
        return None
    if md5 is not None:
        return ("md5", md5[name]) if name in md5 else None
    return "sha1", spec.sha1[name]


def _read_file(spec: CifarSpec, path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """First ``count`` records of ``path``: uint8 pixels ``[count, 3, 32, 32]``, int64 labels."""
    records = np.fromfile(path, dtype=np.uint8, count=count * spec.record_size)
    records = records.reshape(count, spec.record_size)
    labels = records[:, spec.label_column].astype(np.int64)
    if labels.max(initial=0) >= spec.num_classes:
        raise DataError(
            f"'{path.name}' holds a label >= {spec.num_classes}: not a {spec.title} file",
            where=str(path),
            got=int(labels.max()),
        )
    return records[:, spec.label_bytes :].reshape(count, 3, 32, 32), labels


def _read_split(
    spec: CifarSpec,
    folder: Path,
    root: Path,
    files: Sequence[str],
    split: str,
    n: int | None,
    verify: bool,
    md5: dict[str, str] | None,
) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """Read the first ``n`` records of a split (the concatenation of ``files``).

    Only the files needed for ``n`` records are read and checksummed; every file of the split must
    exist and be whole, since the split's size depends on all of them.

    Returns:
        ``(pixels uint8 [k, 3, 32, 32], labels int64 [k], records in the whole split,
        names of the files read without a checksum)``.
    """
    paths = [folder / f for f in files]
    for p in paths:
        if not p.is_file():
            raise _missing_error(spec, root, p)
    official_size = verify and md5 is None
    counts = [_count_records(spec, p, official_size) for p in paths]
    k = subset_size(n, sum(counts), split, spec.name)
    pixels, labels, unchecked, remaining = [], [], [], k
    for p, count in zip(paths, counts):
        if remaining == 0:
            break
        digest = _expected_digest(spec, p.name, verify, md5)
        if digest is None:
            unchecked.append(p.name)
        else:
            _verify_checksum(p, *digest)
        x, y = _read_file(spec, p, min(count, remaining))
        pixels.append(x)
        labels.append(y)
        remaining -= len(y)
    return np.concatenate(pixels), np.concatenate(labels), sum(counts), unchecked


# --- normalisation ----------------------------------------------------------------------------


def channel_stats(pixels: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std of uint8 ``[N, C, H, W]`` pixels, on the [0, 1] scale.

    Computed exactly from a 256-bin histogram per channel: fast, light on memory, and independent
    of float32 summation order.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(pixels.shape[1]):
        counts = np.bincount(pixels[:, c].ravel(), minlength=256).astype(np.float64)
        p = counts / counts.sum()
        mean = float(p @ values)
        means.append(mean)
        stds.append(float(np.sqrt(max(p @ (values - mean) ** 2, 0.0))))
    return means, stds


def _normalization(
    normalize: str, pixels: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None, dataset: str
) -> tuple[dict[str, Any], str]:
    """The normalisation to apply and its description, per ``normalize`` mode."""
    where = f"dataset '{dataset}'"
    if normalize == "none":
        return {"kind": "none", "note": "pixels scaled to [0, 1]"}, "pixels scaled to [0, 1], no normalisation"
    if normalize == "train_stats":
        m, s = channel_stats(pixels)
        if min(s) <= 0:
            raise DataError("a channel is constant over the train subset; cannot standardise", where=where, got=s)
        return {"mean": m, "std": s, "computed_on": "train"}, "per-channel normalisation with train-split statistics"
    if normalize == "fixed":
        if mean is None or std is None or len(mean) != 3 or len(std) != 3 or min(float(v) for v in std) <= 0:
            raise DataError(
                "normalize='fixed' needs mean and std: 3 values each, std > 0 (on the [0, 1] pixel scale)",
                where=where,
                got=(mean, std),
            )
        m, s = [float(v) for v in mean], [float(v) for v in std]
        return {
            "mean": m,
            "std": s,
            "computed_on": "fixed",
        }, f"per-channel normalisation with fixed mean {tuple(m)}, std {tuple(s)}"
    raise DataError("unknown normalize mode", where=where, got=normalize, allowed=NORMALIZE_MODES)


def _to_float(pixels: np.ndarray, norm: dict[str, Any]) -> torch.Tensor:
    """uint8 pixels to float32 on [0, 1], then normalised per channel if ``norm`` says so."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).float().div_(255.0)
    if "mean" in norm:
        normalize_channels_(x, norm["mean"], norm["std"])
    return x


# --- the loader --------------------------------------------------------------------------------


def load_cifar(
    spec: CifarSpec,
    root: str | os.PathLike[str] | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    flatten: bool = False,
    normalize: str = "train_stats",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    download: bool = False,
    verify: bool = True,
    md5: dict[str, str] | None = None,
) -> Dataset:
    """Load a CIFAR binary release described by ``spec`` (see :func:`cifar10` for the arguments).

    Raises:
        DataError: a file is missing, truncated, fails its checksum, or an argument is invalid.
    """
    if normalize not in NORMALIZE_MODES:
        raise DataError(
            "unknown normalize mode", where=f"dataset '{spec.name}'", got=normalize, allowed=NORMALIZE_MODES
        )
    _check_md5_override(spec, md5)
    root_path = Path(root).expanduser() if root is not None else default_root()
    folder = _data_dir(spec, root_path)
    if download and not all((folder / f).is_file() for f in spec.files):
        _download_and_extract(spec, root_path, md5)
        folder = _data_dir(spec, root_path)

    x_tr, y_tr, n_tr_all, unchecked_tr = _read_split(
        spec, folder, root_path, spec.train_files, "train", n_train, verify, md5
    )
    x_te, y_te, n_te_all, unchecked_te = _read_split(
        spec, folder, root_path, spec.test_files, "test", n_test, verify, md5
    )
    norm, norm_note = _normalization(normalize, x_tr, mean, std, spec.name)
    x_train, x_test = _to_float(x_tr, norm), _to_float(x_te, norm)

    unchecked = unchecked_tr + unchecked_te
    if unchecked:
        log.warning("%s: files read without a checksum: %s", spec.title, ", ".join(unchecked))
    checked = f"not checksum-verified: {', '.join(unchecked)}" if unchecked else "checksums verified"
    description = (
        f"{spec.title} (binary), {split_note('train', len(y_tr), n_tr_all)}, "
        f"{split_note('test', len(y_te), n_te_all)}; {norm_note}; {checked}"
    )
    return Dataset(
        name=spec.name,
        x_train=maybe_flatten(x_train, flatten),
        y_train=torch.from_numpy(y_tr),
        x_test=maybe_flatten(x_test, flatten),
        y_test=torch.from_numpy(y_te),
        num_classes=spec.num_classes,
        idx_train=torch.arange(len(y_tr)),
        idx_test=torch.arange(len(y_te)),
        description=description,
        normalization=norm,
    )


def files_needed(spec: CifarSpec) -> str:
    """Where a CIFAR release's files are read from and fetched (the report's next steps)."""
    return (
        f"{spec.name}: {spec.folder}/ with {', '.join(spec.files)} under $RESTUDY_DATA "
        f"(default ~/.cache/restudy/data), from {spec.url}"
    )


@register("dataset", "cifar10")
def cifar10(
    root: str | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    flatten: bool = False,
    normalize: str = "train_stats",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    download: bool = False,
    verify: bool = True,
    md5: dict[str, str] | None = None,
) -> Dataset:
    """CIFAR-10 from ``root/cifar-10-batches-bin`` (50000 train, 10000 test, 10 classes).

    Args:
        root: data folder (default ``$RESTUDY_DATA`` or ``~/.cache/restudy/data``); it may also
            be the ``cifar-10-batches-bin`` folder itself.
        n_train: keep the first ``n_train`` train examples in file order (``None``: all).
        n_test: keep the first ``n_test`` test examples (``None``: all).
        flatten: return ``[N, 3072]`` instead of ``[N, 3, 32, 32]``.
        normalize: ``"train_stats"`` (per-channel mean/std of the train subset used),
            ``"fixed"`` (the given ``mean``/``std``, on the [0, 1] pixel scale; e.g. the ENorm
            paper's mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010)) or ``"none"``
            (pixels on [0, 1]).
        mean: per-channel means for ``normalize="fixed"``.
        std: per-channel standard deviations for ``normalize="fixed"``.
        download: if files are missing, download the official archive (md5-checked) and extract
            it into ``root``. Never happens unless asked.
        verify: check each file read against the official size and SHA-1 (see module docs).
        md5: expected md5 per file name, replacing the built-in checksums (for fake/test files).

    Returns:
        The dataset; inputs float32 ``[N, 3, 32, 32]`` (or flattened), labels int64.
    """
    return load_cifar(
        CIFAR10,
        root=root,
        n_train=n_train,
        n_test=n_test,
        flatten=flatten,
        normalize=normalize,
        mean=mean,
        std=std,
        download=download,
        verify=verify,
        md5=md5,
    )


@register("dataset", "cifar100")
def cifar100(
    root: str | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    flatten: bool = False,
    normalize: str = "train_stats",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    download: bool = False,
    verify: bool = True,
    md5: dict[str, str] | None = None,
) -> Dataset:
    """CIFAR-100 from ``root/cifar-100-binary`` (50000 train, 10000 test, 100 fine classes).

    The fine label (the second label byte) is used. Arguments are as for :func:`cifar10`
    (``root`` may also be the ``cifar-100-binary`` folder itself).
    """
    return load_cifar(
        CIFAR100,
        root=root,
        n_train=n_train,
        n_test=n_test,
        flatten=flatten,
        normalize=normalize,
        mean=mean,
        std=std,
        download=download,
        verify=verify,
        md5=md5,
    )


# What each data set reads, declared by the part (the report's next steps name the files a paper-scale
# run needs from this).
cifar10.files_needed = files_needed(CIFAR10)  # type: ignore[attr-defined]
cifar100.files_needed = files_needed(CIFAR100)  # type: ignore[attr-defined]


cifar100.documented_by = cifar10  # type: ignore[attr-defined]  # the same arguments
