"""The value types of a study file: provenance, sources of randomness, scales, levels, a setting's
value with its provenance (:class:`Hyper`), and the frozen, extra-forbidding base of every schema.

Imports pydantic only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

Provenance = Literal["paper", "code", "authors", "reproduction", "figure", "calibrated", "assumed"]
PROVENANCES: tuple[str, ...] = ("paper", "code", "authors", "reproduction", "figure", "calibrated", "assumed")
PROVENANCE_MEANING: dict[str, str] = {
    "paper": "stated in the original paper",
    "code": "found in the original code",
    "authors": "told by the original authors",
    "reproduction": "taken from a reproduction report, not from the original paper or code",
    "figure": "read off a figure (the source names it)",
    "calibrated": "chosen after looking at outcomes: verdicts that depend on it say so",
    "assumed": "assumed (not published anywhere)",
}
Source = Literal["init", "order", "augment", "dropout", "perturb", "data"]
SOURCES: tuple[str, ...] = ("init", "order", "augment", "dropout", "perturb", "data")
ScaleName = Literal["smoke", "small", "paper"]
SCALES: tuple[str, ...] = ("smoke", "small", "paper")
Scalar = Union[bool, int, float, str, None]
Level = Union[int, float, str, bool]

ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")


class Frozen(BaseModel):
    # NaN and infinity are refused wherever the schema expects a number (a setting's own value is
    # checked against its declaration when the study is planned).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_id(v: str) -> str:
    if not ID_PATTERN.match(v):
        raise ValueError(f"must start with a letter and use only letters, digits, '_' or '-'; got {v!r}")
    return v


class Hyper(Frozen):
    """One hyperparameter: its value and where that value comes from."""

    value: Any
    provenance: Provenance
    source: str = Field("", description="short note: 'Sec. 4.1', 'main.py', 'rep2019 Table 1'")


# A setting's value where a bare value is allowed: a ``Hyper`` (a mapping with value and
# provenance) or a plain value, whose provenance is then "assumed".
Plain = Union[bool, int, float, str, None, list[Any]]
# The union's tags appear in pydantic's error locations; error messages leave them out.
SETTING_TAGS: tuple[str, ...] = ("<with provenance>", "<bare value>")


def _setting_form(v: Any) -> str:
    return SETTING_TAGS[0] if isinstance(v, (dict, Hyper)) else SETTING_TAGS[1]


SettingValue = Annotated[
    Union[Annotated[Hyper, Tag(SETTING_TAGS[0])], Annotated[Plain, Tag(SETTING_TAGS[1])]], Discriminator(_setting_form)
]
Settings = dict[str, SettingValue]


def level_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


Loc = tuple[Union[str, int], ...]
"""A field path inside a claim, as pydantic writes locations: ``("b", 0, "experiment")``."""


def raise_located(errors: list[tuple[Loc, str, Any]], title: str) -> None:
    """Raise the problems as one ``ValidationError`` whose locations are field paths (so that the
    study file's loader names ``file:line`` of each)."""
    if not errors:
        return
    from pydantic_core import PydanticCustomError, ValidationError

    raise ValidationError.from_exception_data(
        title,
        [{"type": PydanticCustomError("reference", msg), "loc": loc, "input": got} for loc, msg, got in errors],
    )
