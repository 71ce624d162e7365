"""Invalid study files: each file in ``tests/bad_studies/`` must fail with the message it states.

A file's leading comment lines say what a user must read::

    # expect: {file}:14 experiments[0].settings.optimizer.lr
    # expect: got: -0.1
    # xfail: settings errors do not carry file:line yet

Every ``expect`` (``{file}`` replaced by the path the loader prints) must be a substring of the
error. A file is loaded with ``load_study`` and, if that succeeds, planned at every scale; either
step must raise a ``RestudyError``. ``xfail`` marks what the loader does not say yet (strict: a
fix must remove the mark).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from restudy.errors import RestudyError
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study
from restudy.spec.values import SCALES

BAD = Path(__file__).parent / "bad_studies"
FILES = sorted(p for p in BAD.iterdir() if p.is_file())


def _header(path: Path) -> tuple[list[str], str | None]:
    """The ``expect`` substrings and the ``xfail`` reason from the leading comment lines."""
    expects, xfail = [], None
    for raw in path.read_bytes().splitlines():
        line = raw.decode("ascii", errors="replace").strip()
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        if key == "expect":
            expects.append(value.strip())
        elif key == "xfail":
            xfail = value.strip()
    return expects, xfail


def _params() -> list:
    out = []
    for path in FILES:
        _, xfail = _header(path)
        marks = [pytest.mark.xfail(reason=xfail, strict=True)] if xfail else []
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def _load_and_plan(path: Path) -> None:
    study = load_study(path)
    for scale in SCALES:
        plan(study, scale)


def test_there_are_at_least_30_bad_studies_and_each_states_what_to_expect():
    assert len(FILES) >= 30
    for path in FILES:
        expects, _ = _header(path)
        assert expects, f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", _params())
def test_bad_study_is_rejected_with_its_message(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # a YAML tag that ran a command would leave traces here, not in the repo
    expects, _ = _header(path)
    with pytest.raises(RestudyError) as info:
        _load_and_plan(path)
    message = str(info.value).replace(str(path), "{file}")  # so that no expectation matches the file's name
    missing = [e for e in expects if e not in message]
    assert not missing, f"missing {missing} in:\n{message}"
