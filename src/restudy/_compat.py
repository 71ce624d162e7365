"""Import paths that moved, kept working for one release: a module ``__getattr__`` that resolves an
old name from its new home with a ``DeprecationWarning`` naming that home.

Only restudy's deprecated paths use this module (``restudy.registry``, ``restudy.metrics``,
``restudy.compare.results``, and the package-level names of ``restudy.claims`` and
``restudy.stats``); nothing inside restudy imports through them.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

REMOVAL = "the next release"


def moved(old_module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old_module`` whose ``names`` moved.

    Args:
        old_module: the deprecated module's dotted name.
        names: old name -> ``"new.module"`` (same name there) or ``"new.module:new_name"``.
    """

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        attr = attr or name
        value = getattr(importlib.import_module(module), attr)
        # ``from package import name`` asks twice: the import system's hasattr() probe, then the
        # import itself. Warn once, at the import.
        if sys._getframe(1).f_code.co_name == "_handle_fromlist":
            return value
        warnings.warn(
            f"{old_module}.{name} is deprecated and will be removed in {REMOVAL}; "
            f"import it from {module} ({module}.{attr})",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    return __getattr__
