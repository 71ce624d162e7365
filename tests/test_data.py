"""Tests of restudy.data: every registered dataset, and the CIFAR binary loader on fake files.

CIFAR is tested on small fake files written in the real binary format, passing their true md5s
through the loader's ``md5`` override, so the real reading/verifying code runs without the data.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from restudy import plugins
from restudy.data import Dataset, load_dataset
from restudy.data import cifar as cifar_mod
from restudy.data import mnist1d as mnist1d_mod
from restudy.errors import DataError, RestudyError

TRAIN_RECORDS = 8  # per fake CIFAR-10 train batch; 5 batches -> 40 train examples
TEST_RECORDS = 6


# --- fake CIFAR files ---------------------------------------------------------------------------


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_fake_cifar(root: Path, spec: cifar_mod.CifarSpec, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write every file of ``spec`` under ``root/spec.folder`` in the real binary format.

    Returns:
        Per file name: (label bytes ``[n, label_bytes]``, pixels ``[n, 3072]``), both uint8.
    """
    rng = np.random.default_rng(seed)
    folder = root / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for name in spec.files:
        n = TEST_RECORDS if name in spec.test_files else TRAIN_RECORDS
        if spec.name == "cifar100":
            n *= 5  # one train file, so give it as many records as CIFAR-10's five
        # Label bytes: CIFAR-100 is (coarse < 20, fine < 100); CIFAR-10 one byte < 10.
        highs = [20, 100] if spec.label_bytes == 2 else [10]
        labels = np.stack([rng.integers(0, h, n) for h in highs], axis=1).astype(np.uint8)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        np.concatenate([labels, pixels], axis=1).tofile(folder / name)
        contents[name] = (labels, pixels)
    return contents


def fake_md5s(root: Path, spec: cifar_mod.CifarSpec) -> dict[str, str]:
    return {name: _md5(root / spec.folder / name) for name in spec.files}


@pytest.fixture(params=["cifar10", "cifar100"])
def fake_cifar(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[cifar_mod.CifarSpec, Path, dict[str, Any], dict[str, str]]:
    """(spec, root, file contents, true md5s) of a fake CIFAR-10 or CIFAR-100 under tmp_path."""
    spec = cifar_mod.CIFAR10 if request.param == "cifar10" else cifar_mod.CIFAR100
    contents = write_fake_cifar(tmp_path, spec)
    return spec, tmp_path, contents, fake_md5s(tmp_path, spec)


# --- every registered dataset -------------------------------------------------------------------


def _cifar_kwargs(tmp_path: Path, name: str) -> dict[str, Any]:
    spec = cifar_mod.CIFAR10 if name == "cifar10" else cifar_mod.CIFAR100
    write_fake_cifar(tmp_path, spec)
    return {"root": str(tmp_path), "md5": fake_md5s(tmp_path, spec)}


# name -> (kwargs maker, expected input shape, number of classes, normalised with train stats)
CASES: dict[str, tuple[Callable[[Path], dict[str, Any]], tuple[int, ...], int, bool]] = {
    "synthetic": (lambda p: {"n_train": 200, "n_test": 100}, (20,), 4, False),
    "mnist1d": (lambda p: {"num_samples": 400}, (40,), 10, True),
    "digits": (lambda p: {}, (1, 8, 8), 10, True),
    "cifar10": (lambda p: _cifar_kwargs(p, "cifar10"), (3, 32, 32), 10, True),
    "cifar100": (lambda p: _cifar_kwargs(p, "cifar100"), (3, 32, 32), 100, True),
}


def test_all_datasets_registered() -> None:
    assert set(CASES) <= set(plugins.names("dataset"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_dataset_contract(name: str, tmp_path: Path) -> None:
    make_kwargs, shape, num_classes, standardised = CASES[name]
    kwargs = make_kwargs(tmp_path)
    ds = load_dataset(name, **kwargs)

    assert isinstance(ds, Dataset) and ds.name == name and ds.num_classes == num_classes
    assert ds.input_shape == shape and ds.x_test.shape[1:] == shape
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    for y, idx, x in ((ds.y_train, ds.idx_train, ds.x_train), (ds.y_test, ds.idx_test, ds.x_test)):
        assert y.dtype == idx.dtype == torch.int64
        assert len(y) == len(idx) == len(x) > 0
        assert 0 <= int(y.min()) and int(y.max()) < num_classes
        assert len(torch.unique(idx)) == len(idx) and int(idx.min()) >= 0
    assert isinstance(ds.description, str) and "\n" not in ds.description
    assert torch.isfinite(ds.x_train).all() and torch.isfinite(ds.x_test).all()

    if standardised:
        assert ds.normalization["computed_on"] == "train"
        # Per channel when the layout has channels, else over everything.
        dims = (0, 2, 3) if ds.x_train.ndim == 4 else tuple(range(ds.x_train.ndim))
        mean = ds.x_train.double().mean(dim=dims)
        std = ds.x_train.double().std(dim=dims, correction=0)
        assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
        assert torch.allclose(std, torch.ones_like(std), atol=1e-4)

    again = load_dataset(name, **kwargs)
    for field in ("x_train", "y_train", "x_test", "y_test", "idx_train", "idx_test"):
        assert torch.equal(getattr(ds, field), getattr(again, field)), field
    assert again.description == ds.description

    flat = load_dataset(name, **kwargs, flatten=True)
    assert flat.x_train.ndim == 2 and flat.x_train.shape[1] == int(np.prod(shape))
    assert torch.allclose(flat.x_train, ds.x_train.reshape(len(ds.x_train), -1))


@pytest.mark.parametrize("name", ["mnist1d", "digits", "cifar10", "cifar100"])
def test_subsets_are_prefixes(name: str, tmp_path: Path) -> None:
    kwargs = CASES[name][0](tmp_path)
    full = load_dataset(name, **kwargs)
    n_train, n_test = 20, 3  # 20 spans several fake CIFAR-10 files
    sub = load_dataset(name, **kwargs, n_train=n_train, n_test=n_test)
    assert len(sub.x_train) == n_train and len(sub.x_test) == n_test
    assert torch.equal(sub.idx_train, full.idx_train[:n_train])
    assert torch.equal(sub.y_train, full.y_train[:n_train])
    assert torch.equal(sub.idx_test, full.idx_test[:n_test])
    assert torch.equal(sub.y_test, full.y_test[:n_test])
    assert f"first {n_train} of {len(full.y_train)}" in sub.description
    with pytest.raises(DataError, match="n_train"):
        load_dataset(name, **kwargs, n_train=len(full.y_train) + 1)


def test_dataset_rejects_bad_tensors() -> None:
    good = load_dataset("synthetic", n_train=10, n_test=5)
    with pytest.raises(DataError, match="float32"):
        Dataset(
            good.name,
            good.x_train.double(),
            good.y_train,
            good.x_test,
            good.y_test,
            good.num_classes,
            good.idx_train,
            good.idx_test,
            "d",
            {},
        )
    with pytest.raises(DataError, match="out of range"):
        Dataset(
            good.name,
            good.x_train,
            good.y_train + 10,
            good.x_test,
            good.y_test,
            good.num_classes,
            good.idx_train,
            good.idx_test,
            "d",
            {},
        )


def test_bad_arguments_are_reported() -> None:
    with pytest.raises(RestudyError, match="bad arguments"):
        load_dataset("synthetic", no_such_arg=1)
    with pytest.raises(RestudyError, match="unknown dataset"):
        load_dataset("cifar1000")


# --- synthetic ----------------------------------------------------------------------------------


def test_synthetic_is_learnable() -> None:
    ds = load_dataset("synthetic")
    means = torch.stack([ds.x_train[ds.y_train == c].mean(0) for c in range(ds.num_classes)])
    pred = torch.cdist(ds.x_test, means).argmin(1)
    accuracy = (pred == ds.y_test).float().mean().item()
    assert accuracy > 0.6  # chance is 0.25


def test_synthetic_seeds_and_label_noise() -> None:
    state = torch.get_rng_state()
    a = load_dataset("synthetic", seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # the global torch RNG is not used
    assert not torch.equal(a.x_train, load_dataset("synthetic", seed=2).x_train)
    # The test set does not depend on the train size.
    assert torch.equal(a.x_test, load_dataset("synthetic", seed=1, n_train=50).x_test)

    noisy = load_dataset("synthetic", seed=1, label_noise=0.2)
    assert torch.equal(noisy.x_train, a.x_train) and torch.equal(noisy.y_test, a.y_test)
    assert int((noisy.y_train != a.y_train).sum()) == 200  # exactly 20% of 1000 are wrong
    assert "replaced" in noisy.description
    with pytest.raises(DataError, match="label_noise"):
        load_dataset("synthetic", label_noise=1.5)


# --- mnist1d ------------------------------------------------------------------------------------


def test_mnist1d_keeps_global_rng_state() -> None:
    mnist1d_mod._generate.cache_clear()  # force a real generation
    np_before, py_before = np.random.get_state(), random.getstate()
    ds = load_dataset("mnist1d", num_samples=300, seed=3)
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]
    assert random.getstate() == py_before
    # Generation itself is deterministic (not only the cache).
    mnist1d_mod._generate.cache_clear()
    assert torch.equal(ds.x_train, load_dataset("mnist1d", num_samples=300, seed=3).x_train)


def test_mnist1d_cache_is_not_shared_mutably() -> None:
    a = load_dataset("mnist1d", num_samples=300)
    a.x_train.add_(100.0)
    a.y_train.zero_()
    b = load_dataset("mnist1d", num_samples=300)
    assert abs(float(b.x_train.mean())) < 1e-3 and int(b.y_train.max()) > 0


# --- CIFAR binary loader ------------------------------------------------------------------------


def _expected_records(
    spec: cifar_mod.CifarSpec, contents: dict[str, Any], files: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([contents[f][0][:, spec.label_column] for f in files]).astype(np.int64)
    pixels = np.concatenate([contents[f][1] for f in files])
    return labels, pixels


def test_cifar_round_trip(fake_cifar: Any) -> None:
    spec, root, contents, md5 = fake_cifar
    ds = load_dataset(spec.name, root=str(root), md5=md5, normalize="none")
    labels, pixels = _expected_records(spec, contents, spec.train_files)
    assert torch.equal(ds.y_train, torch.from_numpy(labels))  # CIFAR-100: the fine labels
    for i in (0, 1, TRAIN_RECORDS + 3, len(labels) - 1):  # first, second, later file, last
        got = (ds.x_train[i] * 255).round().to(torch.uint8)
        assert torch.equal(got, torch.from_numpy(pixels[i].reshape(3, 32, 32)))
    # Channel layout: the first 1024 bytes are the red channel, row-major.
    assert float(ds.x_train[0, 1, 0, 0]) * 255 == pytest.approx(pixels[0, 1024])
    test_labels, test_pixels = _expected_records(spec, contents, spec.test_files)
    assert torch.equal(ds.y_test, torch.from_numpy(test_labels))
    assert torch.allclose(ds.x_test[-1].flatten() * 255, torch.from_numpy(test_pixels[-1]).float(), atol=1e-3)
    assert ds.normalization["kind"] == "none" and "checksums verified" in ds.description


def test_cifar_fixed_and_train_stats_normalisation(fake_cifar: Any) -> None:
    spec, root, contents, md5 = fake_cifar
    raw = load_dataset(spec.name, root=str(root), md5=md5, normalize="none", n_train=10)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    fixed = load_dataset(spec.name, root=str(root), md5=md5, normalize="fixed", mean=mean, std=std, n_train=10)
    expect = (raw.x_test - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(fixed.x_test, expect, atol=1e-5)
    assert fixed.normalization == {"mean": list(mean), "std": list(std), "computed_on": "fixed"}

    stats = load_dataset(spec.name, root=str(root), md5=md5, n_train=10)
    m = raw.x_train.double().mean(dim=(0, 2, 3))
    s = raw.x_train.double().std(dim=(0, 2, 3), correction=0)
    assert np.allclose(stats.normalization["mean"], m.numpy(), atol=1e-6)
    assert np.allclose(stats.normalization["std"], s.numpy(), atol=1e-6)
    assert "train-split statistics" in stats.description

    with pytest.raises(DataError, match="mean and std"):
        load_dataset(spec.name, root=str(root), md5=md5, normalize="fixed")
    with pytest.raises(DataError, match="normalize"):
        load_dataset(spec.name, root=str(root), md5=md5, normalize="per_pixel")


def test_cifar_wrong_md5_names_file_and_digests(fake_cifar: Any) -> None:
    spec, root, _, md5 = fake_cifar
    name = spec.train_files[0]
    wrong = dict(md5, **{name: "0" * 32})
    with pytest.raises(DataError) as err:
        load_dataset(spec.name, root=str(root), md5=wrong)
    message = str(err.value)
    assert name in message and "0" * 32 in message and md5[name] in message


def test_cifar_missing_file_says_where_and_how(fake_cifar: Any) -> None:
    spec, root, _, md5 = fake_cifar
    missing = root / spec.folder / spec.test_files[0]
    missing.unlink()
    with pytest.raises(DataError) as err:
        load_dataset(spec.name, root=str(root), md5=md5)
    message = str(err.value)
    assert str(missing) in message and str(root) in message
    assert spec.url in message and "download=True" in message and "RESTUDY_DATA" in message


def test_cifar_truncated_file(fake_cifar: Any) -> None:
    spec, root, _, md5 = fake_cifar
    path = root / spec.folder / spec.train_files[-1]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(spec.name, root=str(root), md5=dict(md5, **{path.name: _md5(path)}))
    # Without an override, files must also have the official size.
    with pytest.raises(DataError, match="official"):
        load_dataset(spec.name, root=str(root))


def test_cifar_verify_false_and_default_root(fake_cifar: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, root, _, _ = fake_cifar
    monkeypatch.setenv("RESTUDY_DATA", str(root))
    ds = load_dataset(spec.name, verify=False)  # fake files: not the official size or checksum
    assert "not checksum-verified" in ds.description
    # root may also name the data folder itself.
    direct = load_dataset(spec.name, root=str(root / spec.folder), verify=False)
    assert torch.equal(direct.x_train, ds.x_train)


def test_cifar_rejects_bad_md5_override(fake_cifar: Any) -> None:
    spec, root, _, md5 = fake_cifar
    with pytest.raises(DataError, match="does not have"):
        load_dataset(spec.name, root=str(root), md5=dict(md5, **{"data_batch_9.bin": "0" * 32}))
    with pytest.raises(DataError, match="hex"):
        load_dataset(spec.name, root=str(root), md5={spec.test_files[0]: "xyz"})


def test_cifar_official_checksum_table_is_complete() -> None:
    for spec in (cifar_mod.CIFAR10, cifar_mod.CIFAR100):
        assert set(spec.sha1) == set(spec.files) == set(spec.official_records)
        assert all(len(d) == 40 for d in spec.sha1.values())


# --- archives: traversal guard and (offline) download --------------------------------------------


def _tar_with(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink is not None:
            info = tarfile.TarInfo("link")
            info.type = tarfile.SYMTYPE
            info.linkname = symlink
            tar.addfile(info)
    return path


@pytest.mark.parametrize("bad", ["../evil", "ok/../../evil", "/tmp/evil_abs"])
def test_tar_guard_refuses_escaping_members(bad: str, tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "a.tar.gz", {"fine.txt": b"ok", bad: b"evil"})
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="refusing") as err:
        cifar_mod.safe_extract_tar(archive, dest)
    assert bad in str(err.value)
    assert not (tmp_path / "evil").exists() and not (dest / "fine.txt").exists()  # nothing written


def test_tar_guard_refuses_links_and_extracts_safe_archives(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        cifar_mod.safe_extract_tar(_tar_with(tmp_path / "l.tar.gz", {}, symlink="/etc"), tmp_path / "d1")
    cifar_mod.safe_extract_tar(_tar_with(tmp_path / "s.tar.gz", {"a/b.txt": b"hi"}), tmp_path / "d2")
    assert (tmp_path / "d2" / "a" / "b.txt").read_bytes() == b"hi"


def _fake_archive(tmp_path: Path) -> tuple[bytes, dict[str, str]]:
    """A fake cifar-10-binary.tar.gz and the md5s of it and its files."""
    src = tmp_path / "src"
    write_fake_cifar(src, cifar_mod.CIFAR10)
    md5 = fake_md5s(src, cifar_mod.CIFAR10)
    archive = tmp_path / "fake.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / cifar_mod.CIFAR10.folder, arcname=cifar_mod.CIFAR10.folder)
    md5[cifar_mod.CIFAR10.archive] = _md5(archive)
    return archive.read_bytes(), md5


def test_cifar_download_from_a_local_fake_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, md5 = _fake_archive(tmp_path)
    urls = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        urls.append(url)
        return io.BytesIO(data)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = tmp_path / "root"
    ds = load_dataset("cifar10", root=str(root), download=True, md5=md5)
    assert urls == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    assert len(ds.y_train) == 5 * TRAIN_RECORDS
    # Files present now: no second download.
    load_dataset("cifar10", root=str(root), download=True, md5=md5)
    assert len(urls) == 1


def test_cifar_download_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, md5 = _fake_archive(tmp_path)

    def offline(url: str, timeout: float) -> io.BytesIO:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="no network"):
        load_dataset("cifar10", root=str(tmp_path / "r1"), download=True, md5=md5)
    assert not list((tmp_path / "r1").glob("*.part"))

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(data))
    wrong = dict(md5, **{cifar_mod.CIFAR10.archive: "f" * 32})
    with pytest.raises(DataError, match="cifar-10-binary.tar.gz"):
        load_dataset("cifar10", root=str(tmp_path / "r2"), download=True, md5=wrong)
    # Never downloads unless asked.
    with pytest.raises(DataError, match="missing"):
        load_dataset("cifar10", root=str(tmp_path / "r3"), md5=md5)


def test_mnist1d_disk_cache_gives_the_same_data(tmp_path, monkeypatch):
    from restudy.data import mnist1d as m

    monkeypatch.setenv("RESTUDY_CACHE", str(tmp_path))
    m._generate.cache_clear()
    first = load_dataset("mnist1d", num_samples=200)
    files = list((tmp_path / "mnist1d").glob("*.safetensors"))
    assert len(files) == 1
    m._generate.cache_clear()
    second = load_dataset("mnist1d", num_samples=200)  # read back from disk, not generated
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    m._generate.cache_clear()


def _mnist1d_cache(tmp_path: Path) -> Path:
    files = list((tmp_path / "mnist1d").glob("*.safetensors"))
    assert len(files) == 1
    return files[0]


def _fresh_mnist1d(**kw) -> Dataset:
    mnist1d_mod._generate.cache_clear()
    return load_dataset("mnist1d", **kw)


def _same(a: Dataset, b: Dataset) -> bool:
    return all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("x_train", "y_train", "x_test", "y_test"))


def _rewrite_cache(path: Path, change: Callable[[dict[str, np.ndarray], dict[str, str]], None]) -> None:
    from safetensors import safe_open
    from safetensors.numpy import save

    with safe_open(str(path), framework="numpy") as f:
        arrays, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    change(arrays, meta)
    path.write_bytes(save(arrays, metadata=meta or None))


MNIST1D_CACHE_DAMAGE: dict[str, Callable[[Path], None]] = {
    # a valid file whose labels are all 0: 100 % train accuracy, 10 % test, if it were trusted
    "labels all 0": lambda p: _rewrite_cache(p, lambda a, m: a.update(y_train=np.zeros_like(a["y_train"]))),
    "one input changed": lambda p: _rewrite_cache(p, lambda a, m: a["x_test"].__setitem__((0, 0), 9.0)),
    "no checksum (an earlier version's cache)": lambda p: _rewrite_cache(p, lambda a, m: m.clear()),
    "made for other arguments": lambda p: _rewrite_cache(
        p, lambda a, m: m.update(args=m["args"].replace("200", "300"))
    ),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:500]),
    "not safetensors": lambda p: p.write_bytes(b"\x80\x04garbage"),
}


@pytest.mark.parametrize("damage", sorted(MNIST1D_CACHE_DAMAGE))
def test_mnist1d_a_cache_that_fails_its_checksum_is_rebuilt_not_trusted(tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setenv("RESTUDY_CACHE", str(tmp_path))
    fresh = _fresh_mnist1d(num_samples=200)
    path = _mnist1d_cache(tmp_path)
    MNIST1D_CACHE_DAMAGE[damage](path)
    with caplog.at_level("WARNING", logger=mnist1d_mod.__name__):
        rebuilt = _fresh_mnist1d(num_samples=200)
    assert _same(rebuilt, fresh)  # the freshly generated data, not the damaged cache
    assert any(str(path) in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger=mnist1d_mod.__name__):
        again = _fresh_mnist1d(num_samples=200)  # the rewritten cache is valid again
    assert _same(again, fresh) and not caplog.records
    mnist1d_mod._generate.cache_clear()


def test_mnist1d_a_valid_cache_is_used_without_generating(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTUDY_CACHE", str(tmp_path))
    fresh = _fresh_mnist1d(num_samples=200)

    def must_not_generate(*args):
        raise AssertionError("generated although the cache is valid")

    monkeypatch.setattr(mnist1d_mod, "_make", must_not_generate)
    assert _same(_fresh_mnist1d(num_samples=200), fresh)
    mnist1d_mod._generate.cache_clear()
