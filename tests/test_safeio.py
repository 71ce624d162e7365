"""Safe file formats: nothing is unpickled, writes are atomic, JSON is strict, tensors round-trip."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from restudy import safeio
from restudy.errors import RestudyError, UnsafeFileError


@pytest.mark.parametrize("suffix", [".pkl", ".pickle", ".pt", ".pth", ".ckpt"])
def test_refuses_to_load_pickles(tmp_path: Path, suffix: str):
    path = tmp_path / f"model{suffix}"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(UnsafeFileError) as info:
        safeio.load_tensors(path)
    assert str(path) in str(info.value) and "safetensors" in str(info.value)


def test_tensors_round_trip_bit_exactly_and_the_digest_is_the_files(tmp_path: Path):
    tensors = {"logits": torch.randn(5, 3), "labels": torch.arange(5), "half": torch.randn(4).half()}
    path = tmp_path / "t.safetensors"
    digest = safeio.save_tensors(path, tensors, metadata={"run": "abc"})
    back = safeio.load_tensors(path)
    assert set(back) == set(tensors)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert safeio.file_digest(path, "sha256") == digest


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "run.json"
    safeio.write_json(path, {"status": "finished"})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        safeio.write_json(path, {"status": "failed"})
    assert safeio.read_json(path) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_atomic_write_creates_folders_with_usual_permissions(tmp_path: Path):
    path = tmp_path / "a" / "b" / "file.txt"
    safeio.atomic_write_text(path, "héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_is_strict_non_finite_floats_become_null(tmp_path: Path):
    path = tmp_path / "m.json"
    safeio.write_json(
        path,
        {
            "loss": float("nan"),
            "acc": float("inf"),
            "curve": [1.0, float("-inf")],
            "n": torch.tensor(3),
            "where": Path("x"),
            "tags": ("a",),
        },
    )
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"loss": None, "acc": None, "curve": [1.0, None], "n": 3, "where": "x", "tags": ["a"]}


def test_reading_a_missing_or_broken_json_names_the_file(tmp_path: Path):
    with pytest.raises(RestudyError, match="file not found"):
        safeio.read_json(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(RestudyError) as info:
        safeio.read_json(bad)
    assert str(bad) in str(info.value) and "not valid JSON" in str(info.value)
