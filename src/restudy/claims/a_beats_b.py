"""Claim kind ``a_beats_b``: the runs selected by ``a`` score higher than those of every ``b``.

Runs of ``a`` and each ``b`` are paired by seed index and by the level of every axis that neither
selector pins to a single level; d = a − b (b − a if lower is better) minus ``margin``. Those free
axes' levels are the claim's *cells* (e.g. each depth of a sweep); the ``quantifier`` says how they
enter the verdict (:mod:`restudy.compare.quantifiers`): ``every`` cell must pass on its own (the
default), their ``mean``, or ``any`` one. Runs with the same seed index share data order and
initialisation (paired streams), so a cell's test runs on one value per seed — the pairs' mean
difference within each seed index — and its n counts seeds, never cells. Each decision is a
one-sided paired t-test read off the two-sided (1 − 2α′) interval at the α′ the quantifier gives
the cell: *passes* when that interval lies above 0, *refutes* when it lies below 0.

For a test accuracy, the test set's own sampling noise is part of the interval (it does not shrink
with seeds: :mod:`restudy.compare.testset`, measured from the stored predictions where they exist),
and a difference smaller than one test example never passes. A cell where a side did not learn
(final train accuracy within 3 binomial SDs of chance) gives no decision unless the claim sets
``requires_learning: false``: the gap would measure a failed optimisation. The claim is
*reproduced* when the cells pass as quantified against every b, *not reproduced* when a
comparison is refuted, else *inconclusive* with the seeds needed for 80 % power at the observed
difference — to establish the claim or, with the wrong sign, that it does not hold; none when the
test set's noise alone hides the difference. Without pairs: Welch's test on per-seed means.

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

from ..compare.quantifiers import RULE_TEXT, cell_alphas, combine_cells, counts_text
from ..compare.select import (
    NOT_LEARNED_SDS,
    Row,
    absent_reason,
    higher_is_better,
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
from ..compare.testset import Correct, below_one_example, difference_variance
from ..compare.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    POWER,
    REPRODUCED,
    combine,
)
from ..display.numbers import fmt, p_value, pct
from ..spec.claim_base import ClaimBase, Quantified, Selector
from ..spec.values import Loc
from ..stats.comparisons import PairedResult, paired_difference, welch_difference
from ..stats.power import seeds_needed
from ..stats.summary import summarize
from .base import ClaimKind, register_claim_kind


class BeatsClaim(Quantified, ClaimBase):
    """Runs selected by ``a`` score higher than those of every ``b`` (paired over shared seeds and
    the axes both leave free); ``margin`` in metric units. The cells are the levels of those free
    axes (e.g. each depth of a sweep); ``quantifier`` says whether each must pass (``every``), their
    mean (``mean``) or one of them (``any``)."""

    kind: Literal["a_beats_b"]
    a: Selector
    b: list[Selector] = Field(min_length=1)
    margin: float = 0.0
    higher_is_better: bool | None = Field(
        None,
        description="which way is better; by default the metric's own direction (accuracies: higher; losses, "
        "errors and time: lower; a registered run metric's declared one)",
    )
    requires_learning: bool = Field(
        True,
        description="a cell where a side did not learn (train accuracy near chance) gives no verdict: the "
        "difference would measure a failed optimisation; false when not learning is what the claim is about",
    )

    @field_validator("b", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    def selectors(self) -> list[tuple[Loc, Selector]]:
        return [(("a",), self.a), *[(("b", i), b) for i, b in enumerate(self.b)]]

    def higher(self) -> bool:
        """Whether a beats b by being higher: ``higher_is_better`` when the claim sets it, else the
        metric's declared direction (:func:`restudy.spec.metrics.metric_info`)."""
        return higher_is_better(self.metric) if self.higher_is_better is None else self.higher_is_better


# --------------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------------


def _paired(
    claim: BeatsClaim, pairs: Sequence[tuple[Row, Row]], alpha: float, correct: Correct | None
) -> tuple[PairedResult, float]:
    """One-sided paired test of a beating b on per-seed means of the pairs' differences, the test
    set's own variance included for test accuracies; returns the result and that variance."""
    sign = 1.0 if claim.higher() else -1.0
    both = [
        (x["seed_index"], sign * metric_value(x, claim.metric) - claim.margin, sign * metric_value(y, claim.metric))
        for x, y in pairs
    ]
    both = [(k, u, v) for k, u, v in both if math.isfinite(u) and math.isfinite(v)]
    _, av = per_seed_means([(k, u) for k, u, _ in both])
    _, bv = per_seed_means([(k, v) for k, _, v in both])
    var = difference_variance(pairs, claim.metric, correct)
    res = paired_difference(av, bv, confidence=1.0 - 2.0 * alpha, alternative="greater", extra_variance=var)
    return res, var


def _welch(claim: BeatsClaim, a_runs: list[Row], b_runs: list[Row], alpha: float) -> PairedResult:
    """Welch's test on each side's per-seed means (no run pairs)."""
    sign = 1.0 if claim.higher() else -1.0
    _, a = per_seed_means([(x["seed_index"], sign * metric_value(x, claim.metric) - claim.margin) for x in a_runs])
    _, bb = per_seed_means([(y["seed_index"], sign * metric_value(y, claim.metric)) for y in b_runs])
    return welch_difference(a, bb, confidence=1.0 - 2.0 * alpha, alternative="greater")


def _seeds(res: PairedResult, alpha: float, var: float = 0.0) -> tuple[int | None, str]:
    """Seeds per variant for 80 % power at the observed difference (the test is on per-seed
    means, so its n already counts seeds): to establish the claim, or — with the wrong sign — to
    establish that it does not hold. The test set's own variance ``var`` no seed count removes:
    a difference it hides gets no seed count."""
    if not math.isfinite(res.mean_diff) or res.mean_diff == 0:
        return None, "the observed difference is 0: no seed count would decide"
    if not math.isfinite(res.sd_diff):
        return None, "fewer than 2 seeds per side: the spread is unknown"
    paired = res.test == "paired-t"
    n = seeds_needed(
        abs(res.mean_diff),
        res.sd_diff,
        alpha=alpha,
        power=POWER,
        paired=paired,
        alternative="greater",
        extra_variance=var if paired else 0.0,
    )
    goal = (
        "to establish the claim"
        if res.mean_diff > 0
        else "to establish that it does not hold (the observed difference has the wrong sign)"
    )
    if not n:
        if var > 0 and paired:
            return None, (
                f"no seed count would {goal.removeprefix('to ')}: the test set's own sampling noise "
                f"(SD {math.sqrt(var):.2f} pp, whatever the seeds) is as large as the difference; a larger "
                "test set would"
            )
        return None, f"more than 10000 seeds would be needed {goal}"
    return n, f"about {n} seeds {'per variant' if paired else 'per side'} for 80% power {goal}"


def _sentence(a: str, b: str, res: PairedResult, claim: BeatsClaim, conf: float, var: float = 0.0) -> str:
    u = unit(claim.metric)
    raw = res.mean_diff + claim.margin
    lo, hi = res.ci_low + claim.margin, res.ci_high + claim.margin
    head = f"{a} beats {b} by {raw:+.2f}{u}" if raw > 0 else f"{a} does not beat {b} (difference {fmt(raw)}{u})"
    if res.test == "paired-t":
        test = f"paired t on per-seed means {p_value(res.p_value)}, n={res.n} seeds"
    else:
        test = f"Welch t on per-seed means {p_value(res.p_value)}, n={res.n_a} vs {res.n_b} seeds, unpaired"
    noise = f", test-set SD {math.sqrt(var):.2f}{u} included" if var > 0 else ""
    margin = f", margin {claim.margin:g}{u}" if claim.margin else ""
    return f"{head} ({pct(conf)} CI [{fmt(lo)}, {fmt(hi)}], {test}{noise}{margin})"


def _cells(pairs: Sequence[tuple[Row, Row]], free: Sequence[str]) -> dict[str, list[tuple[Row, Row]]]:
    """Run pairs by cell: the levels of the free axes ("" when there are none)."""
    out: dict[str, list[tuple[Row, Row]]] = {}
    for x, y in pairs:
        label = ", ".join(f"{ax} {(x.get('variant') or {}).get(ax)}" for ax in free)
        out.setdefault(label, []).append((x, y))
    return out


def _cell(
    claim: BeatsClaim,
    label: str,
    pairs: list[tuple[Row, Row]],
    alphas: tuple[float, float],
    correct: Correct | None,
) -> dict[str, Any]:
    """One cell's decisions: passed at ``alphas[0]``, refuted at ``alphas[1]`` (one-sided, from
    the (1 − 2α) intervals); no decision where a side did not learn (``requires_learning``) or the
    difference is smaller than one test example."""
    res, var = _paired(claim, pairs, alphas[0], correct)
    refute = _paired(claim, pairs, alphas[1], correct)[0] if alphas[1] != alphas[0] else res
    stuck = len(not_learned([r for pair in pairs for r in pair]))
    raw = res.mean_diff + claim.margin
    tiny = below_one_example(raw, [r for pair in pairs for r in pair], claim.metric)
    blocked = stuck and claim.requires_learning
    passed = bool(
        not blocked and tiny is None and math.isfinite(res.p_value) and res.p_value < alphas[0] and res.ci_low > 0
    )
    refuted = bool(not blocked and refute.ci_high < 0)
    return {
        "cell": label,
        "passed": passed,
        "refuted": refuted,
        "mean_diff": raw,
        "ci_low": res.ci_low + claim.margin,
        "ci_high": res.ci_high + claim.margin,
        "p_value": res.p_value,
        "n": res.n,
        "test_set_sd": math.sqrt(var),
        "not_learned_runs": stuck,
        "below_one_example": tiny,
        "result": res,
        "variance": var,
    }


def _one(
    claim: BeatsClaim,
    b: Selector,
    a_runs: list[Row],
    b_runs: list[Row],
    alpha: float,
    rows: Sequence[Row] = (),
    groups: int = 1,
    correct: Correct | None = None,
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
    pairs, info = pair_runs(a_runs, b_runs, claim.a, b)
    if not pairs:
        return _unpaired(claim, base, info, a_lbl, b_lbl, a_runs, b_runs, alpha, groups), pairs
    free = info["by"][1:]
    by_cell = _cells(pairs, free) if claim.quantifier != "mean" else {"": list(pairs)}
    alphas = cell_alphas(claim.quantifier, len(by_cell), alpha, groups)
    cells = [_cell(claim, label, ps, alphas, correct) for label, ps in by_cell.items()]
    verdict = combine_cells(claim.quantifier, [c["passed"] for c in cells], [c["refuted"] for c in cells], claim.share)
    pooled, var = _paired(claim, pairs, alphas[0], correct)
    info.update(pairs=len(pairs), seeds=pooled.n, unit="seed")
    undecided = [c for c in cells if not c["passed"] and not c["refuted"]]
    seeds, seeds_note = (None, "")
    if verdict == INCONCLUSIVE and undecided and all(c["not_learned_runs"] for c in undecided):
        seeds_note = "a side did not learn: more seeds will not decide it, a training that learns would"
    elif verdict == INCONCLUSIVE and undecided:
        worst = [_seeds(c["result"], alphas[0], c["variance"]) for c in undecided]
        counts = [n for n, _ in worst if n]
        seeds = max(counts) if counts and len(counts) == len(worst) else None
        seeds_note = next((note for n, note in worst if n == seeds), worst[0][1])
    conf = 1.0 - 2.0 * alphas[0]
    sentence = _sentence(a_lbl, b_lbl, pooled, claim, conf, var)
    if len(cells) > 1:
        sentence = _cells_sentence(claim, a_lbl, b_lbl, cells, conf) + f"; over all cells: {sentence}"
    stuck = {lbl: (len(not_learned(runs)), len(runs)) for lbl, runs in ((a_lbl, a_runs), (b_lbl, b_runs))}
    warning = "; ".join(f"{k} of {n} runs of {lbl}" for lbl, (k, n) in stuck.items() if k)
    if warning:  # a gap to a model that never trained measures the failed optimisation
        consequence = (
            "the cells with such runs give no verdict"
            if claim.requires_learning
            else "the difference measures a failed optimisation, not only the effect claimed"
        )
        warning = (
            f" ⚠ did not learn (train accuracy within {NOT_LEARNED_SDS:g} binomial SDs of chance): {warning}; "
            + consequence
        )
    tiny = [c for c in cells if c["below_one_example"] is not None and not c["refuted"]]
    if tiny:
        warning += (
            f"; a difference below one test example ({fmt(tiny[0]['below_one_example'], 3)} pp) is no evidence "
            f"of one side beating the other ({', '.join(c['cell'] or 'all' for c in tiny)})"
        )
    return {
        **base,
        **info,
        **pooled.to_dict(),
        "mean_diff": pooled.mean_diff + claim.margin,
        "ci_low": pooled.ci_low + claim.margin,
        "ci_high": pooled.ci_high + claim.margin,
        "confidence": conf,
        "quantifier": claim.quantifier,
        "alpha_pass": alphas[0],
        "alpha_refute": alphas[1],
        "test_set_sd": math.sqrt(var),
        "cells": [{k: v for k, v in c.items() if k not in ("result", "variance")} for c in cells],
        "verdict": verdict,
        "seeds_needed": seeds,
        "seeds_note": seeds_note,
        "not_learned": {lbl: k for lbl, (k, _) in stuck.items() if k},
        "sentence": sentence + warning,
    }, pairs


def _cells_sentence(claim: BeatsClaim, a: str, b: str, cells: list[dict[str, Any]], conf: float) -> str:
    u = unit(claim.metric)
    passed, refuted = [c["passed"] for c in cells], [c["refuted"] for c in cells]
    head = f"{a} vs {b}, " + counts_text(claim.quantifier, passed, refuted, claim.share)
    parts = [
        f"{c['cell']}: {c['mean_diff']:+.2f}{u} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"
        + (" ✓" if c["passed"] else " ✗" if c["refuted"] else "")
        for c in cells
    ]
    return f"{head} ({pct(conf)} CIs: {'; '.join(parts)})"


def _unpaired(
    claim: BeatsClaim,
    base: dict[str, Any],
    info: dict[str, Any],
    a_lbl: str,
    b_lbl: str,
    a_runs: list[Row],
    b_runs: list[Row],
    alpha: float,
    groups: int,
) -> dict[str, Any]:
    """No run pairs: Welch's test on each side's per-seed means, as one cell."""
    why = (
        "pairing ambiguous (a key occurs twice on one side)"
        if info["ambiguous"]
        else "no run pairs share seed index and free-axis levels"
    )
    info = {**info, "fallback": f"Welch's unpaired test on per-seed means: {why}", "unit": "seed"}
    alphas = cell_alphas("mean", 1, alpha, groups)
    res = _welch(claim, a_runs, b_runs, alphas[0])
    refute = _welch(claim, a_runs, b_runs, alphas[1])
    passed = math.isfinite(res.p_value) and res.p_value < alphas[0] and res.ci_low > 0
    verdict = REPRODUCED if passed else NOT_REPRODUCED if refute.ci_high < 0 else INCONCLUSIVE
    seeds, note = _seeds(res, alphas[0]) if verdict == INCONCLUSIVE else (None, "")
    conf = 1.0 - 2.0 * alphas[0]
    return {
        **base,
        **info,
        **res.to_dict(),
        "mean_diff": res.mean_diff + claim.margin,
        "ci_low": res.ci_low + claim.margin,
        "ci_high": res.ci_high + claim.margin,
        "confidence": conf,
        "quantifier": claim.quantifier,
        "verdict": verdict,
        "seeds_needed": seeds,
        "seeds_note": note,
        "sentence": _sentence(a_lbl, b_lbl, res, claim, conf),
    }


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
    """Tests a against each b, cell by cell as the quantifier says, and combines the comparisons'
    verdicts (a must beat every b: each passes at α, one refuting at α/k refutes the claim)."""
    alpha = claim.alpha
    a_runs = usable(select_runs(ctx.rows, claim.a))
    correct = getattr(ctx, "correct", None)
    comps, all_pairs = [], []
    for b in claim.b:
        comp, pairs = _one(claim, b, a_runs, usable(select_runs(ctx.rows, b)), alpha, ctx.rows, len(claim.b), correct)
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
        "quantifier": claim.quantifier,
        "correction": (
            f"{claim.quantifier}: {RULE_TEXT[claim.quantifier]}"
            + (
                f"; a must beat each of the {len(claim.b)} b's (one refuted comparison refutes the claim)"
                if len(claim.b) > 1
                else ""
            )
        ),
        "higher_is_better": claim.higher(),
        "axis": axis,
        "series": [series(lbl, usable(runs), claim.metric, axis) for lbl, runs in selected],
        "differences": [_differences(claim, b, p, axis) for b, p in zip(claim.b, all_pairs)],
    }
    return ctx.result(claim, verdict, summary, evidence, _max_seeds(comps))


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
        f"α = {fmt(ev.get('alpha_per_comparison'), 4)}; {ev.get('correction', '')}; one-sided tests, "
        "read off two-sided intervals at 1 − 2α."
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
        "*a beats b* is a one-sided paired t-test on per-seed means of the paired differences, cell by cell "
        "as the quantifier says (every cell by default; n counts seeds), with the test set's own sampling "
        "noise for test accuracies; a cell where a side did not learn (train accuracy within "
        f"{NOT_LEARNED_SDS:g} binomial SDs of chance) gives no verdict"
    )
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
