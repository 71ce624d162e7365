"""Claim kinds as plug-ins: one module per kind (``numeric``, ``a_beats_b``, ``trend``,
``threshold``, ``variability``), each holding its schema, its evaluator, its figure and how the
report writes its evidence, registered as ``claim`` plug-ins by :func:`restudy.claims.base.register_claim_kind`.

A study adds a kind from its own module with :func:`restudy.api.register_claim_kind`; the study
loader, :func:`restudy.compare.compare` and the report find it by name.

The names this package used to export (``restudy.claims.ClaimBase``, ``register_claim_kind``, ...)
still resolve for one release, with a ``DeprecationWarning`` naming :mod:`restudy.api`.
"""

from __future__ import annotations

from .._compat import moved

__getattr__ = moved(
    "restudy.claims",
    {
        "ClaimBase": "restudy.api",
        "ClaimKind": "restudy.api",
        "ClaimResult": "restudy.api",
        "EvaluationContext": "restudy.api",
        "Selector": "restudy.api",
        "claim_kind": "restudy.api",
        "claim_kinds": "restudy.api",
        "kind_name": "restudy.claims.base",
        "register_claim_kind": "restudy.api",
    },
)
