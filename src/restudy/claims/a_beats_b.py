"""Claim kind ``a_beats_b``: the runs selected by ``a`` score higher than those of every ``b``.

Runs of ``a`` and each ``b`` are paired by seed index and by the level of every axis that neither
selector pins to a single level; d = a − b (b − a if lower is better) minus ``margin``. Runs with
the same seed index share data order and initialisation (paired streams), so the cells of one
seed are not independent: the differences are first averaged within each seed index, and the
test runs on one value per seed — its n and degrees of freedom count seeds, not cells. Each of
the k comparisons gets α/k (Bonferroni) and a one-sided paired t-test; its CI is the two-sided
(1 − 2α/k) interval, whose lower bound is the one-sided (1 − α/k) bound, so "p < α/k" and "CI low
> 0" agree. ``reproduced`` if both hold; ``not_reproduced`` if the CI's upper bound is < 0 (the
data exclude the claimed direction); else ``inconclusive`` with the seeds needed for 80 % power
at the observed difference — to establish the claim, or, when the observed difference has the
wrong sign, to establish that it does not hold. Without pairs: Welch's test on per-seed means.
Borderline when the deciding CI edge lies within 10 % of the CI's width from 0.

The evidence adds what the figure draws: per-seed points and mean ± 95 % CI per group and level
of the free axis (``series``), and the paired differences a − b per level (``differences``).

Imports spec, stats, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..compare.select import (
    NOT_LEARNED_SDS,
    Row,
    absent_reason,
    metric_value,
    not_learned,
    pair_runs,
    per_seed_means,
    pinned_axes,
    select_runs,
    series,
    short_label,
    unit,
    usable,
)
from ..compare.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    POWER,
    REPRODUCED,
    combine,
    directional_borderline,
)
from ..display.numbers import fmt, p_value, pct
from ..spec.claim_base import ClaimBase, Selector
from ..spec.values import Loc
from ..stats.comparisons import PairedResult, paired_difference, welch_difference
from ..stats.power import seeds_needed
from ..stats.summary import summarize
from .base import ClaimKind, register_claim_kind


class BeatsClaim(ClaimBase):
    """Runs selected by ``a`` score higher than those of every ``b`` (paired over shared seeds and
    the axes both leave free); ``margin`` in metric units."""

    kind: Literal["a_beats_b"]
    a: Selector
    b: list[Selector] = Field(min_length=1)
    margin: float = 0.0
    higher_is_better: bool = True

    @field_validator("b", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    def selectors(self) -> list[tuple[Loc, Selector]]:
        return [(("a",), self.a), *[(("b", i), b) for i, b in enumerate(self.b)]]


# --------------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------------


def _test(
    claim: BeatsClaim, b: Selector, a_runs: list[Row], b_runs: list[Row], alpha: float
) -> tuple[PairedResult, dict[str, Any], list[tuple[Row, Row]]]:
    """Runs the one-sided test of a beating b on per-seed means of the paired differences (or,
    without pairs, Welch's test on each side's per-seed means)."""
    sign = 1.0 if claim.higher_is_better else -1.0
    conf = 1.0 - 2.0 * alpha
    pairs, info = pair_runs(a_runs, b_runs, claim.a, b)
    if pairs:
        both = [
            (x["seed_index"], sign * metric_value(x, claim.metric) - claim.margin, sign * metric_value(y, claim.metric))
            for x, y in pairs
        ]
        both = [(k, u, v) for k, u, v in both if math.isfinite(u) and math.isfinite(v)]
        common, av = per_seed_means([(k, u) for k, u, _ in both])
        _, bv = per_seed_means([(k, v) for k, _, v in both])
        info.update(pairs=len(pairs), seeds=len(common), unit="seed")
        return paired_difference(av, bv, confidence=conf, alternative="greater"), info, pairs
    why = (
        "pairing ambiguous (a key occurs twice on one side)"
        if info["ambiguous"]
        else "no run pairs share seed index and free-axis levels"
    )
    info["fallback"] = f"Welch's unpaired test on per-seed means: {why}"
    _, a = per_seed_means([(x["seed_index"], sign * metric_value(x, claim.metric) - claim.margin) for x in a_runs])
    _, bb = per_seed_means([(y["seed_index"], sign * metric_value(y, claim.metric)) for y in b_runs])
    info.update(unit="seed")
    return welch_difference(a, bb, confidence=conf, alternative="greater"), info, pairs


def _seeds(res: PairedResult, alpha: float) -> tuple[int | None, str]:
    """Seeds per variant for 80 % power at the observed difference (the test is on per-seed
    means, so its n already counts seeds): to establish the claim, or — with the wrong sign — to
    establish that it does not hold."""
    if not math.isfinite(res.mean_diff) or res.mean_diff == 0:
        return None, "the observed difference is 0: no seed count would decide"
    if not math.isfinite(res.sd_diff):
        return None, "fewer than 2 seeds per side: the spread is unknown"
    paired = res.test == "paired-t"
    n = seeds_needed(abs(res.mean_diff), res.sd_diff, alpha=alpha, power=POWER, paired=paired, alternative="greater")
    goal = (
        "to establish the claim"
        if res.mean_diff > 0
        else "to establish that it does not hold (the observed difference has the wrong sign)"
    )
    if not n:
        return None, f"more than 10000 seeds would be needed {goal}"
    return n, f"about {n} seeds {'per variant' if paired else 'per side'} for 80% power {goal}"


def _sentence(a: str, b: str, res: PairedResult, claim: BeatsClaim, conf: float) -> str:
    u = unit(claim.metric)
    raw = res.mean_diff + claim.margin
    lo, hi = res.ci_low + claim.margin, res.ci_high + claim.margin
    head = f"{a} beats {b} by {raw:+.2f}{u}" if raw > 0 else f"{a} does not beat {b} (difference {fmt(raw)}{u})"
    if res.test == "paired-t":
        test = f"paired t on per-seed means {p_value(res.p_value)}, n={res.n} seeds"
    else:
        test = f"Welch t on per-seed means {p_value(res.p_value)}, n={res.n_a} vs {res.n_b} seeds, unpaired"
    margin = f", margin {claim.margin:g}{u}" if claim.margin else ""
    return f"{head} ({pct(conf)} CI [{fmt(lo)}, {fmt(hi)}], {test}{margin})"


def _one(
    claim: BeatsClaim, b: Selector, a_runs: list[Row], b_runs: list[Row], alpha: float, rows: Sequence[Row] = ()
) -> tuple[dict[str, Any], list[tuple[Row, Row]]]:
    """One a-versus-b comparison as an evidence dict with its own verdict, and its run pairs."""
    a_lbl, b_lbl = short_label(claim.a, b), short_label(b, claim.a)
    base = {"a": claim.a.label(), "b": b.label(), "alpha": alpha, "margin": claim.margin}
    if not a_runs or not b_runs:
        missing = [absent_reason(rows, sel) for sel, runs in ((claim.a, a_runs), (b, b_runs)) if not runs]
        return {
            **base,
            "verdict": INCONCLUSIVE,
            "seeds_needed": None,
            "sentence": f"{a_lbl} vs {b_lbl}: nothing to compare ({'; '.join(missing)})",
        }, []
    res, info, pairs = _test(claim, b, a_runs, b_runs, alpha)
    conf = 1.0 - 2.0 * alpha
    shown = math.isfinite(res.p_value) and res.p_value < alpha and res.ci_low > 0
    verdict = REPRODUCED if shown else NOT_REPRODUCED if res.ci_high < 0 else INCONCLUSIVE
    seeds, seeds_note = _seeds(res, alpha) if verdict == INCONCLUSIVE else (None, "")
    near = directional_borderline(res.ci_low, res.ci_high, True, verdict)
    raw = {k: getattr(res, k) + claim.margin for k in ("mean_diff", "ci_low", "ci_high")}
    stuck = {lbl: (len(not_learned(runs)), len(runs)) for lbl, runs in ((a_lbl, a_runs), (b_lbl, b_runs))}
    warning = "; ".join(f"{k} of {n} runs of {lbl}" for lbl, (k, n) in stuck.items() if k)
    if warning:  # a gap to a model that never trained measures the failed optimisation
        warning = (
            f" ⚠ did not learn (train accuracy within {NOT_LEARNED_SDS:g} binomial SDs of chance): {warning};"
            " the difference measures a failed optimisation, not only the effect claimed"
        )
    return {
        **base,
        **info,
        **res.to_dict(),
        **raw,
        "confidence": conf,
        "verdict": verdict,
        "borderline": near,
        "seeds_needed": seeds,
        "seeds_note": seeds_note,
        "not_learned": {lbl: k for lbl, (k, _) in stuck.items() if k},
        "sentence": _sentence(a_lbl, b_lbl, res, claim, conf) + (" (borderline)" if near else "") + warning,
    }, pairs


def _max_seeds(items: Iterable[dict[str, Any]]) -> int | None:
    needed = [e["seeds_needed"] for e in items if e.get("seeds_needed")]
    return max(needed) if needed else None


# --------------------------------------------------------------------------------------------
# what the figure draws
# --------------------------------------------------------------------------------------------


def _free_axis(runs: Sequence[Row], selectors: Sequence[Selector]) -> str | None:
    """The first axis with several levels that no selector pins: the figure's x axis."""
    pinned = set().union(*(pinned_axes(s) for s in selectors))
    axes: dict[str, set[str]] = {}
    for r in runs:
        for ax, lv in (r.get("variant") or {}).items():
            axes.setdefault(ax, set()).add(lv)
    for ax, levels in axes.items():
        if ax not in pinned and len(levels) > 1:
            return ax
    return None


def _differences(claim: BeatsClaim, b: Selector, pairs: list[tuple[Row, Row]], axis: str | None) -> dict[str, Any]:
    """Paired differences a − b (what the test sees) per level, with mean ± 95 % CI."""
    pts = [
        (
            (ra.get("variant") or {}).get(axis) if axis else b.label(),
            metric_value(ra, claim.metric) - metric_value(rb, claim.metric),
        )
        for ra, rb in pairs
    ]
    levels = []
    for lv in dict.fromkeys(x for x, _ in pts):
        s = summarize([y for x, y in pts if x == lv])
        levels.append({"x": lv, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high})
    return {"label": b.label(), "points": [list(p) for p in pts], "levels": levels}


def evaluate(claim: BeatsClaim, ctx: Any) -> Any:
    """Tests a against each b (Bonferroni) and combines the comparisons' verdicts."""
    alpha = claim.alpha / len(claim.b)
    a_runs = usable(select_runs(ctx.rows, claim.a))
    comps, all_pairs = [], []
    for b in claim.b:
        comp, pairs = _one(claim, b, a_runs, usable(select_runs(ctx.rows, b)), alpha, ctx.rows)
        comps.append(comp)
        all_pairs.append(pairs)
    verdict = combine([c["verdict"] for c in comps])
    notes = [(f"vs {c['b']}: " if len(comps) > 1 else "") + c["seeds_note"] for c in comps if c.get("seeds_note")]
    summary = "; ".join(c["sentence"] for c in comps)
    if verdict == INCONCLUSIVE and notes:
        summary += f". To decide: {'; '.join(dict.fromkeys(notes))}"
    selected = [(sel.label(), select_runs(ctx.rows, sel)) for sel in (claim.a, *claim.b)]
    axis = _free_axis([r for _, runs in selected for r in runs], [claim.a, *claim.b])
    evidence = {
        "comparisons": comps,
        "alpha_per_comparison": alpha,
        "correction": f"Bonferroni over {len(claim.b)}",
        "higher_is_better": claim.higher_is_better,
        "axis": axis,
        "series": [series(lbl, usable(runs), claim.metric, axis) for lbl, runs in selected],
        "differences": [_differences(claim, b, p, axis) for b, p in zip(claim.b, all_pairs)],
    }
    deciding = [c for c in comps if c["verdict"] == verdict]
    return ctx.result(
        claim, verdict, summary, evidence, _max_seeds(comps), borderline=any(c.get("borderline") for c in deciding)
    )


# --------------------------------------------------------------------------------------------
# figure and report lines
# --------------------------------------------------------------------------------------------


def _diff_panel(ax: Any, claim: BeatsClaim, ev: dict[str, Any], draw: Any) -> None:
    """Paired differences a − b: points per pair, mean ± 95 % CI, per b and level."""
    axis, diffs = ev.get("axis"), ev.get("differences") or []
    all_levels: list[Any] = []
    for i, d in enumerate(diffs):
        levels = draw.ordered_levels([lv["x"] for lv in d["levels"]])
        all_levels += levels
        pos = draw.positions(levels) if axis else {lv: float(i) for lv in levels}
        width = draw.offset_width(pos, len(diffs)) if axis else 0.0
        means = {lv["x"]: lv for lv in d["levels"]}
        for lv in levels:
            ys = draw.floats([y for x, y in d["points"] if x == lv])
            x = pos[lv] + (i - (len(diffs) - 1) / 2) * width
            ax.scatter([x] * len(ys), ys, s=14, color=draw.color(i + 1), alpha=0.5)
            m = means[lv]
            draw.errorbar(
                ax,
                x,
                m["mean"],
                m["ci_low"],
                m["ci_high"],
                draw.color(i + 1),
                f"− {d['label']}" if lv == levels[0] else None,
            )
    ax.axhline(claim.margin, color="grey", linewidth=0.8)
    ax.set_title("paired differences a − b\n(per pair; mean ± 95% CI)", fontsize=8)
    ax.set_ylabel(f"difference in\n{draw.metric_label(claim.metric)}", fontsize=8)
    ax.set_xlabel(axis or "")
    if not axis:
        draw.set_ticks(ax, range(len(claim.b)), [f"a − {b.label()}" for b in claim.b])
    elif all_levels:
        levels = draw.ordered_levels(all_levels)
        draw.set_ticks(ax, list(draw.positions(levels).values()), [str(lv) for lv in levels])
        ax.legend(fontsize=7)


def figure(claim: BeatsClaim, result: Any, path: Path) -> Path | None:
    """Left: per-seed points and group means ± 95 % CI; right: the paired differences."""
    ev = result.evidence
    if "series" not in ev:
        return None
    from ..display import draw

    fig, (left, right) = draw.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    draw.series_panel(left, ev["series"], ev.get("axis"))
    left.set_ylabel(draw.metric_label(claim.metric))
    left.set_title("per seed (dots); mean ± 95% CI per group", fontsize=8)
    if ev.get("axis"):
        left.legend(fontsize=7, loc="best")
    _diff_panel(right, claim, ev, draw)
    fig.suptitle(f"{result.id}: {result.verdict.replace('_', ' ')}", fontsize=10)
    fig.tight_layout()
    return draw.save(fig, path)


def render(claim: BeatsClaim, result: Any) -> tuple[list[str], None]:
    """One line per comparison: verdict, sentence, pairing, Wilcoxon p, seeds needed."""
    from ..display.tables import VERDICT_TEXT, seeds_line

    ev = result.evidence
    lines = [
        f"α = {fmt(ev.get('alpha_per_comparison'), 4)} per comparison "
        f"({ev.get('correction', '')}); one-sided tests, CI at 1 − 2α."
    ]
    for comp in ev.get("comparisons", []):
        line = f"{VERDICT_TEXT.get(comp['verdict'], comp['verdict'])}: {comp['sentence']}"
        if comp.get("fallback"):
            line += f"; {comp['fallback']}"
        elif "by" in comp:
            line += (
                f"; paired by {', '.join(comp['by'])} ({comp.get('pairs', 0)} run pairs averaged within "
                f"each of {comp.get('seeds', 0)} seeds), unpaired runs: "
                f"{comp.get('unpaired_a', 0)} (a) / {comp.get('unpaired_b', 0)} (b)"
            )
        if comp.get("wilcoxon_p") is not None:
            line += f"; Wilcoxon {p_value(comp['wilcoxon_p'])}"
        if comp.get("seeds_note"):
            line += f"; {comp['seeds_note']}"
        lines.append(line)
    return lines + [seeds_line(result)], None


@register_claim_kind
class ABeatsB(ClaimKind):
    schema = BeatsClaim
    rule = (
        "*a beats b* is a one-sided paired t-test on per-seed means of the paired differences "
        "(n counts seeds; Bonferroni over the b's); a side whose runs did not learn (train accuracy within "
        f"{NOT_LEARNED_SDS:g} binomial SDs of chance) is flagged"
    )
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
