"""Claims over several cells, tested as worded: ``every``, ``mean`` or ``any``.

A claim that selects several cells (the depths of a sweep, the networks of a table, the b's it is
compared with) says how they enter the verdict, in the claim's ``quantifier``:

* ``every`` (the default: "each", "all", "every", "consistently"): each cell must pass on its own.
  An intersection–union test: the claim is *reproduced* when every cell's one-sided test rejects at
  α (no correction is needed for "all of them", Berger 1982), and *not reproduced* when some cell
  shows the opposite at α/k (Bonferroni over the k cells that could each refute it). Pooling the
  cells instead would let one strong cell hide a failing one.
* ``mean`` ("on average", a pooled number): one test on the mean over the cells, each seed's cells
  averaged first (so n counts seeds).
* ``any`` ("at least one", "in some settings"): *reproduced* when some cell passes at α/k, *not
  reproduced* when every cell shows the opposite at α.

Each cell is decided from its own (1 − 2α′) interval at the α′ these rules give it
(:func:`cell_alphas`), and :func:`combine_cells` turns the cells' decisions into the claim's.

Imports the sibling module verdicts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

Quantifier = Literal["every", "mean", "any"]
QUANTIFIERS: tuple[str, ...] = ("every", "mean", "any")
QUANTIFIER_HELP = (
    "how the selected cells enter the verdict: every (each cell must pass on its own; the default, "
    "for 'each/all/every' statements), mean (one test on the mean over the cells) or any (at least one cell)"
)
RULE_TEXT = {
    "every": "every cell must pass at α on its own; one cell refuting it at α/k refutes the claim",
    "mean": "one test on the mean over the cells (each seed's cells averaged first)",
    "any": "one cell passing at α/k suffices; every cell must refute it at α to refute the claim",
}


def cell_alphas(quantifier: str, k: int, alpha: float, groups: int = 1) -> tuple[float, float]:
    """The one-sided α of one cell's *passing* and of its *refuting* decision.

    Args:
        quantifier: ``every``, ``mean`` or ``any`` (``mean`` is one cell: ``k`` = 1).
        k: the cells of one comparison.
        alpha: the claim's α.
        groups: comparisons that must all hold (e.g. a beats each of several b's): the claim is
            refuted when one of them is, so refuting decisions share α over ``groups`` too.

    Returns:
        ``(alpha_pass, alpha_refute)``.
    """
    k = max(1, k)
    groups = max(1, groups)
    if quantifier == "any":
        return alpha / k, alpha / groups
    if quantifier == "every":
        return alpha, alpha / (k * groups)
    return alpha, alpha / groups


def combine_cells(quantifier: str, passed: Sequence[bool], refuted: Sequence[bool]) -> str:
    """The verdict of one comparison from its cells' decisions (each at its :func:`cell_alphas`)."""
    if not passed:
        return INCONCLUSIVE
    if quantifier == "any":
        if any(passed):
            return REPRODUCED
        return NOT_REPRODUCED if all(refuted) else INCONCLUSIVE
    if all(passed):
        return REPRODUCED
    return NOT_REPRODUCED if any(refuted) else INCONCLUSIVE
