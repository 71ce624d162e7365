"""Model-set views: the name a study gives to one kind of stored prediction (``test``,
``tta:<strategy>``, ``ensemble``, ``ensemble+tta:<strategy>``) and the tensor of a run's
``test_logits.safetensors`` it reads (:mod:`restudy.storage.artifacts`).

A view is ``name`` or ``name:argument``; ``name`` is looked up in the ``view`` registry, whose
function maps the argument ("" when none) to a tensor name, raising ``ValueError`` for a bad one.
A study adds a view like any other part::

    @register("view", "snapshot")
    def snapshot(arg: str) -> str:
        return artifacts.snapshot_tensor(int(arg))

Imports the plug-in registry, storage.artifacts and the (torch-free) TTA strategy names of spec.
"""

from __future__ import annotations

from ..errors import RestudyError
from ..plugins import get, names, register
from ..spec.tta_strategies import tta_names_problem
from ..storage import artifacts

FEATURES = "features"  # penultimate features for CKA: read internally, not a study's view


def _no_argument(name: str, arg: str) -> None:
    if arg:
        raise ValueError(f"view '{name}' takes no ':argument'")


def _strategy(name: str, arg: str) -> str:
    problem = tta_names_problem([arg.replace("+", "_")])  # 'flip+crop81' is stored as flip_crop81
    if problem:
        raise ValueError(f"view '{name}:<strategy>': {problem}")
    return arg


@register("view", "test")
def test(arg: str) -> str:
    """The final-epoch test logits."""
    _no_argument("test", arg)
    return artifacts.TENSOR_LOGITS


@register("view", "tta")
def tta(arg: str) -> str:
    """The final model's test-time-augmented logits for strategy ``arg``."""
    return artifacts.tta_tensor(_strategy("tta", arg))


@register("view", "ensemble")
def ensemble(arg: str) -> str:
    """The run's snapshot ensemble (mean of its snapshots' logits)."""
    _no_argument("ensemble", arg)
    return artifacts.TENSOR_ENSEMBLE


@register("view", "ensemble+tta")
def ensemble_tta(arg: str) -> str:
    """The snapshot ensemble's mean TTA logits for strategy ``arg``."""
    return artifacts.ensemble_tta_tensor(_strategy("ensemble+tta", arg))


def view_tensor(view: str) -> str:
    """The tensor name a view reads.

    Raises:
        ValueError: for an unknown view name (naming the registered ones) or a bad argument.
    """
    if view == FEATURES:
        return artifacts.TENSOR_FEATURES
    name, _, arg = view.partition(":")
    try:
        fn = get("view", name)
    except RestudyError:
        raise ValueError(f"unknown view {name!r}; allowed: {', '.join(allowed_views())}") from None
    return fn(arg)


def allowed_views() -> list[str]:
    """The registered view names, as a study writes them (``tta:<argument>`` style not shown)."""
    return names("view")
