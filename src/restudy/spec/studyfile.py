"""Study files: YAML -> ``Study``, with errors that name the file, line, field path and value.

Built-in studies live in ``restudy/studies/<id>/study.yaml``; a user passes a path instead. A loaded
study keeps its source (file, YAML node tree, the folder its ``module`` is imported from), so that
errors found later, while planning, still point at ``file:line`` (:func:`where`).
"""

from __future__ import annotations

import re
import shlex
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import StudyError
from ..storage.safeio import load_yaml_text
from .study import Study
from .values import SETTING_TAGS

BUILTIN_DIR = Path(__file__).parents[1] / "studies"
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def builtin_studies() -> dict[str, Path]:
    """Built-in study id -> its study file. A study's folder is an importable package name, so an
    id's dashes are underscores there (``rethinking-generalization`` lives in
    ``studies/rethinking_generalization/``)."""
    return {p.parent.name.replace("_", "-"): p for p in sorted(BUILTIN_DIR.glob("*/study.yaml"))}


def resolve_study_path(name_or_path: str) -> Path:
    """A built-in study id or a path to a YAML file."""
    p = Path(name_or_path)
    builtins = builtin_studies()
    if p.is_dir() and name_or_path in builtins:  # a folder named like a built-in study does not hide it
        return builtins[name_or_path]
    if p.suffix in (".yaml", ".yml") or p.exists():
        if p.is_dir():
            inside = p / "study.yaml"
            hint = f" (did you mean {inside}?)" if inside.is_file() else ""
            raise StudyError(f"this is a folder, not a study file; give the path of a .yaml file{hint}", where=str(p))
        if not p.is_file():
            raise StudyError("study file not found", where=str(p))
        return p
    if name_or_path in builtins:
        return builtins[name_or_path]
    import difflib

    close = difflib.get_close_matches(name_or_path, list(builtins), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise StudyError(f"unknown study '{name_or_path}'{hint}", allowed=sorted(builtins) + ["a path to a .yaml file"])


def study_argument(study_file: str | Path | None, study_id: str) -> str:
    """The study as ``restudy run`` takes it back, from any folder: its built-in id when
    ``study_file`` is that built-in study's file (or is not known), else the file's absolute path,
    quoted for a shell."""
    if not study_file:
        return study_id
    path = Path(study_file).resolve()
    builtin = builtin_studies().get(study_id)
    if builtin is not None and builtin.resolve() == path:
        return study_id
    return shlex.quote(str(path))


def run_command(
    study: str,
    scale: str,
    *,
    out: str | Path | None = None,
    seeds: int | None = None,
    overrides: list[str] = (),
    only: list[str] = (),
) -> str:
    """A ``restudy run`` command line that works as printed: ``study`` as :func:`study_argument`
    gives it, the same setting overrides and ``--only`` subset as the run it follows (a run's key
    hashes its settings, so without them no earlier run would be reused), and ``--out`` as an
    absolute path."""
    parts = ["restudy", "run", study, *(shlex.quote(o) for o in overrides), "--scale", scale]
    if seeds is not None:
        parts += ["--seeds", str(seeds)]
    for item in only:
        parts += ["--only", shlex.quote(item)]
    if out is not None:
        parts += ["--out", shlex.quote(str(Path(out).resolve()))]
    return " ".join(parts)


@dataclass(frozen=True)
class Source:
    """Where a loaded study came from."""

    path: Path  # as the user named it (errors print it so)
    root: yaml.Node | None  # the YAML node tree, for line numbers
    module_dir: Path | None  # the folder the study's ``module`` is imported from


_SOURCES: dict[int, Source] = {}


def source_of(study: Study) -> Source | None:
    """The source of a study read by :func:`load_study` (None for one built in code)."""
    return _SOURCES.get(id(study))


def study_dir(study: Study) -> str | None:
    """The folder a study's own ``module`` may live in (its file's folder), or None."""
    src = source_of(study)
    return str(src.module_dir.resolve()) if src and src.module_dir else None


def where(study: Study, path: tuple[str | int, ...]) -> str:
    """``file:line field.path`` of the key at ``path`` in ``study``'s file (a setting name such as
    ``optimizer.lr`` is one key); the field path alone for a study not read from a file."""
    src = source_of(study)
    if src is None:
        return _dotted(list(path))
    line, shown = _locate(src.root, path)
    return f"{src.path}:{line} {_dotted(shown)}" if line else f"{src.path} {_dotted(shown)}"


def load_study(name_or_path: str | Path, *, module_dir: str | Path | None = None) -> Study:
    """Read and validate a study file; every error names file:line and the field path.

    ``module_dir``: the folder the study's ``module`` is imported from (default: the file's folder).
    """
    path = resolve_study_path(str(name_or_path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise StudyError(
            f"a study file must be UTF-8 text; byte {e.start} (line {line}) is not ({e.reason}); save it as UTF-8",
            where=f"{path}:{line}",
        ) from None
    except OSError as e:
        raise StudyError(f"cannot read the study file: {e.strerror or e}", where=str(path)) from None
    data, root = load_yaml_text(text, where=str(path))
    if data is None:
        raise StudyError("the study file is empty (nothing but comments or blank lines)", where=str(path))
    if not isinstance(data, dict):
        raise StudyError(
            "a study file must be a YAML mapping at the top level",
            where=str(path),
            got="an empty file" if data is None else type(data).__name__,
        )
    module_dir = Path(module_dir) if module_dir is not None else path.parent
    if isinstance(data.get("module"), str):  # it may register claim kinds and views the file uses
        from ..errors import RestudyError
        from ..plugins import import_study_module

        try:
            import_study_module(data["module"], str(module_dir))
        except RestudyError as e:
            line = _line_of(root, ["module"])
            raise StudyError(
                f"cannot import the study module from {module_dir} or sys.path: {e.__cause__ or e}",
                where=f"{path}:{line} module",
                got=data["module"],
            ) from e
    try:
        study = Study.model_validate(data)
    except ValidationError as e:
        raise StudyError(format_validation_error(e, path, root)) from None
    key = id(study)
    _SOURCES[key] = Source(path, root, module_dir)
    weakref.finalize(study, _SOURCES.pop, key, None)
    return study


def format_validation_error(e: ValidationError, path: Path | str, root: yaml.Node | None = None) -> str:
    """One line per problem: ``file:line field.path: message; got: value``."""
    lines = [f"{path}: {e.error_count()} problem(s) in the study file"]
    for err in e.errors(include_url=False):
        loc = _without_kind_tag(list(err["loc"]))
        if err["type"] == "union_tag_invalid" and loc[:1] == ["claims"]:
            loc.append("kind")
        line = _line_of(root, loc) if root is not None else None
        where = f"{path}:{line}" if line else str(path)
        field = _dotted(loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = allowed_fields(list(err["loc"])[:-1])
            msg = "unknown field (check the spelling; unknown fields are errors)" + (
                f"; allowed: {', '.join(allowed)}" if allowed else ""
            )
        elif err["type"] == "model_type" and err.get("ctx", {}).get("class_name") == "Hyper":
            msg = (
                "a setting here needs its value and where it comes from: "
                "{value: ..., provenance: paper|code|authors|assumed, source: '...'}"
            )
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        elif err["type"] == "union_tag_invalid":
            msg = (
                f"unknown claim kind; allowed: {', '.join(repr(k) for k in claim_kinds())}; "
                f"got: {err['ctx'].get('tag')!r}"
            )
        elif err["type"] == "union_tag_not_found":
            msg = f"a claim needs a 'kind'; allowed: {', '.join(repr(k) for k in claim_kinds())}"
        got = err.get("input")
        got_s = "" if isinstance(got, (dict, list)) or err["type"] == "missing" else f"; got: {got!r}"
        lines.append(f"  {where} {field}: {msg}{got_s}")
    return "\n".join(lines)


def allowed_fields(loc: list[Any]) -> list[str]:
    """The field names of the schema object at ``loc`` (a pydantic error location, claim kind tags
    included), or [] when the location does not lead to one."""
    import types
    import typing

    from pydantic import BaseModel

    from .. import plugins
    from .study import Study

    def unwrap(tp: Any) -> list[Any]:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return unwrap(typing.get_args(tp)[0])
        if origin is typing.Union or origin is types.UnionType:
            return [t for a in typing.get_args(tp) for t in unwrap(a)]
        return [tp]

    current: list[Any] = [Study]
    for p in loc:
        nxt: list[Any] = []
        for tp in current:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(str(p))
                if field is not None:
                    nxt += unwrap(field.annotation)
            elif origin in (list, tuple) and isinstance(p, int):
                nxt += unwrap(typing.get_args(tp)[0])
            elif origin is dict:
                nxt += unwrap(typing.get_args(tp)[1])
        if not nxt and isinstance(p, str) and p in claim_kinds():
            nxt = [plugins.get("claim", p).schema]  # the kind tag after claims[i]
        elif not nxt and isinstance(p, str):
            nxt = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]  # e.g. a union tag
        current = nxt
    models = [t for t in current if isinstance(t, type) and issubclass(t, BaseModel)]
    return list(dict.fromkeys(n for m in models for n in m.model_fields)) if len(models) == 1 else []


def claim_kinds() -> list[str]:
    """The registered claim kinds (what ``kind:`` of a claim may say)."""
    from .. import plugins

    return plugins.names("claim")


def _without_kind_tag(loc: list[Any]) -> list[Any]:
    """Drops the claim kind pydantic puts after ``claims[i]`` in a location (``claims.0.trend.over``
    is ``claims[0].over`` in the file)."""
    if len(loc) > 2 and loc[0] == "claims" and isinstance(loc[1], int) and loc[2] in claim_kinds():
        return loc[:2] + loc[3:]
    return loc


def _dotted(loc: list[Any]) -> str:
    out = ""
    for p in (p for p in loc if p not in SETTING_TAGS):
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _locate(node: yaml.Node | None, path: tuple[str | int, ...]) -> tuple[int | None, list[str | int]]:
    """Line of the key at ``path`` (or of its closest existing parent) and the path as the file
    spells it: ``levels`` is left out for an axis written in its short form."""
    line = node.start_mark.line + 1 if node is not None else None
    shown: list[str | int] = []
    for i, p in enumerate(path):
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == str(p)), None)
            if found is None:
                if p == "levels":
                    continue
                return line, shown + list(path[i:])
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(p, int) and p < len(node.value):
            node = node.value[p]
            line = node.start_mark.line + 1
        else:
            return line, shown + list(path[i:])
        shown.append(p)
    return line, shown


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its closest existing parent)."""
    return _locate(node, tuple(p for p in loc if p not in SETTING_TAGS))[0]


def parse_overrides(items: list[str]) -> list[tuple[str | None, str, Any]]:
    """``key=value`` or ``experiment:key=value`` -> (experiment or None, key, YAML-parsed value)."""
    out = []
    for item in items:
        if "=" not in item:
            raise StudyError(
                "an override must look like key=value or experiment:key=value", where="command line", got=item
            )
        key, raw = item.split("=", 1)
        exp = None
        if ":" in key:
            exp, key = key.split(":", 1)
        key = key.strip()
        if not key:
            raise StudyError("empty key in override", where="command line", got=item)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str):
            try:  # YAML 1.1 reads "1e6" as a string; a number is meant
                value = float(value) if _FLOAT.match(value.strip()) else value
            except ValueError:
                pass
        out.append((exp, key, value))
    return out
