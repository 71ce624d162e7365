"""Claims over several cells, tested as worded: ``every``, ``most``, ``mean`` or ``any``.

A claim that selects several cells (the depths of a sweep, the networks of a table) says how they
enter the verdict, in the claim's ``quantifier``:

* ``every`` (the default: "each", "all", "every", "consistently"): each cell must pass on its own;
* ``most`` ("for most values", "generally", "in most settings"): more than half of the cells;
* ``any`` ("at least one", "in some settings"): one cell suffices;
* ``mean`` ("on average", a pooled number): one test on the mean over the cells, each seed's cells
  averaged first (so n counts seeds).

"At least k of the n cells pass" is decided cell by cell: the claim is *reproduced* when k cells
pass their one-sided test at α/(n − k + 1), and *not reproduced* when n − k + 1 cells (enough
that fewer than k can pass) each show the opposite at α/k. Both keep the error at α whatever the
cells' true state: with ``every`` (k = n) a cell passes at α (an intersection–union test, Berger
1982) and one cell refuting at α/n refutes the claim (Bonferroni); with ``any`` (k = 1) one cell
passing at α/n suffices and every cell must refute at α; in general a false "at least k" needs a
null cell among the k passes, at most n − k + 1 of them are null when it matters, so α/(n − k + 1)
each bounds it. Pooling the cells instead would let one strong cell hide failing ones.

Each cell is decided from its own (1 − 2α′) interval at the α′ these rules give it
(:func:`cell_alphas`), and :func:`combine_cells` turns the cells' decisions into the claim's.

Imports the sibling module verdicts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

Quantifier = Literal["every", "most", "mean", "any"]
QUANTIFIERS: tuple[str, ...] = ("every", "most", "mean", "any")
QUANTIFIER_HELP = (
    "how the selected cells enter the verdict: every (each cell must pass on its own; the default, "
    "for 'each/all/every' statements), most (more than half of the cells), mean (one test on the mean "
    "over the cells) or any (at least one cell)"
)
RULE_TEXT = {
    "every": "every cell must pass at α on its own; one cell refuting it at α/k refutes the claim",
    "most": "more than half of the k cells must pass (each at α/(k − m + 1) for m required); enough cells "
    "refuting it that no majority can pass refutes the claim",
    "mean": "one test on the mean over the cells (each seed's cells averaged first)",
    "any": "one cell passing at α/k suffices; every cell must refute it at α to refute the claim",
}


def required(quantifier: str, k: int) -> int:
    """How many of ``k`` cells must pass: all, a majority, one (``mean`` is one pooled cell)."""
    k = max(1, k)
    return {"every": k, "most": k // 2 + 1, "any": 1}.get(quantifier, k)


def cell_alphas(quantifier: str, k: int, alpha: float, groups: int = 1) -> tuple[float, float]:
    """The one-sided α of one cell's *passing* and of its *refuting* decision.

    Args:
        quantifier: ``every``, ``most``, ``mean`` or ``any`` (``mean`` is one cell: ``k`` = 1).
        k: the cells of one comparison.
        alpha: the claim's α.
        groups: comparisons that must all hold (e.g. a beats each of several b's): the claim is
            refuted when one of them is, so refuting decisions share α over ``groups`` too.

    Returns:
        ``(alpha_pass, alpha_refute)``: α/(k − m + 1) and α/(m · groups) for m = :func:`required`.
    """
    k, groups = max(1, k), max(1, groups)
    m = required(quantifier, k)
    return alpha / (k - m + 1), alpha / (m * groups)


def combine_cells(quantifier: str, passed: Sequence[bool], refuted: Sequence[bool]) -> str:
    """The verdict of one comparison from its cells' decisions (each at its :func:`cell_alphas`)."""
    if not passed:
        return INCONCLUSIVE
    m = required(quantifier, len(passed))
    if sum(passed) >= m:
        return REPRODUCED
    return NOT_REPRODUCED if sum(refuted) >= len(passed) - m + 1 else INCONCLUSIVE
