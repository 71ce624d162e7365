"""Claim kinds as plug-ins: one module per kind (``numeric``, ``a_beats_b``, ``trend``,
``threshold``, ``variability``), each holding its schema, its evaluator, its figure and how the
report writes its evidence, registered in the ``claim`` registry (:mod:`restudy.claims.base`).

A study adds a kind from its own module with :func:`register_claim_kind`; the study loader,
:func:`restudy.compare.compare` and the report find it by name.

Imports study, registry and (for its evaluators' context) compare.
"""

from __future__ import annotations

from ..compare.context import EvaluationContext
from ..compare.results import ClaimResult
from ..study import ClaimBase, Selector
from .base import ClaimKind, claim_kind, claim_kinds, kind_name, register_claim_kind

__all__ = [
    "ClaimBase",
    "ClaimKind",
    "ClaimResult",
    "EvaluationContext",
    "Selector",
    "claim_kind",
    "claim_kinds",
    "kind_name",
    "register_claim_kind",
]
