"""The study's claim kinds about fitting the training set within a budget (registered with
``register_claim_kind``); :mod:`.claims` has the others.

* ``unfit_runs``: some of the selected runs never fit their training set within the cap ("some
  initializations resulted in no convergence"): reproduced when at least one run never fit (or
  diverged), which cannot happen if no run stalls; not reproduced when none did and the one-sided
  (1 − α) upper bound of their share, 1 − α^(1/n) for 0 of n runs, is below ``some``.
* ``slowdown_order``: two models' slowdowns (time to fit at the highest level of ``over`` over the
  lowest, per seed) come in opposite orders under two protocols (the runs of ``paper`` and of
  ``capped``): the per-seed log ratio of the two slowdowns has its CI above 0 under one and below
  0 under the other, each at α/2 so that a false "inverted" stays at α; the same side under both
  refutes it. A run of ``paper`` that never fit leaves its order open.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from restudy.api import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimBase,
    ClaimKind,
    Field,
    Selector,
    fmt,
    metric_value,
    register_claim_kind,
    summarize,
)

__all__ = ["SlowdownOrder", "UnfitRuns"]


def _level(r: dict[str, Any], axis: str) -> float:
    return float((r.get("variant") or {})[axis])


# --------------------------------------------------------------------------- runs that never fit


class UnfitRuns(ClaimBase):
    """Some of the selected runs never fit their training set within the training cap ("some
    initializations resulted in no convergence")."""

    kind: Literal["unfit_runs"]
    select: Selector
    metric: Literal["fit_step"] = "fit_step"
    some: float = Field(gt=0, le=1, description="the smallest share of runs that 'some' can mean")
    some_reason: str = Field(min_length=1, description="why that share (shown in the report)")

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select",), self.select)]


def _unfit(r: dict[str, Any]) -> bool | None:
    """Whether a run never fit (diverged, or trained with stop_at_fit and has no fit_step); None
    when the run did not track its fit (stop_at_fit off)."""
    if r.get("status") == "diverged":
        return True
    metrics = r.get("metrics") or {}
    if "fit_step" not in metrics:
        return None
    return metrics["fit_step"] is None


@register_claim_kind
class UnfitRunsKind(ClaimKind):
    schema = UnfitRuns
    rule = (
        "an *unfit runs* claim holds when at least one selected run never fits its training set within the cap "
        "(no run does when none can); it is not reproduced when none does and the one-sided (1 − α) upper bound "
        "of the share of such runs (Clopper–Pearson, 1 − α^(1/n) for 0 of n) lies below the share 'some' means"
    )

    @staticmethod
    def evaluate(claim: UnfitRuns, ctx: Any) -> Any:
        runs = ctx.runs(claim.select)
        flags = [_unfit(r) for r in runs]
        if not runs or any(f is None for f in flags):
            why = "no runs selected" if not runs else "the runs do not track their fit (stop_at_fit off)"
            return ctx.result(claim, NOT_EVALUATED, why, {}, metric="fit_step")
        n, k = len(flags), sum(bool(f) for f in flags)
        upper = 1.0 if k else 1.0 - claim.alpha ** (1.0 / n)
        if k:
            verdict = REPRODUCED
        else:
            verdict = NOT_REPRODUCED if upper < claim.some else INCONCLUSIVE
        per_variant = {label: sum(bool(_unfit(r)) for r in rs) for label, rs in sorted(_variants(runs).items())}
        where = ", ".join(f"{label} {u}" for label, u in per_variant.items() if u)
        summary = f"{k} of {n} runs never fit within the cap" + (f" ({where})" if where else "")
        if not k:
            summary += (
                f"; the share of such runs is below {fmt(100 * upper)} % ({round((1 - claim.alpha) * 100)}% upper "
                f"bound) vs 'some' = at least {fmt(100 * claim.some)} %"
            )
        ev = {"unfit": k, "runs": n, "upper": upper, "some": claim.some, "some_reason": claim.some_reason}
        return ctx.result(claim, verdict, summary, ev | {"per_variant": per_variant}, metric="fit_step")


# --------------------------------------------------------------------------- order of two slowdowns


class SlowdownOrder(ClaimBase):
    """Two models' slowdowns (time to fit at the highest level of ``over`` over the lowest) come in
    opposite orders under two protocols: ``paper`` (its runs' ``paper_metric``, e.g. steps until
    the training set is fit) and ``capped`` (``capped_metric``, e.g. epochs until a target accuracy
    or the cap)."""

    kind: Literal["slowdown_order"]
    metric: str = "fit_step"
    paper: Selector
    capped: Selector
    capped_metric: str = "epochs_done"
    over: str
    by: str
    a: str
    b: str

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("paper",), self.paper), (("capped",), self.capped)]


def _log_gaps(claim: SlowdownOrder, rs: list[dict[str, Any]], metric: str) -> tuple[list[float], int]:
    """Per seed, log(slowdown of a) − log(slowdown of b); and how many runs lack the metric."""
    value: dict[tuple[int, str, float], float] = {}
    missing = 0
    for r in rs:
        v = (r.get("variant") or {}).get(claim.by)
        x = metric_value(r, metric)
        if not (math.isfinite(x) and x > 0):
            missing += 1
            continue
        value[(r["seed_index"], str(v), _level(r, claim.over))] = x
    levels = sorted({k[2] for k in value})
    if len(levels) < 2:
        return [], missing
    lo, hi = levels[0], levels[-1]
    gaps = []
    for s in sorted({k[0] for k in value}):
        need = [(s, m, x) for m in (claim.a, claim.b) for x in (lo, hi)]
        if all(k in value for k in need):
            ra = value[(s, claim.a, hi)] / value[(s, claim.a, lo)]
            rb = value[(s, claim.b, hi)] / value[(s, claim.b, lo)]
            gaps.append(math.log(ra / rb))
    return gaps, missing


@register_claim_kind
class SlowdownOrderKind(ClaimKind):
    schema = SlowdownOrder
    rule = (
        "a *slowdown order* claim holds when the per-seed log ratio of two models' slowdowns has its CI above 0 "
        "under one protocol and below 0 under the other (each at α/2); the same side under both refutes it"
    )

    @staticmethod
    def evaluate(claim: SlowdownOrder, ctx: Any) -> Any:
        sides = {}
        for name, sel, metric in (("paper", claim.paper, claim.metric), ("capped", claim.capped, claim.capped_metric)):
            rs = [r for r in ctx.runs(sel) if str((r.get("variant") or {}).get(claim.by)) in (claim.a, claim.b)]
            if not rs:
                return ctx.result(claim, NOT_EVALUATED, f"no {name} runs of {claim.a} and {claim.b}", {})
            gaps, missing = _log_gaps(claim, rs, metric)
            if len(gaps) < 2:
                sides[name] = {"sign": 0, "seeds": len(gaps), "missing": missing, "ratio": math.nan}
                continue
            s = summarize(gaps, 1 - claim.alpha)  # two-sided 1 − α: each one-sided decision at α/2
            sign = 1 if s.ci_low > 0 else -1 if s.ci_high < 0 else 0
            if missing and name == "paper":
                sign = 0  # a run that never fit: its time to fit, and the order, are not known
            sides[name] = {
                "sign": sign,
                "seeds": s.n,
                "missing": missing,
                "ratio": math.exp(s.mean),
                "ci_low": math.exp(s.ci_low),
                "ci_high": math.exp(s.ci_high),
            }
        product = sides["paper"]["sign"] * sides["capped"]["sign"]
        verdict = REPRODUCED if product < 0 else NOT_REPRODUCED if product > 0 else INCONCLUSIVE
        conf = round((1 - claim.alpha) * 100)
        summary = "; ".join(
            f"{name}: slowdown of {claim.a} / {claim.b} ×{fmt(g['ratio'])}"
            + (f" ({conf}% CI [{fmt(g['ci_low'])}, {fmt(g['ci_high'])}]" if "ci_low" in g else " (")
            + f", n={g['seeds']} seeds)"
            + (f", {g['missing']} runs without a time to fit" if g["missing"] else "")
            for name, g in sides.items()
        )
        return ctx.result(claim, verdict, summary + "; claimed in opposite orders", {"sides": sides})


def _variants(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(r.get("variant_id") or "-", []).append(r)
    return groups
