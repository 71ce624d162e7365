"""The study's own claim kinds (registered with ``register_claim_kind``):

* ``gap_shrinks``: a method's advantage over a baseline is largest at the shortest training;
* ``cost_ratio``: a method's training time over a baseline's, per cell and overall, beside the
  ratios a reproduction's time tables give.

``gap_shrinks``. The paper's Table 1 shows deconvolution far ahead of BN after 1 epoch (e.g. VGG-16 on CIFAR-10,
+60 pp) and a few points ahead after 20 or 100. The claim compares the paired gap ``a − b`` at level
``low`` of the axis ``over`` with the gap at ``high``; an advantage must exist to shrink, so ``a``
must first be shown ahead at ``low`` (one-sided, at α): behind there, the claim is not reproduced,
not shown ahead, inconclusive. For a test accuracy both tests carry the test set's own noise. Runs
of ``a`` and ``b`` pair by seed index and the axes both leave free (network, data set); each seed's
gaps are averaged over those cells first,
so the test counts seeds, not cells: a one-sided paired t-test of gap(low) − gap(high) > 0 over
seeds. *Reproduced* when the (1 − 2α) CI lies above 0, *not reproduced* when it lies below,
otherwise inconclusive with the seeds for 80 % power.

``cost_ratio``. Runs of ``a`` and ``b`` pair as above; each pair gives the ratio of their training
times (the run's ``train_s``: the optimisation steps, without loading and evaluation, so the ratio is
the per-epoch cost ratio). Each seed's log-ratios are averaged over its cells, and the geometric
mean ratio gets a (1 − 2α) t-interval over seeds on the log scale: *reproduced* when it lies above
``above`` (and under ``below``, when given: "2 % to 358 %"), *not reproduced* when it lies wholly
on the wrong side, else inconclusive. That pooled test is ``quantifier: mean`` (the default); with
``every`` ("always higher"), ``most``, ``any`` or ``share`` each cell's ratio over seeds gets its own
log-scale t-interval at the α the quantifier gives a cell (:mod:`restudy.compare.quantifiers`).
Per cell (the free axes' levels) the evidence lists the geometric mean ratio over seeds and, where a
``reference_tables`` table (rows on one axis, columns the a/b levels) reported at this scale has
that cell, the reported ratio.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from restudy.api import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    ClaimBase,
    ClaimKind,
    Field,
    Quantified,
    Quantifier,
    Selector,
    cell_alphas,
    combine_cells,
    counts_text,
    fmt,
    mean_host_load,
    paired_difference,
    register_claim_kind,
    seeds_needed,
    summarize,
)

__all__ = ["CostRatio", "CostRatioKind", "GapShrinks", "GapShrinksKind"]

POWER = 0.8


class GapShrinks(ClaimBase):
    """The paired gap ``a − b`` is larger at level ``low`` of axis ``over`` than at ``high``."""

    kind: Literal["gap_shrinks"]
    a: Selector
    b: Selector
    over: str
    low: str
    high: str

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("a",), self.a), (("b",), self.b)]


def _at(sel: Selector, axis: str, level: str) -> Selector:
    return Selector(experiment=sel.experiment, where={**sel.where, axis: level})


def _gaps(claim: GapShrinks, ctx: Any, level: str) -> tuple[dict[int, float], dict[str, Any]]:
    """Per seed index: the mean over paired cells of a − b at ``level``; the info holds the test
    set's own variance of their mean (``noise``, pp²)."""
    a, b = _at(claim.a, claim.over, level), _at(claim.b, claim.over, level)
    pairs, info = ctx.pair(ctx.runs(a), ctx.runs(b), a, b)
    by: dict[int, list[float]] = {}
    for x, y in pairs:
        d = ctx.value(x, claim.metric) - ctx.value(y, claim.metric)
        if math.isfinite(d):
            by.setdefault(int(x["seed_index"]), []).append(d)
    info = {**info, "noise": ctx.difference_noise(pairs, claim.metric) if hasattr(ctx, "difference_noise") else 0.0}
    return {k: float(np.mean(v)) for k, v in sorted(by.items())}, info


def _first_gap(claim: GapShrinks, lo: dict[int, float], noise: float, seeds: list[int]) -> tuple[str, Any]:
    """Whether a is ahead of b at ``low`` at all (a one-sided paired test at α, the test set's noise
    included): an advantage must exist before it can shrink."""
    res = paired_difference(
        [lo[k] for k in seeds], [0.0] * len(seeds), 1 - 2 * claim.alpha, "greater", extra_variance=noise
    )
    if res.ci_low > 0:
        return REPRODUCED, res
    return (NOT_REPRODUCED if res.ci_high < 0 else INCONCLUSIVE), res


@register_claim_kind
class GapShrinksKind(ClaimKind):
    schema = GapShrinks
    rule = (
        "a *gap shrinks* claim holds when the CI of the per-seed difference gap(low) − gap(high), each "
        "gap the mean paired a − b over the cells of that seed, lies above 0"
    )

    @staticmethod
    def evaluate(claim: GapShrinks, ctx: Any) -> Any:
        lo, info_lo = _gaps(claim, ctx, claim.low)
        hi, info_hi = _gaps(claim, ctx, claim.high)
        seeds = sorted(set(lo) & set(hi))
        if len(seeds) < 2:
            why = f"{len(seeds)} seed(s) with runs of a and b at both {claim.over} {claim.low} and {claim.high}"
            return ctx.result(claim, NOT_EVALUATED, why + ": too few", {"seeds": seeds, "n": len(seeds)})
        conf = 1 - 2 * claim.alpha
        noise = info_lo["noise"] + info_hi["noise"]
        res = paired_difference(
            [lo[k] for k in seeds], [hi[k] for k in seeds], confidence=conf, alternative="greater", extra_variance=noise
        )
        if res.ci_low > 0:
            verdict = REPRODUCED
        elif res.ci_high < 0:
            verdict = NOT_REPRODUCED
        else:
            verdict = INCONCLUSIVE
        first, first_res = _first_gap(claim, lo, info_lo["noise"], seeds)
        if first != REPRODUCED:  # a must be ahead at low for an advantage to shrink
            verdict = NOT_REPRODUCED if first == NOT_REPRODUCED else INCONCLUSIVE
        gap = f"{claim.a.label()} − {claim.b.label()}"
        summary = (
            f"gap {gap} at {claim.over} {claim.low}: {fmt(float(np.mean([lo[k] for k in seeds])))} pp, at "
            f"{claim.high}: {fmt(float(np.mean([hi[k] for k in seeds])))} pp; difference {fmt(res.mean_diff)} pp "
            f"({round(conf * 100)}% CI [{fmt(res.ci_low)}, {fmt(res.ci_high)}], paired t over seeds, n={res.n} seeds"
            + (f", test-set SD {math.sqrt(noise):.2f} pp included" if noise > 0 else "")
            + ")"
        )
        if first != REPRODUCED:
            where = "behind" if first == NOT_REPRODUCED else "not shown ahead of"
            summary = (
                f"{claim.a.label()} is {where} {claim.b.label()} at {claim.over} {claim.low} "
                f"(gap {fmt(first_res.mean_diff)} pp, {round(conf * 100)}% CI [{fmt(first_res.ci_low)}, "
                f"{fmt(first_res.ci_high)}]): there is no advantage shown to shrink; {summary}"
            )
        ev: dict[str, Any] = {
            "seeds": seeds,
            "gap_low": [lo[k] for k in seeds],
            "gap_high": [hi[k] for k in seeds],
            "mean": res.mean_diff,
            "ci_low": res.ci_low,
            "ci_high": res.ci_high,
            "p_value": res.p_value,
            "n": res.n,
            "confidence": conf,
            "pairing": {"low": info_lo, "high": info_hi},
            "first_gap": {
                "verdict": first,
                "mean": first_res.mean_diff,
                "ci_low": first_res.ci_low,
                "ci_high": first_res.ci_high,
            },
            "test_set_sd": math.sqrt(noise),
        }
        n = None
        if verdict == INCONCLUSIVE and first == REPRODUCED and math.isfinite(res.sd_diff) and res.mean_diff:
            n = seeds_needed(
                abs(res.mean_diff),
                res.sd_diff,
                alpha=claim.alpha,
                power=POWER,
                paired=True,
                alternative="greater",
                extra_variance=noise,
            )
        return ctx.result(claim, verdict, summary, ev, seeds=n)

    @staticmethod
    def render(claim: GapShrinks, result: Any) -> tuple[list[str], Any]:
        """The summary, then one row per seed: its gap at ``low``, at ``high`` and their difference."""
        from restudy.api import tables

        ev = result.evidence
        rows = [
            [str(k), fmt(u), fmt(v), fmt(u - v)]
            for k, u, v in zip(ev.get("seeds", []), ev.get("gap_low", []), ev.get("gap_high", []))
        ]
        head = ["seed", f"gap at {claim.over} {claim.low} (pp)", f"gap at {claim.over} {claim.high} (pp)", "difference"]
        return [result.summary, tables.seeds_line(result)], (tables.table(head, rows) if rows else None)

    @staticmethod
    def figure(claim: GapShrinks, result: Any, path: Path) -> Path | None:
        ev = result.evidence
        if not ev.get("gap_low"):
            return None
        from restudy.api import draw

        fig, ax = draw.subplots(figsize=(4.5, 4.0))
        lo, hi = draw.floats(ev["gap_low"]), draw.floats(ev["gap_high"])
        for u, v in zip(lo, hi):
            ax.plot([0, 1], [u, v], color="grey", alpha=0.5, linewidth=0.8, marker="o", markersize=3)
        ax.plot([0, 1], [float(np.mean(lo)), float(np.mean(hi))], color=draw.color(0), linewidth=2, marker="o")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xticks([0, 1], [f"{claim.over} {claim.low}", f"{claim.over} {claim.high}"], fontsize=8)
        ax.set_ylabel(f"{claim.metric}: {claim.a.label()} − {claim.b.label()} per seed")
        draw.title(ax, result)
        return draw.save(fig, path)


# --------------------------------------------------------------------------- cost ratio


class CostRatio(Quantified, ClaimBase):
    """The training time of ``a`` over that of ``b`` exceeds ``above`` (and, with ``below``, stays
    under it): pooled over the cells (``quantifier: mean``, the default) or in each cell."""

    kind: Literal["cost_ratio"]
    a: Selector
    b: Selector
    above: float = 1.0
    below: float | None = Field(None, description="an upper bound on the ratio ('2 % to 358 %': 4.58)")
    reference_tables: list[str] = []
    quantifier: Quantifier = "mean"

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("a",), self.a), (("b",), self.b)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        ids = {t.id for t in study.tables}
        out: list[tuple[Any, ...]] = [
            (("reference_tables", i), f"no table {t!r} in the study's tables")
            for i, t in enumerate(self.reference_tables)
            if t not in ids
        ]
        if not (math.isfinite(self.above) and self.above > 0):
            out.append((("above",), "above must be a ratio > 0"))
        if self.below is not None and not self.below > self.above:
            out.append((("below",), "below must be a ratio above 'above'"))
        return out


def _reported_ratio(claim: CostRatio, ctx: Any, variant: dict[str, str]) -> tuple[float, str] | None:
    """The a/b ratio a reference table reports for the cell ``variant`` (None when none has it, or
    the table is reported at another scale than these runs': its numbers are not comparable)."""
    for tid in claim.reference_tables:
        t = ctx.study.table(tid)
        lay = t.layout
        if lay is None or not hasattr(lay, "row_axis") or lay.experiment != claim.a.experiment:
            continue
        if t.scale != ctx.scale or any(variant.get(k) != str(v) for k, v in lay.where.items()):
            continue
        row = variant.get(lay.row_axis)
        va, vb = (
            t.value(row, str(claim.a.where.get(lay.column_axis))),
            t.value(row, str(claim.b.where.get(lay.column_axis))),
        )
        if va is not None and vb is not None and vb.value > 0:
            return va.value / vb.value, f"{tid} ({t.where})"
    return None


def _ratio_verdict(claim: CostRatio, lo: float, hi: float) -> str:
    """A ratio's interval [lo, hi] against (above, below)."""
    top = claim.below if claim.below is not None else math.inf
    if lo > claim.above and hi < top:
        return REPRODUCED
    return NOT_REPRODUCED if hi < claim.above or lo > top else INCONCLUSIVE


def _per_cell(claim: CostRatio, logs: list[list[float]], cells: list[dict[str, Any]]) -> tuple[str, str]:
    """Each cell's geometric-mean ratio over seeds decided on its own (a t-interval on the log scale
    at the α the quantifier gives a cell), the cells combined by the quantifier; each cell's
    interval is added to ``cells``."""
    usable_cells = [(lg, c) for lg, c in zip(logs, cells) if len(lg) >= 2]
    a_pass, a_ref = cell_alphas(claim.quantifier, len(usable_cells), claim.alpha)
    passed, refuted = [], []
    for lg, c in usable_cells:
        s, strict = summarize(lg, 1 - 2 * a_pass), summarize(lg, 1 - 2 * a_ref)
        passed.append(_ratio_verdict(claim, math.exp(s.ci_low), math.exp(s.ci_high)) == REPRODUCED)
        refuted.append(_ratio_verdict(claim, math.exp(strict.ci_low), math.exp(strict.ci_high)) == NOT_REPRODUCED)
        c["ci_low"], c["ci_high"] = math.exp(s.ci_low), math.exp(s.ci_high)
    return combine_cells(claim.quantifier, passed, refuted, claim.share), counts_text(
        claim.quantifier, passed, refuted, claim.share
    )


@register_claim_kind
class CostRatioKind(ClaimKind):
    schema = CostRatio
    rule = (
        "a *cost ratio* claim holds when the t-interval over seeds of the geometric mean training-time ratio "
        "a/b (each seed's log-ratios averaged over its cells) lies above the claimed ratio"
    )

    @staticmethod
    def evaluate(claim: CostRatio, ctx: Any) -> Any:
        pairs, info = ctx.pair(ctx.runs(claim.a), ctx.runs(claim.b), claim.a, claim.b)
        free = [ax for ax in info.get("by", []) if ax != "seed_index"]
        by_seed: dict[int, list[float]] = {}
        by_cell: dict[tuple[str, ...], dict[str, Any]] = {}
        for x, y in pairs:
            ta, tb = x.get("train_s"), y.get("train_s")
            if not (isinstance(ta, (int, float)) and isinstance(tb, (int, float)) and ta > 0 and tb > 0):
                continue
            lr = math.log(ta / tb)
            by_seed.setdefault(int(x["seed_index"]), []).append(lr)
            key = tuple(str(x["variant"].get(ax)) for ax in free)
            cell = by_cell.setdefault(key, {"variant": dict(x["variant"]), "logs": []})
            cell["logs"].append(lr)
        seeds = sorted(by_seed)
        if len(seeds) < 2:
            return ctx.result(claim, NOT_EVALUATED, f"{len(seeds)} seed(s) with timed pairs: too few", {})
        conf = 1 - 2 * claim.alpha
        s = summarize([float(np.mean(by_seed[k])) for k in seeds], conf)
        ratio, lo, hi = math.exp(s.mean), math.exp(s.ci_low), math.exp(s.ci_high)
        verdict = _ratio_verdict(claim, lo, hi)
        # Cells are named by the free axes whose levels differ between them (all when none does).
        shown = [i for i, _ in enumerate(free) if len({k[i] for k in by_cell}) > 1] or list(range(len(free)))
        cells = []
        for key, c in sorted(by_cell.items()):
            rep = _reported_ratio(claim, ctx, c["variant"])
            cells.append(
                {
                    "cell": ", ".join(f"{free[i]}={key[i]}" for i in shown),
                    "ratio": math.exp(float(np.mean(c["logs"]))),
                    "n": len(c["logs"]),
                    "reported": rep[0] if rep else None,
                    "source": rep[1] if rep else "",
                }
            )
        bound = f"above ×{fmt(claim.above)}" + (f" and below ×{fmt(claim.below)}" if claim.below else "")
        summary = (
            f"{claim.a.label()} / {claim.b.label()} training time: ×{fmt(ratio)} ({round(conf * 100)}% CI "
            f"[{fmt(lo)}, {fmt(hi)}], geometric mean over {len(cells)} cell(s), n={s.n} seeds) "
            f"vs {bound}"
        )
        if claim.quantifier != "mean":
            verdict, counts = _per_cell(claim, [c["logs"] for _, c in sorted(by_cell.items())], cells)
            summary = f"per cell ({counts}); pooled: {summary}"
        loads = [mean_host_load([p[i] for p in pairs]) for i in (0, 1)]
        if loads[0] and loads[1]:
            (la, cpus), (lb, _) = loads[0], loads[1]
            summary += (
                f"; host load while they ran (1-minute load average, {cpus} cores): {fmt(la)} for "
                f"{claim.a.label()}, {fmt(lb)} for {claim.b.label()}"
            )
        ev = {"ratio": ratio, "ci_low": lo, "ci_high": hi, "n": s.n, "above": claim.above, "confidence": conf}
        ev |= {"cells": cells, "pairing": info}
        shift = math.log(claim.above)
        effect = s.mean - shift
        n = None
        if verdict == INCONCLUSIVE and claim.quantifier == "mean" and math.isfinite(s.sd) and s.sd > 0 and effect:
            n = seeds_needed(abs(effect), s.sd, alpha=claim.alpha, power=POWER, paired=True, alternative="greater")
        return ctx.result(claim, verdict, summary, ev, seeds=n)

    @staticmethod
    def render(claim: CostRatio, result: Any) -> tuple[list[str], Any]:
        from restudy.api import tables

        cells = result.evidence.get("cells") or []
        rows = [
            [
                c["cell"],
                f"×{fmt(c['ratio'])} ({c['n']})",
                f"×{fmt(c['reported'])}" if c["reported"] else "—",
                c["source"],
            ]
            for c in cells
        ]
        head = ["cell", "measured a/b (seeds)", "reported a/b", "reported in"]
        return [result.summary], (tables.table(head, rows) if rows else None)

    @staticmethod
    def figure(claim: CostRatio, result: Any, path: Path) -> Path | None:
        cells = result.evidence.get("cells") or []
        if not cells:
            return None
        from restudy.api import draw

        fig, ax = draw.subplots(figsize=(max(4.5, 0.5 * len(cells) + 2), 4.0))
        xs = np.arange(len(cells))
        ax.scatter(xs, [c["ratio"] for c in cells], color=draw.color(0), label="measured", zorder=3)
        rep = [(i, c["reported"]) for i, c in enumerate(cells) if c["reported"]]
        if rep:
            ax.scatter([i for i, _ in rep], [r for _, r in rep], marker="x", color=draw.color(1), label="reported")
        ax.axhline(claim.above, color="grey", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks(xs, [c["cell"] for c in cells], rotation=60, ha="right", fontsize=6)
        ax.set_ylabel(f"training time {claim.a.label()} / {claim.b.label()}", fontsize=7)
        ax.legend(fontsize=7)
        draw.title(ax, result)
        return draw.save(fig, path)
