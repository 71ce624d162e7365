"""``restudy new NAME``: a study of one's own paper, ready to run at smoke scale.

Without ``--from``: ``NAME/study.yaml`` (commented: claims, reported table, coverage, settings
with provenance, the three scales) and ``NAME/<module>.py`` with one example of every plug-in kind
(``scaffold/``). With ``--from STUDY``: a copy of a built-in study's file under the new id, its
parts still those of the built-in study's module.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import RestudyError

SCAFFOLD = Path(__file__).resolve().parent / "scaffold"
NAME = r"^[a-z][a-z0-9_-]{0,63}$"


def module_name(study_id: str) -> str:
    """The Python module a new study's parts live in: its id as an identifier, ``_parts`` added so
    that it shadows no package (``mystudy`` → ``mystudy_parts``)."""
    return study_id.replace("-", "_") + "_parts"


def scaffold(name: str, into: Path, from_study: str | None = None) -> list[Path]:
    """Write a new study named ``name`` into folder ``into`` (created; it must be empty); returns
    the files written.

    Raises:
        RestudyError: a name that is not an id, a folder that holds files, or an unknown study.
    """
    if not re.match(NAME, name):
        raise RestudyError(
            "a study's name is its id: lower-case letters, digits, '-' and '_', starting with a letter",
            got=name,
            allowed="e.g. label-smoothing",
        )
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise RestudyError("the folder for the new study is not empty: nothing was written", where=str(into))
    study = into / "study.yaml"
    if from_study is not None:
        from ..spec.studyfile import builtin_studies

        builtins = builtin_studies()
        if from_study not in builtins:
            raise RestudyError("--from takes a built-in study", got=from_study, allowed=sorted(builtins))
        text = builtins[from_study].read_text(encoding="utf-8")
        text, n = re.subn(r"(?m)^id: .*$", f"id: {name}", text, count=1)
        if n != 1:
            raise RestudyError("the built-in study file has no top-level id line", where=str(builtins[from_study]))
        into.mkdir(parents=True, exist_ok=True)
        study.write_text(text, encoding="utf-8")
        return [study]
    module = module_name(name)
    values = {"__ID__": name, "__MODULE__": module, "__PATH__": str(study)}
    written = []
    for template, target in (("study.yaml.tmpl", study), ("module.py.tmpl", into / f"{module}.py")):
        text = (SCAFFOLD / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        into.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
