"""Exception hierarchy. Every user-facing error says where, what was got and what is allowed.

Imports nothing from restudy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_NOTHING: Any = object()  # no offending value (``None`` may be one: ``got: None``)


class RestudyError(Exception):
    """Base of every error restudy raises on purpose (bad input, missing data, unsafe files).

    Args:
        message: what is wrong, in one sentence.
        where: the place: a file (and line) and/or a field path such as ``experiments.fc.lr``.
        got: the offending value, if any.
        allowed: the allowed values or range, if known.
        path: the field path as keys (a setting name such as ``optimizer.lr`` is one key), for
            programs; ``where`` is what a user reads.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        got: Any = _NOTHING,
        allowed: Iterable[Any] | str | None = None,
        path: tuple[str | int, ...] | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.path = path
        self.has_got = got is not _NOTHING
        self.got = got if self.has_got else None
        if allowed is not None and not isinstance(allowed, str):
            allowed = ", ".join(str(a) for a in allowed)
        self.allowed = allowed
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.allowed is not None:
            parts.append(f"allowed: {self.allowed}")
        if self.has_got:
            parts.append(f"got: {self.got!r}")
        return "; ".join(parts)


class StudyError(RestudyError):
    """A study file or a command-line override is invalid."""


class DataError(RestudyError):
    """A data set is missing, corrupt or fails its checksum."""


class StoreError(RestudyError):
    """The run store cannot be read or written."""


class UnsafeFileError(RestudyError):
    """A file would have to be unpickled or otherwise executed to be read."""
