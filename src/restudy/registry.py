"""Deprecated: the plug-in registry is :mod:`restudy.plugins`; a study registers its parts through :mod:`restudy.api`.

Kept for one release: every name resolves from its new home with a ``DeprecationWarning``.
"""

from ._compat import moved

__getattr__ = moved(
    "restudy.registry",
    {
        "KINDS": "restudy.api",
        "TRAINING_KINDS": "restudy.plugins",
        "BUILTIN_MODULES": "restudy.plugins",
        "register": "restudy.api",
        "load_builtins": "restudy.plugins",
        "import_study_module": "restudy.plugins",
        "names": "restudy.api:registered",
        "get": "restudy.plugins",
        "create": "restudy.api",
    },
)
