"""Claim kind ``threshold``: the mean of the metric over the selected runs is above/below ``value``.

For ``diverged`` the rate k/n of runs with its Clopper–Pearson (1 − 2α) interval, else the
(1 − 2α) CI of the mean over seeds: the selected runs (several cells, e.g. every randomization)
are first averaged within each seed index, so n counts seeds, never cells (n ≥ 2; accuracies keep
one run's binomial test-set SD as the floor of the SD). ``>=``: reproduced if CI low ≥ value,
not reproduced if CI high < value; ``<=`` mirrors it. Inconclusive means get the seeds for 80 %
power either way. The
evidence adds, per variant, the rate with its interval (``groups``) or the runs' values with
mean ± 95 % CI (``series``): what the figure draws.

Imports spec, stats, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from ..compare.quantifiers import RULE_TEXT, cell_alphas, combine_cells, counts_text
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
from ..compare.testset import level_variance
from ..compare.verdicts import INCONCLUSIVE, NOT_REPRODUCED, POWER, REPRODUCED
from ..display.numbers import fmt, pct
from ..spec.claim_base import ClaimBase, Quantified, Selector
from ..spec.values import Loc
from ..stats.intervals import share_ci
from ..stats.power import seeds_needed
from ..stats.summary import summarize
from .base import ClaimKind, register_claim_kind


class ThresholdClaim(Quantified, ClaimBase):
    """The metric of the selected runs is above/below ``value`` (for ``diverged``, the rate of
    diverged runs, with an exact binomial interval): in every selected variant (the default), on
    their mean, or in any of them (``quantifier``)."""

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


def _diverged(r: Row) -> bool:
    return metric_value(r, "diverged") >= 0.5


def _rate(label: str, runs: list[Row], conf: float) -> dict[str, Any]:
    """A rate counting seeds: each seed's share of its diverged runs (0 or 1 in one variant, with one
    run per seed); pooled over variants k is the sum of the seeds' shares, so n counts seeds
    (:func:`restudy.stats.intervals.share_ci`)."""
    seeds, shares = per_seed_means((r["seed_index"], float(_diverged(r))) for r in runs)
    n = len(seeds)
    k = float(sum(shares))
    k = int(k) if k.is_integer() else k
    low, high = share_ci(k, n, conf)
    diverged = sum(_diverged(r) for r in runs)
    return {
        "label": label,
        "k": k,
        "n": n,
        "rate": k / n if n else math.nan,
        "ci_low": low,
        "ci_high": high,
        "runs": len(runs),
        "runs_diverged": diverged,
    }


def _value(claim: ThresholdClaim) -> tuple[float, str]:
    if claim.metric == "diverged" and claim.value > 1.0:
        return claim.value / 100.0, "value > 1 was read as a percentage"
    return claim.value, ""


def _rate_cell(claim: ThresholdClaim, label: str, runs: list[Row], alphas: tuple[float, float]) -> dict[str, Any]:
    value, _ = _value(claim)
    g = _rate(label, runs, 1.0 - 2.0 * alphas[0])
    r = _rate(label, runs, 1.0 - 2.0 * alphas[1])
    passed = _verdict(claim.op, g["ci_low"], g["ci_high"], value) == REPRODUCED
    refuted = _verdict(claim.op, r["ci_low"], r["ci_high"], value) == NOT_REPRODUCED
    text = (
        f"{label + ': ' if label else ''}{fmt(g['k'], 1) if isinstance(g['k'], float) else g['k']}/{g['n']} seeds "
        f"diverged ({g['runs_diverged']}/{g['runs']} runs; rate {g['rate']:.0%}, "
        f"{pct(1.0 - 2.0 * alphas[0])} Clopper-Pearson CI [{g['ci_low']:.0%}, {g['ci_high']:.0%}])"
    )
    return {**g, "cell": label, "passed": passed, "refuted": refuted, "text": text}


def _mean_cell(claim: ThresholdClaim, label: str, runs: list[Row], alphas: tuple[float, float]) -> dict[str, Any]:
    conf = 1.0 - 2.0 * alphas[0]
    floor = summarize_runs(runs, claim.metric, conf)[1]
    seeds, means = per_seed_means((r["seed_index"], metric_value(r, claim.metric)) for r in runs)
    var = level_variance(runs, claim.metric)
    s = summarize(means, confidence=conf, floor_sd=floor, extra_variance=var)
    r = summarize(means, confidence=1.0 - 2.0 * alphas[1], floor_sd=floor, extra_variance=var)
    u = level_unit(claim.metric)  # a level, not a difference: 99.72%, not 99.72 pp
    enough = s.n >= 2
    passed = enough and _verdict(claim.op, s.ci_low, s.ci_high, claim.value) == REPRODUCED
    refuted = enough and _verdict(claim.op, r.ci_low, r.ci_high, claim.value) == NOT_REPRODUCED
    per = f", {len(runs)} runs averaged within each seed" if len(runs) > len(seeds) else ""
    noise = f", test-set SD {math.sqrt(var):.2f} pp included" if var > 0 else ""
    text = (
        f"{label + ': ' if label else ''}mean {claim.metric} {fmt(s.mean)}{u} ({pct(conf)} CI [{fmt(s.ci_low)}, "
        f"{fmt(s.ci_high)}], n={s.n} seeds{per}{noise})"
    )
    seeds_n, note = None, ""
    if not passed and not refuted and enough:
        effect = s.mean - claim.value if claim.op == ">=" else claim.value - s.mean
        if effect != 0 and math.isfinite(s.sd_used) and math.isfinite(effect):
            seeds_n = seeds_needed(abs(effect), s.sd_used, alpha=alphas[0], power=POWER, extra_variance=var)
            goal = "to establish the claim" if effect > 0 else "to establish that it does not hold"
            note = (
                f"about {seeds_n} seeds for 80% power {goal}"
                if seeds_n
                else "no seed count would decide it: the test set's own noise is as large as the distance to the value"
                if var > 0
                else ""
            )
    return {
        **s.to_dict(),
        "cell": label,
        "passed": passed,
        "refuted": refuted,
        "sd_floor": floor,
        "test_set_sd": math.sqrt(var),
        "seeds": seeds,
        "seed_means": means,
        "runs": len(runs),
        "text": text + ("; one seed has no seed-to-seed spread" if not enough else ""),
        "seeds_needed": seeds_n,
        "seeds_note": note,
    }


def evaluate(claim: ThresholdClaim, ctx: Any) -> Any:
    """Compares each cell's (or the pooled) interval with the claimed value, as quantified."""
    all_runs = select_runs(ctx.rows, claim.select)
    runs = usable(all_runs)
    if not runs:
        why = absent_reason(ctx.rows, claim.select)
        return ctx.result(claim, INCONCLUSIVE, why, {"n_failed": len(all_runs), "why": why})
    by_variant = {vid: rs for (_, vid), rs in group_rows(runs).items()}
    cells_in = by_variant if claim.quantifier != "mean" and len(by_variant) > 1 else {"": runs}
    alphas = cell_alphas(claim.quantifier, len(cells_in), claim.alpha)
    make = _rate_cell if claim.metric == "diverged" else _mean_cell
    cells = [make(claim, label, rs, alphas) for label, rs in cells_in.items()]
    verdict = combine_cells(claim.quantifier, [c["passed"] for c in cells], [c["refuted"] for c in cells], claim.share)
    value, note = _value(claim)
    u = "" if claim.metric == "diverged" else level_unit(claim.metric)
    shown = f"{value:.0%}" if claim.metric == "diverged" else f"{claim.value:g}{u}"
    head = f"claimed {OP_TEXT[claim.op]} {shown}"
    if len(cells) > 1:
        mark = {True: " ✓", False: ""}
        parts = [c["text"] + (mark[c["passed"]] or (" ✗" if c["refuted"] else "")) for c in cells]
        counts = counts_text(
            claim.quantifier, [c["passed"] for c in cells], [c["refuted"] for c in cells], claim.share, "variants"
        )
        summary = f"{head}, {counts} ({'; '.join(parts)})"
    else:
        summary = f"{cells[0]['text']}; {head}"
    undecided = [c for c in cells if not c["passed"] and not c["refuted"]]
    counts = [c.get("seeds_needed") for c in undecided]
    seeds = max(counts) if verdict == INCONCLUSIVE and counts and all(counts) else None
    notes = [c["seeds_note"] for c in undecided if c.get("seeds_note")]
    conf = 1.0 - 2.0 * alphas[0]
    evidence: dict[str, Any] = {
        "cells": cells,
        "quantifier": claim.quantifier,
        "rule": RULE_TEXT[claim.quantifier],
        "alpha_pass": alphas[0],
        "alpha_refute": alphas[1],
        "confidence": conf,
        "value": value,
        "op": claim.op,
        "note": note,
        "n_failed": len(all_runs) - len(runs),
    }
    if claim.metric == "diverged":
        evidence["groups"] = [_rate(vid, rs, conf) for vid, rs in by_variant.items()] + [_rate("all", runs, conf)]
    else:
        evidence["series"] = [series(vid, rs, claim.metric) for vid, rs in by_variant.items()]
    if len(cells) == 1:  # the pooled numbers at the top, as reports read them
        top = ("k", "n", "rate", "ci_low", "ci_high", "runs") if claim.metric == "diverged" else ()
        top = top or ("mean", "sd", "n", "ci_low", "ci_high", "se", "sd_used", "seeds", "seed_means", "runs")
        evidence.update({k: cells[0][k] for k in top})
    if verdict == INCONCLUSIVE and notes:
        summary += f". To decide: {'; '.join(dict.fromkeys(notes))}"
    return ctx.result(claim, verdict, summary, evidence, seeds)


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
