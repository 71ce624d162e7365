"""Claims over several cells, tested as worded: ``every``, ``most``, ``mean``, ``any`` or ``share``.

A claim that selects several cells (the depths of a sweep, the networks of a table) says how they
enter the verdict, in the claim's ``quantifier``:

* ``every`` (the default: "each", "all", "every", "consistently"): each cell must pass on its own;
* ``most`` ("for most values", "generally", "in most settings"): more than half of the cells;
* ``any`` ("at least one", "in some settings"): one cell suffices;
* ``mean`` ("on average", a pooled number): one test on the mean over the cells, each seed's cells
  averaged first (so n counts seeds);
* ``share`` ("36 out of 60 were better", "most of these cases", "few instances"): the share of
  cells that pass must fall in the claim's band (``share: {at_least, at_most, reason}``).

"At least k of the n cells pass" is decided cell by cell: the claim is *reproduced* when k cells
pass their one-sided test at α/(n − k + 1), and *not reproduced* when n − k + 1 cells (enough
that fewer than k can pass) each show the opposite at α/k. Both keep the error at α whatever the
cells' true state: with ``every`` (k = n) a cell passes at α (an intersection–union test, Berger
1982) and one cell refuting at α/n refutes the claim (Bonferroni); with ``any`` (k = 1) one cell
passing at α/n suffices and every cell must refute at α; in general a false "at least k" needs a
null cell among the k passes, at most n − k + 1 of them are null when it matters, so α/(n − k + 1)
each bounds it. Pooling the cells instead would let one strong cell hide failing ones.

A ``share`` is bounded both ways at once: each cell is decided at α/n (Bonferroni), so with
probability ≥ 1 − α every decision is right and the true share of passing cells lies in
[passed/n, 1 − refuted/n] (cells decided neither way count on both sides). The claim is
reproduced when that interval lies inside the band, not reproduced when it lies outside it.

Each cell is decided from its own (1 − 2α′) interval at the α′ these rules give it
(:func:`cell_alphas`), and :func:`combine_cells` turns the cells' decisions into the claim's.

Imports spec and the sibling module verdicts only.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..spec.claim_base import QUANTIFIER_HELP, Quantifier, ShareBand
from .verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED

__all__ = [
    "QUANTIFIERS",
    "QUANTIFIER_HELP",
    "RULE_TEXT",
    "Quantifier",
    "ShareBand",
    "cell_alphas",
    "combine_cells",
    "counts_text",
    "required",
    "share_interval",
]

QUANTIFIERS: tuple[str, ...] = ("every", "most", "mean", "any", "share")
RULE_TEXT = {
    "every": "every cell must pass at α on its own; one cell refuting it at α/k refutes the claim",
    "most": "more than half of the k cells must pass (each at α/(k − m + 1) for m required); enough cells "
    "refuting it that no majority can pass refutes the claim",
    "mean": "one test on the mean over the cells (each seed's cells averaged first)",
    "any": "one cell passing at α/k suffices; every cell must refute it at α to refute the claim",
    "share": "each of the k cells is decided at α/k; the share of passing cells, bounded by [passed/k, "
    "1 − refuted/k], must lie inside the band (reproduced) or outside it (not reproduced)",
}


def required(quantifier: str, k: int) -> int:
    """How many of ``k`` cells must pass: all, a majority, one (``mean`` is one pooled cell;
    ``share`` has a band, not a count: every cell is counted)."""
    k = max(1, k)
    return {"every": k, "most": k // 2 + 1, "any": 1}.get(quantifier, k)


def cell_alphas(quantifier: str, k: int, alpha: float, groups: int = 1) -> tuple[float, float]:
    """The one-sided α of one cell's *passing* and of its *refuting* decision.

    Args:
        quantifier: ``every``, ``most``, ``mean``, ``any`` or ``share`` (``mean`` is one cell:
            ``k`` = 1).
        k: the cells of one comparison.
        alpha: the claim's α.
        groups: comparisons that must all hold (e.g. a beats each of several b's): the claim is
            refuted when one of them is, so refuting decisions share α over ``groups`` too.

    Returns:
        ``(alpha_pass, alpha_refute)``: α/(k − m + 1) and α/(m · groups) for m = :func:`required`;
        α/(k · groups) both for ``share``.
    """
    k, groups = max(1, k), max(1, groups)
    if quantifier == "share":
        return alpha / (k * groups), alpha / (k * groups)
    m = required(quantifier, k)
    return alpha / (k - m + 1), alpha / (m * groups)


def share_interval(passed: Sequence[bool], refuted: Sequence[bool]) -> tuple[float, float]:
    """The share of passing cells, bounded: ``(passed/k, 1 − refuted/k)``."""
    k = max(1, len(passed))
    return sum(passed) / k, 1.0 - sum(refuted) / k


def combine_cells(
    quantifier: str, passed: Sequence[bool], refuted: Sequence[bool], share: ShareBand | None = None
) -> str:
    """The verdict of one comparison from its cells' decisions (each at its :func:`cell_alphas`)."""
    if not passed:
        return INCONCLUSIVE
    if quantifier == "share":
        if share is None:
            raise ValueError("quantifier share needs its band")
        low, high = share_interval(passed, refuted)
        least = share.at_least if share.at_least is not None else 0.0
        most = share.at_most if share.at_most is not None else 1.0
        if low >= least and high <= most:
            return REPRODUCED
        return NOT_REPRODUCED if high < least or low > most else INCONCLUSIVE
    m = required(quantifier, len(passed))
    if sum(passed) >= m:
        return REPRODUCED
    return NOT_REPRODUCED if sum(refuted) >= len(passed) - m + 1 else INCONCLUSIVE


def counts_text(
    quantifier: str,
    passed: Sequence[bool],
    refuted: Sequence[bool],
    share: ShareBand | None = None,
    what: str = "cells",
) -> str:
    """``every of 5 cells: 3 pass, 1 refute``; for a share also its bounds against the band."""
    head = f"{quantifier} of {len(passed)} {what}: {sum(passed)} pass, {sum(refuted)} refute"
    if quantifier == "share" and share is not None:
        low, high = share_interval(passed, refuted)
        span = f"{low:.0%}" if low == high else f"between {low:.0%} and {high:.0%}"
        head += f" (share passing {span}; band {share.text()})"
    return head
