"""Safe file formats: nothing is unpickled, writes are atomic, JSON is strict, tensors round-trip, a
changed tensor file is refused, and hostile YAML is refused quickly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml

from restudy.errors import RestudyError, StoreError, StudyError, UnsafeFileError
from restudy.storage import safeio


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


# --- verified reads --------------------------------------------------------------------------------


def _two_files(tmp_path: Path) -> tuple[Path, str, Path]:
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    sha_a = safeio.save_tensors(a, {"logits": torch.ones(4, 2)})
    safeio.save_tensors(b, {"logits": torch.zeros(4, 2)})
    return a, sha_a, b


def test_a_verified_read_returns_the_tensors_of_an_unchanged_file(tmp_path: Path):
    a, sha, _ = _two_files(tmp_path)
    assert torch.equal(safeio.load_verified(a, sha)["logits"], torch.ones(4, 2))
    safeio.verify_file(a, sha)


def test_another_runs_file_copied_over_is_refused_by_the_verified_read(tmp_path: Path):
    a, sha, b = _two_files(tmp_path)
    safeio.verify_file(a, sha)  # hashed (and cached) before the copy
    shutil.copy2(b, a)  # same size, the other file's mtime
    for check in (safeio.load_verified, safeio.verify_file):
        with pytest.raises(StoreError) as info:
            check(a, sha)
        assert str(a) in str(info.value) and sha in str(info.value) and "sha256" in str(info.value)


def test_a_missing_recorded_file_is_a_store_error(tmp_path: Path):
    with pytest.raises(StoreError, match="cannot read"):
        safeio.load_verified(tmp_path / "gone.safetensors", "0" * 64)
    with pytest.raises(StoreError, match="cannot read"):
        safeio.verify_file(tmp_path / "gone.safetensors", "0" * 64)


def test_a_file_is_hashed_once_per_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    a, sha, _ = _two_files(tmp_path)
    calls = []
    real = safeio.file_digest
    monkeypatch.setattr(safeio, "file_digest", lambda *args: calls.append(args) or real(*args))
    for _ in range(3):
        assert safeio.sha256_of(a) == sha
    assert len(calls) == 1
    safeio.save_tensors(a, {"logits": torch.ones(4, 2)})  # rewritten: hashed again
    assert safeio.sha256_of(a) == sha and len(calls) == 2


# --- YAML with limits --------------------------------------------------------------------------------

STUDIES = Path(safeio.__file__).parents[1] / "studies"


def _laughs(levels: int = 9, fan: int = 9) -> str:
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * fan) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "title: bomb\nextra:\n" + "\n".join("  " + line for line in lines) + "\n"


@pytest.mark.parametrize("fan", [9, 20])
def test_a_billion_laughs_document_is_refused_in_well_under_a_second(fan: int):
    text = _laughs(fan=fan)  # 9**9 (387 million) or 20**9 leaves once expanded
    t0 = time.perf_counter()
    with pytest.raises(StudyError) as info:
        safeio.load_yaml_text(text, where="bomb.yaml")
    assert time.perf_counter() - t0 < 1.0
    assert str(info.value).startswith("bomb.yaml:") and "alias" in str(info.value)


def test_a_document_over_the_size_cap_is_refused_at_once():
    text = "title: " + "x" * 2_000_000 + "\n"
    t0 = time.perf_counter()
    with pytest.raises(StudyError, match="2000008 bytes; the limit is 1000000"):
        safeio.load_yaml_text(text, where="big.yaml")
    assert time.perf_counter() - t0 < 1.0


def test_deep_nesting_is_refused():
    with pytest.raises(StudyError, match="nested"):
        safeio.load_yaml_text("a: " + "[" * 500 + "]" * 500)


def test_a_duplicate_key_is_refused_naming_it_and_its_lines():
    text = "id: x\nexperiments:\n  - id: fc\n    seeds: 2\n    seeds: 3\n"
    with pytest.raises(StudyError) as info:
        safeio.load_yaml_text(text, where="s.yaml")
    assert str(info.value) == "s.yaml:5: the key 'seeds' appears twice in one mapping (first on line 4)"


def test_merge_keys_and_a_few_aliases_still_load():
    text = "base: &b {lr: 0.1, wd: 0}\nfc: {<<: *b, lr: 0.2}\nagain: *b\n"
    data, _ = safeio.load_yaml_text(text)
    assert data == {"base": {"lr": 0.1, "wd": 0}, "fc": {"lr": 0.2, "wd": 0}, "again": {"lr": 0.1, "wd": 0}}


def test_python_tags_are_refused():
    with pytest.raises(StudyError, match="not valid YAML"):
        safeio.load_yaml_text("a: !!python/object/apply:os.system ['echo hi']")


@pytest.mark.parametrize("name", ["enorm", "nondeterminism"])
def test_a_study_file_loads_as_safe_load_does_with_its_node_tree(name: str):
    text = (STUDIES / name / "study.yaml").read_text(encoding="utf-8")
    data, root = safeio.load_yaml_text(text)
    assert data == yaml.safe_load(text)
    assert isinstance(root, yaml.MappingNode) and root.start_mark.line == yaml.compose(text).start_mark.line


def test_an_empty_document_is_none():
    assert safeio.load_yaml_text("# nothing\n") == (None, None)


def test_truncate_keeps_short_text_and_says_how_long_long_text_was():
    assert safeio.truncate("short", 10) == "short"
    out = safeio.truncate("x" * 2_000_000, 50)
    assert out.startswith("x" * 50) and out.endswith("(2000000 characters)") and len(out) < 80
