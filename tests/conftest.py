"""Shared fixtures: the built-in ENorm study at smoke scale, and a tiny fast study file."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from restudy.spec.studyfile import builtin_studies

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def enorm_dict() -> dict:
    """The built-in ENorm study file as a plain dict (tests mutate copies of it)."""
    return yaml.safe_load(builtin_studies()["enorm"].read_text())


@pytest.fixture
def study_file(tmp_path: Path, enorm_dict: dict):
    """Write a (possibly mutated) copy of the ENorm study to a YAML file; returns a writer."""

    def write(mutate=None, name: str = "study.yaml") -> Path:
        data = copy.deepcopy(enorm_dict)
        if mutate is not None:
            mutate(data)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return path

    return write


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Generated data sets are cached in a folder of the test session, not the user's home."""
    import os

    old = os.environ.get("RESTUDY_CACHE")
    os.environ["RESTUDY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("RESTUDY_CACHE", None)
    else:
        os.environ["RESTUDY_CACHE"] = old


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch):
    """Tests run with one intra-op thread, as workers do (results are thread-count dependent)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
