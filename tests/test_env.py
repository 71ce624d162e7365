"""Environment: what a run ran on, and a fingerprint that changes exactly when results can change."""

from __future__ import annotations

import json

import pytest

from restudy.storage import env


@pytest.fixture(scope="module")
def captured() -> dict:
    return env.capture(threads=1, with_packages=False, execution="single")


def test_capture_is_json_safe_and_names_versions(captured: dict):
    json.dumps(captured)
    for key in ("restudy", "python", "torch", "numpy", "cpu", "threads", "device", "fingerprint"):
        assert key in captured, key
    assert captured["threads"] == 1 and captured["execution"] == "single"
    assert captured["fingerprint"] == env.fingerprint(captured)


@pytest.mark.parametrize(
    "key,value",
    [("threads", 2), ("torch", "0.0"), ("execution", "stacked"), ("device", "cuda"), ("cpu", "another CPU")],
)
def test_fingerprint_changes_with_what_changes_results(captured: dict, key: str, value):
    changed = captured | {key: value}
    assert env.fingerprint(changed) != env.fingerprint(captured)
    assert env.diff(captured, changed) == {key: (captured[key], value)}


def test_fingerprint_ignores_what_does_not(captured: dict):
    changed = captured | {"hostname": "elsewhere", "platform": "x", "cpu_count": 99, "packages": {"a": "1"}}
    assert env.fingerprint(changed) == env.fingerprint(captured)
    assert env.diff(captured, changed) == {}


def test_capture_with_packages_lists_torch():
    assert "torch" in env.capture(threads=1)["packages"]


def test_git_state_outside_a_repository_is_none(tmp_path):
    assert env.git_state(tmp_path) is None
    assert env.git_state(None) is None
