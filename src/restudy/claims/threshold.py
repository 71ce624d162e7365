"""Claim kind ``threshold``: the mean of the metric over the selected runs is above/below ``value``.

For ``diverged`` the rate k/n of runs with its Clopper–Pearson (1 − 2α) interval, else the
(1 − 2α) CI of the mean over seeds: the selected runs (several cells, e.g. every randomization)
are first averaged within each seed index, so n counts seeds, never cells (n ≥ 2; accuracies keep
one run's binomial test-set SD as the floor of the SD). ``>=``: reproduced if CI low ≥ value,
not reproduced if CI high < value; ``<=`` mirrors it. Inconclusive means get the seeds for 80 %
power either way; a verdict whose deciding edge lies within 10 % of the value is borderline. The
evidence adds, per variant, the rate with its interval (``groups``) or the runs' values with
mean ± 95 % CI (``series``): what the figure draws.

Imports spec, stats, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from ..compare.select import (
    Row,
    absent_reason,
    group_rows,
    level_unit,
    metric_value,
    per_seed_means,
    select_runs,
    series,
    summarize_runs,
    usable,
)
from ..compare.verdicts import INCONCLUSIVE, NOT_REPRODUCED, POWER, REPRODUCED, threshold_borderline
from ..display.numbers import fmt, pct
from ..spec.claim_base import ClaimBase, Selector
from ..spec.values import Loc
from ..stats.intervals import rate_ci
from ..stats.power import seeds_needed
from ..stats.summary import summarize
from .base import ClaimKind, register_claim_kind


class ThresholdClaim(ClaimBase):
    """The mean of the metric over the selected runs is above/below ``value`` (for ``diverged``,
    the rate of diverged runs, with an exact binomial interval)."""

    kind: Literal["threshold"]
    select: Selector
    op: Literal[">=", "<="]
    value: float

    def selectors(self) -> list[tuple[Loc, Selector]]:
        return [(("select",), self.select)]


OP_TEXT = {">=": "≥", "<=": "≤"}


def _verdict(op: str, low: float, high: float, value: float) -> str:
    if op == ">=":
        return REPRODUCED if low >= value else NOT_REPRODUCED if high < value else INCONCLUSIVE
    return REPRODUCED if high <= value else NOT_REPRODUCED if low > value else INCONCLUSIVE


def _near(op: str, low: float, high: float, value: float, verdict: str) -> bool:
    """Borderline when the deciding edge lies within 10 % of the interval's width of the value: a
    threshold on a level (an accuracy, a rate) has no size that says what is close to it."""
    below = (verdict == REPRODUCED) == (op == "<=")
    return threshold_borderline(low, high, value, below, verdict, by_width=True)


def _rate(label: str, runs: list[Row], conf: float) -> dict[str, Any]:
    k = int(sum(metric_value(r, "diverged") >= 0.5 for r in runs))
    low, high = rate_ci(k, len(runs), conf)
    return {"label": label, "k": k, "n": len(runs), "rate": k / len(runs), "ci_low": low, "ci_high": high}


def _rate_threshold(claim: ThresholdClaim, runs: list[Row], conf: float) -> tuple[str, str, dict]:
    k = int(sum(metric_value(r, "diverged") >= 0.5 for r in runs))
    n = len(runs)
    value, note = claim.value, ""
    if value > 1.0:
        value, note = value / 100.0, "value > 1 was read as a percentage"
    low, high = rate_ci(k, n, conf)
    verdict = _verdict(claim.op, low, high, value)
    summary = (
        f"{k}/{n} runs diverged (rate {k / n:.0%}, {pct(conf)} Clopper-Pearson CI "
        f"[{low:.0%}, {high:.0%}]); claimed {OP_TEXT[claim.op]} {value:.0%}"
    )
    groups = [_rate(vid, rs, conf) for (_, vid), rs in group_rows(runs).items()] + [_rate("all", runs, conf)]
    return (
        verdict,
        summary,
        {
            "k": k,
            "n": n,
            "rate": k / n,
            "ci_low": low,
            "ci_high": high,
            "confidence": conf,
            "value": value,
            "op": claim.op,
            "note": note,
            "groups": groups,
            "borderline": _near(claim.op, low, high, value, verdict),
        },
    )


def _mean_threshold(claim: ThresholdClaim, runs: list[Row], conf: float) -> tuple[str, str, dict, int | None]:
    floor = summarize_runs(runs, claim.metric, conf)[1]
    seeds, means = per_seed_means((r["seed_index"], metric_value(r, claim.metric)) for r in runs)
    s = summarize(means, confidence=conf, floor_sd=floor)
    u = level_unit(claim.metric)  # a level, not a difference: 99.72%, not 99.72 pp
    evidence = {
        **s.to_dict(),
        "sd_floor": floor,
        "confidence": conf,
        "value": claim.value,
        "op": claim.op,
        "series": [series(vid, rs, claim.metric) for (_, vid), rs in group_rows(runs).items()],
        "seeds": seeds,
        "seed_means": means,
        "runs": len(runs),
    }
    per = f", {len(runs)} runs averaged within each seed" if len(runs) > len(seeds) else ""
    summary = (
        f"mean {claim.metric} {fmt(s.mean)}{u} ({pct(conf)} CI [{fmt(s.ci_low)}, "
        f"{fmt(s.ci_high)}], n={s.n} seeds{per}); claimed {OP_TEXT[claim.op]} {claim.value:g}{u}"
    )
    if s.n < 2:
        return INCONCLUSIVE, summary + "; one seed has no seed-to-seed spread", evidence, None
    verdict = _verdict(claim.op, s.ci_low, s.ci_high, claim.value)
    seeds = None
    evidence["borderline"] = _near(claim.op, s.ci_low, s.ci_high, claim.value, verdict)
    if verdict == INCONCLUSIVE:
        effect = s.mean - claim.value if claim.op == ">=" else claim.value - s.mean
        if effect != 0 and math.isfinite(s.sd_used) and math.isfinite(effect):
            seeds = seeds_needed(abs(effect), s.sd_used, alpha=claim.alpha, power=POWER)
            goal = "to establish the claim" if effect > 0 else "to establish that it does not hold"
            evidence["seeds_note"] = f"about {seeds} seeds for 80% power {goal}" if seeds else ""
    return verdict, summary, evidence, seeds


def evaluate(claim: ThresholdClaim, ctx: Any) -> Any:
    """Compares the rate's or the mean's interval with the claimed value."""
    all_runs = select_runs(ctx.rows, claim.select)
    runs = usable(all_runs)
    if not runs:
        why = absent_reason(ctx.rows, claim.select)
        return ctx.result(claim, INCONCLUSIVE, why, {"n_failed": len(all_runs), "why": why})
    conf = 1.0 - 2.0 * claim.alpha
    seeds = None
    if claim.metric == "diverged":
        verdict, summary, evidence = _rate_threshold(claim, runs, conf)
    else:
        verdict, summary, evidence, seeds = _mean_threshold(claim, runs, conf)
    evidence["n_failed"] = len(all_runs) - len(runs)
    if evidence.get("seeds_note"):
        summary += f". To decide: {evidence['seeds_note']}"
    return ctx.result(claim, verdict, summary, evidence, seeds, borderline=bool(evidence.get("borderline")))


def _rate_bars(ax: Any, groups: list[dict[str, Any]], value: float, confidence: float, draw: Any) -> None:
    for i, g in enumerate(groups):
        color = "tab:grey" if g["label"] == "all" else "tab:orange"
        ax.bar(i, g["rate"], color=color, alpha=0.7)
        ax.errorbar(
            [i], [g["rate"]], yerr=[[g["rate"] - g["ci_low"]], [g["ci_high"] - g["rate"]]], color="black", capsize=4
        )
        ax.text(i, 0.03, f"{g['k']}/{g['n']}", ha="center", fontsize=8)
    ax.axhline(value if value <= 1 else value / 100, color="tab:red", linestyle="--", label="claimed threshold")
    ax.set_xticks(range(len(groups)), [g["label"] for g in groups], rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"fraction of runs diverged ({pct(confidence)} exact CI)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def figure(claim: ThresholdClaim, result: Any, path: Path) -> Path | None:
    """Divergence rates per variant with exact CIs, or per-run values with mean ± 95 % CI, and
    the claimed threshold."""
    ev = result.evidence
    if "n_failed" not in ev:
        return None
    from ..display import draw

    fig, ax = draw.subplots(figsize=(7.5, 4.2))
    if ev.get("groups"):
        _rate_bars(ax, ev["groups"], claim.value, ev.get("confidence") or 0.95, draw)
    else:
        draw.series_panel(ax, ev.get("series") or [], None)
        ax.axhline(claim.value, color="tab:red", linestyle="--", label="claimed threshold")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.set_ylabel(draw.metric_label(claim.metric))
        ax.legend(fontsize=8)
    draw.title(ax, result)
    return draw.save(fig, path)


def render(claim: ThresholdClaim, result: Any) -> tuple[list[str], None]:
    """Failed runs left out, and how the value was read."""
    from ..display.tables import seeds_line

    ev = result.evidence
    lines = [f"Failed runs (excluded): {ev.get('n_failed', 0)}."]
    if ev.get("note"):
        lines.append(ev["note"])
    return lines + [seeds_line(result)], None


@register_claim_kind
class Threshold(ClaimKind):
    schema = ThresholdClaim
    rule = "a *threshold* compares an interval (exact binomial for divergence rates) with the value"
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
