"""Claim kind ``trend``: the metric of ``select`` (or its paired difference to ``baseline``) rises or
falls along the numeric axis ``over``.

Runs with the same seed index share data order and initialisation across levels (paired
streams), so points of one seed are not independent: the least-squares slope of the metric (or
difference) over the levels of ``over`` is fitted **per seed index**, and the test runs on the
per-seed slopes (one-sample t, n = seeds, two-sided (1 − 2α) CI: a one-sided α test in the
claimed direction). ``reproduced`` if the CI excludes 0 on the claimed side, ``not_reproduced``
if it excludes 0 on the other side, else ``inconclusive`` with the seeds needed for 80 % power
either way. The
evidence holds the points, the per-level means with 95 % CIs, the per-seed slopes and the line
through the mean slope, which the figure draws.

Imports spec, stats, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ..compare.quantifiers import combine_cells
from ..compare.select import Row, absent_reason, metric_value, n_test_of, pair_runs, select_runs, unit, usable
from ..compare.testset import is_test_accuracy
from ..compare.verdicts import INCONCLUSIVE, NOT_EVALUATED, POWER, directional_verdict
from ..display.numbers import fmt, p_value, pct
from ..spec.claim_base import ClaimBase, Selector
from ..spec.study import Study, selector_problems
from ..spec.values import Loc
from ..stats.comparisons import PairedResult, paired_difference
from ..stats.power import seeds_needed
from ..stats.summary import summarize, test_set_variance
from ..stats.trend import slope_test
from .base import ClaimKind, register_claim_kind

log = logging.getLogger(__name__)


class TrendClaim(ClaimBase):
    """The metric of ``select`` (or its paired difference to ``baseline``) rises or falls along the
    numeric axis ``over``."""

    kind: Literal["trend"]
    select: Selector
    over: str
    direction: Literal["increasing", "decreasing"]
    baseline: Selector | None = None
    shape: Literal["linear", "monotone"] = Field(
        "linear",
        description="linear: the mean per-seed slope ('rises with'); monotone: every step between adjacent "
        "levels goes the claimed way ('rises steadily', 'grows at each depth')",
    )

    def selectors(self) -> list[tuple[Loc, Selector]]:
        return [(("select",), self.select)] + ([(("baseline",), self.baseline)] if self.baseline else [])

    def problems(self, study: Study) -> list[tuple[Any, ...]]:
        sel = Selector(experiment=self.select.experiment, where={self.over: []})
        if selector_problems(study, Selector(experiment=self.select.experiment)):
            return []  # the unknown experiment is reported at select.experiment
        return [(("over",), msg, self.over) for _, msg, _ in selector_problems(study, sel)]


def trend_points(claim: TrendClaim, rows: Sequence[Row]) -> tuple[list[tuple[Any, float, int]], dict[str, Any]]:
    """Returns (level of ``over``, value, seed index) per run, or per pair when the claim has a
    baseline.

    Args:
        claim: the trend claim.
        rows: run rows (failed ones are dropped here).

    Returns:
        The points (levels as in the variants, strings) and pairing info for the evidence.
    """
    runs = usable(select_runs(rows, claim.select))
    if claim.baseline is None:
        pts = [(r["variant"].get(claim.over), metric_value(r, claim.metric), r["seed_index"]) for r in runs]
        return pts, {"values": "per run"}
    base = usable(select_runs(rows, claim.baseline))
    pairs, info = pair_runs(runs, base, claim.select, claim.baseline)
    pts = [
        (a["variant"].get(claim.over), metric_value(a, claim.metric) - metric_value(b, claim.metric), a["seed_index"])
        for a, b in pairs
    ]
    return pts, {"values": f"paired difference to {claim.baseline.label()}", **info}


def _level_means(xs: list[float], ys: list[float]) -> list[dict[str, Any]]:
    """Mean, n and 95 % CI of the finite values at each level (ascending)."""
    out = []
    for x in sorted(set(xs)):
        v = np.array([y for xx, y in zip(xs, ys) if xx == x], dtype=float)
        v = v[~np.isnan(v)]
        s = summarize(v[np.isfinite(v)])
        out.append(
            {
                "x": x,
                "mean": float(np.mean(v)) if v.size else math.nan,
                "n": int(v.size),
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
            }
        )
    return out


def seed_slopes(xs: Sequence[float], ys: Sequence[float], seeds: Sequence[int]) -> dict[int, float]:
    """The least-squares slope of each seed index's finite points (seeds spanning < 2 levels are
    left out)."""
    by: dict[int, list[tuple[float, float]]] = {}
    for x, y, k in zip(xs, ys, seeds):
        if math.isfinite(y):
            by.setdefault(int(k), []).append((x, y))
    out = {}
    for k, pts in sorted(by.items()):
        if len({x for x, _ in pts}) >= 2:
            out[k] = slope_test([x for x, _ in pts], [y for _, y in pts]).slope
    return out


def _sentence(claim: TrendClaim, res: PairedResult, conf: float, n_levels: int) -> str:
    what = "difference" if claim.baseline else claim.metric
    if res.n < 2 or not math.isfinite(res.mean_diff):
        return (
            f"slope of the {what} over {claim.over} is undefined: {res.n} seed(s) span 2 or more of "
            f"the {n_levels} level(s) of {claim.over}"
        )
    return (
        f"slope of the {what} over {claim.over}: {res.mean_diff:+.3f}{unit(claim.metric)} per "
        f"unit of {claim.over}, the mean of per-seed slopes "
        f"({pct(conf)} CI [{fmt(res.ci_low, 3)}, {fmt(res.ci_high, 3)}], "
        f"t {p_value(res.p_value)}, n={res.n} seeds); claimed {claim.direction}"
    )


def _trend_seeds(res: PairedResult, claim: TrendClaim) -> tuple[int | None, str]:
    """Seeds for 80 % power at the observed mean slope, towards the claim or against it."""
    if res.n < 2 or not (math.isfinite(res.mean_diff) and math.isfinite(res.sd_diff)) or res.mean_diff == 0:
        return None, "the spread of the per-seed slopes is unknown"
    up = claim.direction == "increasing"
    towards = (res.mean_diff > 0) == up
    n = seeds_needed(abs(res.mean_diff), res.sd_diff, alpha=claim.alpha, power=POWER, alternative="greater")
    goal = "to establish the trend" if towards else "to establish that it does not hold (the slope has the wrong sign)"
    return n, (f"about {n} seeds for 80% power {goal}" if n else f"more than 10000 seeds would be needed {goal}")


def _steps(
    claim: TrendClaim, xs: list[float], ys: list[float], seeds: list[int], rows: Sequence[Row], alpha: float
) -> list[dict[str, Any]]:
    """``shape: monotone``: each step between adjacent levels, a one-sided paired test over seeds
    of (value at the higher level − value at the lower) in the claimed direction; passing at α
    (every step must pass: an intersection–union test), refuting at α/(steps). A step of a test
    accuracy carries the test set's own noise (both levels' binomial variances; four with a
    baseline)."""
    by: dict[tuple[float, int], list[float]] = {}
    for x, y, k in zip(xs, ys, seeds):
        if math.isfinite(y):
            by.setdefault((x, int(k)), []).append(y)
    value = {key: float(np.mean(v)) for key, v in by.items()}
    levels = sorted({x for x, _ in value})
    sign = 1.0 if claim.direction == "increasing" else -1.0
    runs = usable(select_runs(rows, claim.select))
    n_test = n_test_of(runs) if is_test_accuracy(claim.metric) else None
    steps = []
    alpha_refute = alpha / max(1, len(levels) - 1)
    for lo, hi in zip(levels, levels[1:]):
        common = sorted({k for x, k in value if x == lo} & {k for x, k in value if x == hi})
        d = [sign * (value[(hi, k)] - value[(lo, k)]) for k in common]
        var = 0.0
        if n_test:
            level_acc = [[metric_value(r, claim.metric) for r in runs if _at(r, claim.over, x)] for x in (lo, hi)]
            var = sum(test_set_variance(acc, n_test) for acc in level_acc) * (2 if claim.baseline else 1)
        res = paired_difference(d, [0.0] * len(d), 1.0 - 2.0 * alpha, "greater", extra_variance=var)
        ref = paired_difference(d, [0.0] * len(d), 1.0 - 2.0 * alpha_refute, "greater", extra_variance=var)
        steps.append(
            {
                "from": lo,
                "to": hi,
                "mean": sign * res.mean_diff,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "n": res.n,
                "passed": res.n >= 2 and res.ci_low > 0,
                "refuted": res.n >= 2 and ref.ci_high < 0,
                "test_set_sd": math.sqrt(var),
            }
        )
    return steps


def _at(run: Row, axis: str, x: float) -> bool:
    try:
        return float((run.get("variant") or {}).get(axis)) == x
    except (TypeError, ValueError):
        return False


def _lvl(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def evaluate(claim: TrendClaim, ctx: Any) -> Any:
    """Fits a slope over ``over`` per seed and judges the CI of their mean against the claimed
    direction; with ``shape: monotone``, every step between adjacent levels must go that way."""
    pts, info = trend_points(claim, ctx.rows)
    if not pts:
        sels = [claim.select] + ([claim.baseline] if claim.baseline else [])
        why = "; ".join(absent_reason(ctx.rows, s) for s in sels if not usable(select_runs(ctx.rows, s)))
        why = why or "the selected runs share no seed with the baseline's (no pairs)"
        return ctx.result(claim, INCONCLUSIVE, why, {**info, "why": why})
    try:
        xs = [float(x) for x, _, _ in pts]
    except (TypeError, ValueError):
        log.warning("claim %s: levels of axis %r are not numeric", claim.id, claim.over)
        return ctx.result(claim, NOT_EVALUATED, f"levels of axis '{claim.over}' are not numeric", info)
    ys = [y for _, y, _ in pts]
    seeds = [k for _, _, k in pts]
    conf = 1.0 - 2.0 * claim.alpha
    slopes = seed_slopes(xs, ys, seeds)
    values = list(slopes.values())
    res = paired_difference(values, [0.0] * len(values), confidence=conf, alternative="two-sided")
    up = claim.direction == "increasing"
    ok = res.n >= 2 and math.isfinite(res.ci_low) and math.isfinite(res.ci_high)
    verdict = directional_verdict(res.ci_low, res.ci_high, up) if ok else INCONCLUSIVE
    seeds_n, seeds_note = _trend_seeds(res, claim) if verdict == INCONCLUSIVE else (None, "")
    finite = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    slope = res.mean_diff
    intercept = (
        float(np.mean([y for _, y in finite]) - slope * np.mean([x for x, _ in finite]))
        if finite and math.isfinite(slope)
        else math.nan
    )
    pooled = slope_test(xs, ys, confidence=conf)
    evidence = {
        **info,
        "slope": slope,
        "ci_low": res.ci_low,
        "ci_high": res.ci_high,
        "p_value": res.p_value,
        "n": res.n,
        "unit": "seed",
        "seed_slopes": {str(k): v for k, v in slopes.items()},
        "r": pooled.r,
        "confidence": conf,
        "direction": claim.direction,
        "levels": _level_means(xs, ys),
        "seeds_note": seeds_note,
        "points": [[x, y] for x, y in zip(xs, ys)],
        "intercept": intercept,
    }
    summary = _sentence(claim, res, conf, len(set(xs)))
    if claim.shape == "monotone":
        steps = _steps(claim, xs, ys, seeds, ctx.rows, claim.alpha)
        verdict = combine_cells("every", [s["passed"] for s in steps], [s["refuted"] for s in steps])
        u = unit(claim.metric)
        parts = [
            f"{_lvl(s['from'])}→{_lvl(s['to'])}: {s['mean']:+.2f}{u}"
            + (" ✓" if s["passed"] else " ✗" if s["refuted"] else "")
            for s in steps
        ]
        summary = (
            f"{claim.direction} at every step over {claim.over}: {sum(s['passed'] for s in steps)} of {len(steps)} "
            f"steps pass, {sum(s['refuted'] for s in steps)} go the other way ({'; '.join(parts)}); {summary}"
        )
        evidence.update(shape="monotone", steps=steps)
        seeds_n = None
    elif verdict == INCONCLUSIVE and seeds_note:
        summary += f". To decide: {seeds_note}"
    return ctx.result(claim, verdict, summary, evidence, seeds_n)


def figure(claim: TrendClaim, result: Any, path: Path) -> Path | None:
    """The points, each level's mean ± 95 % CI and the fitted line."""
    ev = result.evidence
    pts = [(x, y) for x, y in ev.get("points") or [] if y is not None and math.isfinite(y)]
    if not ev.get("points"):
        return None
    from ..display import draw

    fig, ax = draw.subplots(figsize=(7.5, 4.2))
    if pts:
        xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        ax.scatter(
            xs,
            ys,
            s=14,
            alpha=0.5,
            color="tab:blue",
            label=("one run pair" if claim.baseline else "one run") + "; mean ± 95% CI",
        )
        for lv in ev.get("levels") or []:
            if lv["n"]:
                draw.errorbar(ax, float(lv["x"]), lv["mean"], lv["ci_low"], lv["ci_high"], "tab:blue")
        slope, intercept = ev.get("slope"), ev.get("intercept")
        if slope is not None and intercept is not None:
            grid = np.linspace(xs.min(), xs.max(), 50)
            ax.plot(grid, intercept + slope * grid, color="tab:red", label=f"fit, slope {slope:+.3f}")
        ax.legend(fontsize=8)
    if claim.baseline is not None:
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel(
            f"{draw.metric_label(claim.metric)}:\n{claim.select.label()} − {claim.baseline.label()}", fontsize=8
        )
    else:
        ax.set_ylabel(draw.metric_label(claim.metric))
    ax.set_xlabel(claim.over)
    draw.title(ax, result)
    return draw.save(fig, path)


def render(claim: TrendClaim, result: Any) -> tuple[list[str], Any]:
    """How the values were formed, Pearson r, and the per-level means as a table."""
    from ..display.draw import metric_label as draw_label
    from ..display.tables import seeds_line, table

    ev = result.evidence
    lines = [
        f"Values: {ev.get('values', 'per run')}" + (f", paired by {', '.join(ev['by'])}" if ev.get("by") else "") + "."
    ]
    if ev.get("r") is not None:
        lines.append(
            f"Pearson correlation of the values with {claim.over}: {fmt(ev['r'], 3)}; "
            f"CI level {pct(ev.get('confidence') or 0.95)}."
        )
    if ev.get("seed_slopes"):
        lines.append(
            "Per-seed slopes: " + ", ".join(f"seed {k}: {fmt(v, 3)}" for k, v in ev["seed_slopes"].items()) + "."
        )
    levels = ev.get("levels") or []
    tab = table(
        [claim.over, f"mean {draw_label(claim.metric)}", "runs" if claim.baseline is None else "pairs"],
        [[fmt(lv["x"], 3).rstrip("0").rstrip("."), fmt(lv["mean"]), str(lv["n"])] for lv in levels],
    )
    return lines + [seeds_line(result)], (tab if levels else None)


@register_claim_kind
class Trend(ClaimKind):
    schema = TrendClaim
    rule = "a *trend* is the mean of per-seed least-squares slopes with its CI (n counts seeds)"
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
