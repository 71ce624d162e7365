"""ImageNet from class folders, streamed: fake JPEGs in the real layout, the crops, subsets,
integrity checks, a run through the worker, and the CIFAR-100 protocol of the original Network Deconvolution code."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from restudy import plugins
from restudy.data import load_dataset
from restudy.data.images import (
    DRAWS_PER_IMAGE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LazyImages,
    center_box,
    eval_image,
    resized_crop_box,
    train_image,
)
from restudy.errors import DataError, RestudyError
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import plan
from restudy.planning.seeding import generator
from restudy.spec.studyfile import load_study
from restudy.storage.record import validate
from restudy.storage.safeio import load_tensors

# Created out of sorted order: the class index must come from the sorted names, not the disk order.
WNIDS = ("n03000134", "n01440764", "n02102040")
SORTED = sorted(WNIDS)
N_TRAIN, N_VAL = 4, 2


def _write_image(path: Path, rng: np.random.Generator, mode: str = "RGB") -> None:
    h, w = (int(v) for v in rng.integers(24, 72, 2))
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    img.convert(mode).save(path, format="PNG" if path.suffix == ".png" else "JPEG", quality=90)


@pytest.fixture
def fake_imagenet(tmp_path: Path) -> Path:
    """``imagenet/{train,val}/<wnid>/*.JPEG`` with images of varied sizes (one grayscale, one PNG)."""
    root = tmp_path / "imagenet"
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for wnid in WNIDS:
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                suffix = ".png" if (split, i) == ("train", 3) else ".JPEG"
                _write_image(folder / f"{wnid}_{i:05d}{suffix}", rng, "L" if i == 1 else "RGB")
    return root


def _load(root: Path, **kw) -> object:
    return load_dataset("imagenet", root=str(root), **{"size": 32, "resize": 40, **kw})


# --------------------------------------------------------------------------- the data set


def test_classes_are_the_sorted_folder_names_and_files_keep_their_label(fake_imagenet: Path) -> None:
    data = _load(fake_imagenet)
    assert data.num_classes == 3 and data.streamed
    assert data.x_train.shape == (3 * N_TRAIN, 3, 32, 32) and data.x_test.shape == (3 * N_VAL, 3, 32, 32)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        for path, label in zip(x.paths, y.tolist()):
            assert Path(path).parent.name == SORTED[label]
    # idx_* are positions in the split sorted by (class, file name).
    entries = [(SORTED.index(Path(p).parent.name), Path(p).name) for p in data.x_train.paths]
    position = {e: i for i, e in enumerate(sorted(entries))}
    assert data.idx_train.tolist() == [position[e] for e in entries]
    assert "3 classes" in data.description and "not checksum-verified" in data.description


def test_batches_have_the_declared_size_and_default_224(fake_imagenet: Path) -> None:
    small = _load(fake_imagenet)
    assert small.x_test[0:4].shape == (4, 3, 32, 32) and small.x_test[0:4].dtype == torch.float32
    assert small.x_train[torch.tensor([5, 0])].shape == (2, 3, 32, 32)
    full = load_dataset("imagenet", root=str(fake_imagenet))
    assert full.input_shape == (3, 224, 224)
    assert full.x_test[0:2].shape == (2, 3, 224, 224)


def test_subsets_are_class_interleaved_prefixes(fake_imagenet: Path) -> None:
    five = _load(fake_imagenet, n_train=5, n_test=4)
    assert five.y_train.tolist() == [0, 1, 2, 0, 1] and five.y_test.tolist() == [0, 1, 2, 0]
    eight = _load(fake_imagenet, n_train=8)
    assert eight.x_train.paths[:5] == five.x_train.paths
    assert torch.equal(eight.idx_train[:5], five.idx_train)
    assert "train: first 5 of 12 (class-interleaved)" in five.description
    two = _load(fake_imagenet, classes=2)
    assert two.num_classes == 2 and set(two.y_test.tolist()) == {0, 1}
    with pytest.raises(DataError, match="n_train"):
        _load(fake_imagenet, n_train=13)


def test_missing_folders_name_the_expected_layout(tmp_path: Path, fake_imagenet: Path) -> None:
    with pytest.raises(DataError, match=r"train/<wnid>/\*\.JPEG") as e:
        load_dataset("imagenet", root=str(tmp_path / "nowhere"))
    assert "folder not found" in str(e.value) and "RESTUDY_DATA" in str(e.value)
    for f in (fake_imagenet / "val" / SORTED[1]).iterdir():
        f.unlink()
    with pytest.raises(DataError, match=f"class {SORTED[1]} has no images in val/"):
        _load(fake_imagenet)
    (fake_imagenet / "val" / "n99999999").mkdir()
    with pytest.raises(DataError, match="no train class"):
        _load(fake_imagenet)


def test_default_root_is_under_restudy_data(fake_imagenet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTUDY_DATA", str(fake_imagenet.parent))
    assert load_dataset("imagenet", size=32, resize=40).num_classes == 3


def test_bad_sizes_are_refused(fake_imagenet: Path) -> None:
    with pytest.raises(DataError, match="must not exceed resize"):
        _load(fake_imagenet, size=48, resize=40)
    with pytest.raises(DataError, match="size must be a positive integer"):
        _load(fake_imagenet, size=0)


def _manifest(root: Path, path: Path, change: str | None = None, drop: str | None = None) -> Path:
    lines = []
    for f in sorted(root.rglob("*")):
        if f.is_file():
            rel = f.relative_to(root).as_posix()
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            if rel == change:
                digest = "0" * 64
            if rel != drop:
                lines.append(f"{digest}  {rel}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_manifest_verifies_every_file_used(fake_imagenet: Path, tmp_path: Path) -> None:
    good = _manifest(fake_imagenet, tmp_path / "SHA256SUMS")
    data = _load(fake_imagenet, manifest=str(good))
    assert "sha256 verified" in data.description
    victim = f"val/{SORTED[2]}/{SORTED[2]}_00001.JPEG"
    bad = _manifest(fake_imagenet, tmp_path / "bad.txt", change=victim)
    with pytest.raises(DataError, match=f"mismatch for '{victim}': expected sha256 0{{64}}, got [0-9a-f]{{64}}"):
        _load(fake_imagenet, manifest=str(bad))
    # The mismatching file is outside a subset that does not use it: the subset loads.
    assert _load(fake_imagenet, manifest=str(bad), n_test=3).x_test.shape[0] == 3
    short = _manifest(fake_imagenet, tmp_path / "short.txt", drop=victim)
    with pytest.raises(DataError, match="not listed in the manifest"):
        _load(fake_imagenet, manifest=str(short))
    (tmp_path / "junk.txt").write_text("not a digest line\n")
    with pytest.raises(DataError, match=r"junk.txt:1"):
        _load(fake_imagenet, manifest=str(tmp_path / "junk.txt"))


# --------------------------------------------------------------------------- the crops


def test_center_crop_geometry_after_resizing_the_shorter_side() -> None:
    # Pixel value = column index: a crop shows which columns it kept.
    cols = np.tile(np.arange(60, dtype=np.uint8), (40, 1))
    img = Image.fromarray(np.stack([cols] * 3, axis=2))  # 40 high, 60 wide; shorter side = resize
    out = eval_image(img, size=32, resize=40)
    assert out.shape == (32, 32, 3)
    assert center_box(40, 60, 32) == (4, 14, 32, 32)
    assert out[0, :, 0].tolist() == list(range(14, 46))
    halved = eval_image(Image.fromarray(np.stack([np.tile(np.arange(120, dtype=np.uint8), (80, 1))] * 3, 2)), 32, 40)
    assert halved.shape == (32, 32, 3) and 2 * 14 <= int(halved[0, 0, 0]) <= 2 * 14 + 1


def test_normalisation_uses_the_imagenet_statistics(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((50, 70, 3), 128, dtype=np.uint8)).save(path)
    x = LazyImages((str(path),), size=16, resize=20)[0:1]
    expect = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[0].mean(dim=(1, 2)), expect, atol=1e-6)
    assert torch.allclose(x[0].std(dim=(1, 2)), torch.zeros(3), atol=1e-6)


def test_resized_crop_box_stays_inside_with_area_and_ratio_in_range() -> None:
    rng = np.random.default_rng(1)
    for h, w in ((40, 60), (300, 20), (7, 7)):
        for _ in range(200):
            top, left, ch, cw = resized_crop_box(h, w, rng.random(DRAWS_PER_IMAGE - 1))
            assert 0 <= top and 0 <= left and top + ch <= h and left + cw <= w and ch > 0 and cw > 0
    # An accepted first attempt: area fraction and log-ratio follow the uniforms.
    u = [0.5, 0.5, 0.0, 1.0 - 1e-9] + [0.0] * (DRAWS_PER_IMAGE - 5)
    top, left, ch, cw = resized_crop_box(100, 100, u)
    assert abs(ch * cw / 10000 - 0.54) < 0.02 and top == 0 and left + cw == 100
    # No attempt fits a very wide image: the fallback centres the widest box of ratio 4/3.
    assert resized_crop_box(10, 1000, [1.0 - 1e-9] * (DRAWS_PER_IMAGE - 1)) == (0, 493, 10, 13)


def test_train_crops_follow_the_generator(fake_imagenet: Path) -> None:
    data = _load(fake_imagenet)
    idx = torch.tensor([3, 0, 7, 11])

    def batch(seed: int) -> torch.Tensor:
        augment = plugins.create("augment", "random_resized_crop_flip", generator=generator(seed, "cpu"), pad=4)
        return augment.bind(data.x_train)[idx]

    a, b, c = batch(5), batch(5), batch(6)
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, data.x_train[idx])  # the eval pipeline is another picture
    one_thread = plugins.create("augment", "random_resized_crop_flip", generator=generator(5, "cpu"), pad=4)
    serial = one_thread.bind(LazyImages(data.x_train.paths, 32, 40, workers=1))
    assert torch.equal(serial[idx], a)
    # Slices are evaluation: the eval pipeline, no draws.
    view = plugins.create("augment", "random_resized_crop_flip", generator=generator(5, "cpu"), pad=4)
    view = view.bind(data.x_train)
    assert torch.equal(view[0:3], data.x_train[0:3])


def test_batches_decoded_one_ahead_equal_batches_decoded_one_by_one(fake_imagenet: Path) -> None:
    data = _load(fake_imagenet)
    order = torch.randperm(len(data.x_train.paths), generator=torch.Generator().manual_seed(3))

    def view():
        aug = plugins.create("augment", "random_resized_crop_flip", generator=generator(5, "cpu"), pad=4)
        return aug.bind(data.x_train)

    one_by_one = view()
    serial = [one_by_one[order[i : i + 4]] for i in range(0, len(order), 4)]
    ahead = list(view().batches(order, 4))  # the next batch decodes while this one is used
    assert len(ahead) == len(serial) == math.ceil(len(order) / 4)
    assert all(torch.equal(a, b) for a, b in zip(ahead, serial))
    # Closed after one batch (a diverged run): the batch decoding ahead finishes, and no other
    # starts; the augmentation has drawn for exactly two batches.
    early = view()
    feed = early.batches(order, 4)
    next(feed)
    feed.close()
    assert torch.equal(early[order[8:12]], serial[2])


def test_evaluation_of_a_streamed_split_decodes_one_batch_at_a_time(
    fake_imagenet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restudy.training.evaluate import predict
    from restudy.training.loop import _evaluate_train

    data = _load(fake_imagenet)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3))
    whole = data.x_train[:]  # the split decoded at once, through the eval pipeline
    sizes: list[int] = []
    on_main: list[bool] = []
    decode_batch = LazyImages.batch

    def counted(self: LazyImages, paths, train: bool) -> torch.Tensor:
        sizes.append(len(paths))
        on_main.append(threading.current_thread() is threading.main_thread())
        assert not train  # evaluation never augments, even on the training view
        return decode_batch(self, paths, train)

    monkeypatch.setattr(LazyImages, "batch", counted)
    train_view = plugins.create("augment", "random_resized_crop_flip", generator=generator(5, "cpu"), pad=4)
    streamed = predict(model, train_view.bind(data.x_train), batch_size=5)
    assert torch.equal(streamed, predict(model, whole, batch_size=5))
    assert sizes == [5, 5, 2]
    assert not any(on_main)  # decoded ahead by a background thread while the model runs
    # the train-accuracy subset (eval_train: subset) stays streamed: never decoded all at once
    sizes.clear()
    sub = _evaluate_train(model, data.x_train, data.y_train, 7, 3, torch.contiguous_format)
    assert sizes == [3, 3, 1] and sub is not None and sub.n == 7
    expect = (predict(model, whole[:7]).argmax(1) == data.y_train[:7]).float().mean().item() * 100
    assert sub.acc == pytest.approx(expect)


def test_train_image_flips_when_the_last_uniform_says_so() -> None:
    img = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (64, 1))).convert("RGB")
    whole = [0.999999, 0.5, 0.0, 0.0] + [0.0] * (DRAWS_PER_IMAGE - 5)  # area ~1, ratio 1: the whole image
    plain, flipped = train_image(img, 16, [*whole, 0.9]), train_image(img, 16, [*whole, 0.1])
    assert np.array_equal(flipped, plain[:, ::-1])
    assert plain[0, 0, 0] < plain[0, -1, 0]


def test_decode_time_augmentation_refuses_in_memory_tensors() -> None:
    augment = plugins.create("augment", "random_resized_crop_flip", generator=generator(0, "cpu"), pad=4)
    with pytest.raises(RestudyError, match="streamed image data set"):
        augment(torch.zeros(2, 3, 8, 8))
    with pytest.raises(RestudyError, match="flip_crop"):
        augment.bind(torch.zeros(2, 3, 8, 8))


# --------------------------------------------------------------------------- through the engine

STUDY = {
    "id": "tiny_imagenet_folder",
    "title": "Streamed class folders",
    "paper": {"title": "Fake ImageNet"},
    "defaults": {
        "model": {"value": "small_cnn", "provenance": "assumed"},
        "model.width": {"value": 4, "provenance": "assumed"},
        "data": {"value": "imagenet", "provenance": "assumed"},
        "data.size": {"value": 16, "provenance": "assumed"},
        "data.resize": {"value": 20, "provenance": "assumed"},
        "augment": {"value": "random_resized_crop_flip", "provenance": "assumed"},
        "eval_train": {"value": "subset", "provenance": "assumed"},
        "eval_train.n": {"value": 6, "provenance": "assumed"},
        "optimizer.lr": {"value": 0.05, "provenance": "assumed"},
        "optimizer.momentum": {"value": 0.9, "provenance": "assumed"},
        "schedule": {"value": "cosine", "provenance": "assumed"},
        "epochs": {"value": 2, "provenance": "assumed"},
        "batch_size": {"value": 5, "provenance": "assumed"},
        "eval_batch_size": {"value": 4, "provenance": "assumed"},
        "device": {"value": "cpu", "provenance": "assumed"},
    },
    "experiments": [{"id": "base", "seeds": 2}],
    "scales": {"smoke": {"settings": {}}},
}


def _specs(tmp_path: Path, root: Path, **settings) -> list:
    study = json.loads(json.dumps(STUDY))
    study["defaults"]["data.root"] = {"value": str(root), "provenance": "assumed"}
    for k, v in settings.items():
        study["defaults"][k] = {"value": v, "provenance": "assumed"}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return plan(load_study(path), "smoke")


def test_a_run_trains_on_the_streamed_folder_through_the_worker(fake_imagenet: Path, tmp_path: Path) -> None:
    specs = _specs(tmp_path, fake_imagenet)
    a = execute(specs[0].to_dict(), str(tmp_path / "a"), threads=1)
    again = execute(specs[0].to_dict(), str(tmp_path / "again"), threads=1)
    other = execute(specs[1].to_dict(), str(tmp_path / "other"), threads=1)
    assert a["status"] == again["status"] == other["status"] == "finished", a["reason"]
    assert len(a["curves"]) == 2 and all(row["train_n"] == 6 for row in a["curves"])
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["test_loss"]) for row in a["curves"])
    assert a["metrics"]["n_train"] == 3 * N_TRAIN and a["metrics"]["n_test"] == 3 * N_VAL
    assert a["env"]["dataset"].startswith("ImageNet class folders (3 classes)")
    logits = {k: load_tensors(tmp_path / k / LOGITS_FILE)["logits"] for k in ("a", "again", "other")}
    assert logits["a"].shape == (3 * N_VAL, 3)
    assert torch.equal(logits["a"], logits["again"]) and not torch.equal(logits["a"], logits["other"])


def test_train_evaluation_can_be_skipped_but_not_with_stop_at_fit(fake_imagenet: Path, tmp_path: Path) -> None:
    rec = execute(_specs(tmp_path, fake_imagenet, eval_train="none", epochs=1)[0].to_dict(), str(tmp_path / "n"))
    assert rec["status"] == "finished", rec["reason"]
    assert rec["curves"][0]["train_acc"] is None and rec["curves"][0]["train_n"] == 0
    assert rec["metrics"]["train_acc"] is None and rec["metrics"]["test_acc"] is not None
    validate(rec)  # the store reads it back through the run.json schema
    spec = _specs(tmp_path, fake_imagenet, stop_at_fit=True)[0]
    rec = execute(spec.to_dict(), str(tmp_path / "fit"))
    assert rec["status"] == "failed" and "stop_at_fit needs the whole train split" in rec["reason"]


def test_runs_on_streamed_data_are_never_stacked(fake_imagenet: Path, tmp_path: Path) -> None:
    from restudy.execution.stacked import structural_reason

    spec = _specs(tmp_path, fake_imagenet, model="fc", augment="none", eval_train="all")[0]
    assert structural_reason(spec).startswith("data 'imagenet': a streamed data set")


def test_tta_is_refused_on_streamed_data(fake_imagenet: Path, tmp_path: Path) -> None:
    rec = execute(_specs(tmp_path, fake_imagenet, tta=["flip"])[0].to_dict(), str(tmp_path / "t"))
    assert rec["status"] == "failed" and "streamed" in rec["reason"]


# --------------------------------------------------------------------------- CIFAR-100, Network Deconvolution

CIFAR100_MEAN, CIFAR100_STD = [0.5071, 0.4865, 0.4409], [0.2009, 0.1984, 0.2023]


def test_cifar100_protocol_of_the_seed_can_be_declared(tmp_path: Path) -> None:
    """Fixed normalisation constants of the original Network Deconvolution code and RandomCrop(32, 4) +
    flip, planned and loaded."""
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    md5 = {}
    for name, n in (("train.bin", 20), ("test.bin", 10)):
        labels = np.stack([rng.integers(0, 20, n), rng.integers(0, 100, n)], axis=1).astype(np.uint8)
        np.concatenate([labels, rng.integers(0, 256, (n, 3072), dtype=np.uint8)], axis=1).tofile(folder / name)
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    study = json.loads(json.dumps(STUDY))
    study["defaults"] = {
        k: v for k, v in study["defaults"].items() if not k.startswith(("data", "eval_train", "augment"))
    }
    for k, v in {
        "data": "cifar100",
        "data.root": str(tmp_path),
        "data.md5": md5,
        "data.normalize": "fixed",
        "data.mean": CIFAR100_MEAN,
        "data.std": CIFAR100_STD,
        "augment": "flip_crop",
        "augment.pad": 4,
        "epochs": 1,
    }.items():
        study["defaults"][k] = {"value": v, "provenance": "code"}
    path = tmp_path / "cifar100.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    spec = plan(load_study(path), "smoke")[0]
    assert spec.settings.values["augment"] == "flip_crop" and spec.settings.values["augment.pad"] == 4
    rec = execute(spec.to_dict(), str(tmp_path / "run"), threads=1)
    assert rec["status"] == "finished", rec["reason"]
    assert f"fixed mean {tuple(CIFAR100_MEAN)}, std {tuple(CIFAR100_STD)}" in rec["env"]["dataset"]
