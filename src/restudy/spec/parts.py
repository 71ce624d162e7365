"""What a registered part takes: its arguments (name, type, default, help) read from its signature
and its docstring's ``Args:`` section, what the engine passes it, and why a study's value for one
of them is wrong.

A part is any factory registered with :func:`restudy.plugins.register`. The engine calls each kind
with the same keyword arguments (:data:`ENGINE_ARGS`: a model gets ``input_shape`` and
``num_classes``); the rest of its parameters are the part's own arguments, which a study sets as
``model.width``, ``data.n_train``, ``method.alpha`` or ``transform.p``. ``restudy show --settings``
lists them; planning refuses an argument the part does not take or a value of the wrong type,
naming the setting, the value and the arguments it takes.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import plugins

# The keyword arguments the engine passes each kind (restudy.training.build, restudy.training.batches,
# restudy.execution.worker): a factory must accept them, and they are not the part's own arguments.
ENGINE_ARGS: dict[str, tuple[str, ...]] = {
    "dataset": (),
    "transform": ("data", "generator"),
    "model": ("input_shape", "num_classes"),
    "method": ("model", "optimizer"),
    "optimizer": ("params", "lr"),
    "schedule": ("lr", "epochs", "steps_per_epoch"),
    "augment": ("generator", "pad"),
    "run_metric": ("model", "x_train", "y_train", "x_test", "y_test", "settings"),
}
# The setting naming a part of each kind, and the prefix of its arguments in a study file.
SETTING_OF = {"dataset": "data", "model": "model", "method": "method", "transform": "transforms"}
PREFIX_OF = {"dataset": "data", "model": "model", "method": "method", "transform": "transform"}

REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class PartArg:
    """One argument a part takes."""

    name: str
    type: str  # the annotation as written ("int", "float | None"), or "" when there is none
    default: Any  # REQUIRED when the part needs a value
    help: str  # from the docstring's Args: section, or ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def default_text(self) -> str:
        return "(required)" if self.required else repr(self.default)


def import_path(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a factory: where its code is."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


def _doc_args(fn: Callable[..., Any]) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring: ``{name: help}`` (continuation lines joined;
    ``mean, std: ...`` documents both). A factory whose arguments are another's sets
    ``fn.documented_by = other``."""
    doc = inspect.getdoc(getattr(fn, "documented_by", None) or fn) or ""
    out: dict[str, str] = {}
    inside, current, indent = False, None, None
    current: list[str] | None
    for line in doc.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters):", stripped):
            inside, current, indent = True, None, None
            continue
        if not inside:
            continue
        if not stripped:
            continue
        lead = len(line) - len(line.lstrip())
        if lead == 0:  # the next section ("Returns:") or prose
            break
        m = re.match(r"\*{0,2}(\w+(?:\s*,\s*\w+)*)\s*(\([^)]*\))?\s*:\s*(.*)", stripped)
        if m and (indent is None or lead <= indent):
            indent, current = lead, [n.strip() for n in m.group(1).split(",")]
            for n in current:
                out[n] = m.group(3)
        elif current is not None:
            for n in current:
                out[n] = f"{out[n]} {stripped}".strip()
    return out


def _annotation(p: inspect.Parameter) -> str:
    a = p.annotation
    if a is inspect.Parameter.empty:
        return ""
    return a if isinstance(a, str) else getattr(a, "__name__", str(a))


def takes_any(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes any keyword (a ``**kwargs`` parameter)."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def arguments(kind: str, name: str) -> list[PartArg]:
    """The arguments the part ``name`` of ``kind`` takes from a study (not those the engine passes),
    in signature order."""
    fn = plugins.get(kind, name)
    docs = _doc_args(fn)
    engine = set(ENGINE_ARGS.get(kind, ()))
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL) or p.name in engine:
            continue
        if p.name.startswith("_"):
            continue
        out.append(PartArg(p.name, _annotation(p), p.default, docs.get(p.name, "")))
    return out


def signature_problem(kind: str, name: str) -> str | None:
    """Why the engine cannot call part ``name`` of ``kind`` (it lacks a parameter the engine passes,
    or needs one nobody gives), or None."""
    if kind not in ENGINE_ARGS:
        return None
    fn = plugins.get(kind, name)
    params = inspect.signature(fn).parameters
    missing = [a for a in ENGINE_ARGS[kind] if a not in params and not takes_any(fn)]
    if missing:
        return (
            f"the {kind} '{name}' ({import_path(fn)}) must accept {', '.join(missing)}: the engine passes "
            f"{', '.join(ENGINE_ARGS[kind]) or 'no argument of its own'}; its signature is {inspect.signature(fn)}"
        )
    return None


def _type_ok(annotation: str, value: Any) -> bool | None:
    """Whether ``value`` fits a simple annotation (None: the annotation is not one this can read)."""
    if not annotation:
        return None
    fits: list[bool] = []
    for part in (x.strip() for x in _split_union(annotation)):
        base = part.split("[", 1)[0].strip()
        if part == "None":
            fits.append(value is None)
        elif base == "bool":
            fits.append(isinstance(value, bool))
        elif base == "int":
            fits.append(isinstance(value, int) and not isinstance(value, bool))
        elif base == "float":
            fits.append(isinstance(value, (int, float)) and not isinstance(value, bool))
        elif base == "str":
            fits.append(isinstance(value, str))
        elif base in ("list", "tuple", "Sequence", "typing.Sequence"):
            fits.append(isinstance(value, (list, tuple)))
        elif base in ("dict", "Mapping"):
            fits.append(isinstance(value, dict))
        elif base in ("Literal", "typing.Literal"):
            try:
                allowed = ast.literal_eval("(" + part[part.index("[") + 1 : part.rindex("]")] + ",)")
            except (ValueError, SyntaxError):
                return None
            fits.append(value in allowed)
        elif base in ("Any", "typing.Any", "object"):
            fits.append(True)
        else:
            return None
    return any(fits)


def _split_union(annotation: str) -> list[str]:
    """``"int | list[int] | None"`` → its members, brackets respected; ``Optional[X]`` → X, None."""
    if annotation.startswith("Optional[") and annotation.endswith("]"):
        return [annotation[9:-1], "None"]
    parts, depth, cur = [], 0, ""
    for ch in annotation:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def argument_problem(kind: str, name: str, arg: str, value: Any) -> tuple[str, list[str] | None] | None:
    """Why ``value`` for argument ``arg`` of part ``name`` is wrong: ``(message, the arguments it
    takes)``, or None. An argument the part does not take is wrong unless it takes ``**kwargs``."""
    fn = plugins.get(kind, name)
    args = {a.name: a for a in arguments(kind, name)}
    takes = [f"{a.name}: {a.type or 'any'} = {a.default_text()}" for a in args.values()]
    if arg not in args:
        if takes_any(fn):
            return None
        close = difflib.get_close_matches(arg, list(args), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"the {kind} '{name}' ({import_path(fn)}) takes no argument '{arg}'{hint}", takes or ["(none)"]
    a = args[arg]
    if _type_ok(a.type, value) is False:
        return f"the {kind} '{name}' takes {arg} as {a.type}", takes
    return None
