"""The study's own claim kinds (registered with ``register_claim_kind``):

* ``chance_level``: test accuracy is chance (100/C %) within the binomial noise floor. Per group
  (variant), the (1 − 2α) CI of the mean test accuracy, its SD floored by the binomial SD of one
  run's accuracy at chance on the test set, must lie inside chance ± ``band_sds`` such SDs
  (reproduced); a CI wholly outside that band is not reproduced; else inconclusive.
* ``fit_slowdown``: the time to fit the training set (metric ``fit_step``, setting
  ``stop_at_fit``) grows from the lowest to the highest level of the axis ``over`` (label
  corruption p) by a factor in (1, ``max_factor``]. Per group of the axis ``by`` (the model), runs
  are paired by seed index; the factor is the geometric mean of the per-seed ratios with a
  (1 − 2α) t-interval on the log scale. A run that never fit leaves the group inconclusive.
* ``modest_effect``: the paired difference of a metric between ``a`` and ``b`` (e.g. with and
  without regularizers) lies within ± ``band`` (an equivalence test: the (1 − 2α) CI inside the
  band is reproduced, wholly outside is not reproduced); ``band_of: error`` states the band as a
  fraction of b's test error in that cell (100 − its mean accuracy), so that one band means the
  same on CIFAR-10 at 85 % and on digits at 98 %; in every cell the selectors leave free by
  default (``quantifier``); the test set's own noise widens the CI of a test accuracy, and a cell
  where a side did not learn gives no verdict: two models at chance differ by nothing.
* ``step_loss``: the training loss per step (the runs' ``step_curve``, setting
  ``curve_every_steps``; Fig. 1a) falls to at most ``max_loss`` by the end of training. Per group
  (variant), the (1 − 2α) CI of the mean over seeds of each run's last step-curve window must lie
  at or below ``max_loss`` (reproduced); a CI wholly above is not reproduced; a run without a step
  curve leaves the group not evaluated. Its figure is Fig. 1a: loss vs step per group, the mean
  over the seeds still training at that step.
Groups combine as any claim's sub-verdicts do (any not reproduced wins, all reproduced wins).
"""

from __future__ import annotations

import math
from collections import defaultdict
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
    Selector,
    binomial_floor_sd_percent,
    cell_alphas,
    combine,
    combine_cells,
    fmt,
    not_learned,
    register_claim_kind,
    seeds_to_decide,
    summarize,
)

__all__ = ["ChanceLevel", "FitSlowdown", "ModestEffect", "StepLoss"]


def _within(low: float, high: float, lo_band: float, hi_band: float) -> str:
    if lo_band <= low and high <= hi_band:
        return REPRODUCED
    if high < lo_band or low > hi_band:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _by_variant(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[r.get("variant_id") or "-"].append(r)
    return dict(groups)


# --------------------------------------------------------------------------- chance level


class ChanceLevel(ClaimBase):
    """Test (or, with ``metric: train_acc``, train) accuracy of the selected runs is chance, within
    the binomial noise floor of the split it is measured on."""

    kind: Literal["chance_level"]
    select: Selector
    classes: int = 10
    band_sds: float = 2.0

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select",), self.select)]


def _split_size(metric: str) -> str:
    """The count whose binomial SD floors an accuracy: ``n_train`` for a train accuracy, else ``n_test``."""
    return "n_train" if metric.startswith("train_acc") else "n_test"


@register_claim_kind
class ChanceLevelKind(ClaimKind):
    schema = ChanceLevel
    rule = (
        "a *chance level* claim holds when the CI of the mean test accuracy (SD floored by the binomial "
        "SD at chance) lies within chance ± band_sds binomial SDs of one run"
    )

    @staticmethod
    def evaluate(claim: ChanceLevel, ctx: Any) -> Any:
        runs = ctx.runs(claim.select)
        if not runs:
            return ctx.result(claim, NOT_EVALUATED, "no runs selected", {})
        chance = 100.0 / claim.classes
        conf = 1 - 2 * claim.alpha
        groups, verdicts = [], []
        seeds_needed: list[int | None] = []
        for label, rs in sorted(_by_variant(runs).items()):
            values = [ctx.value(r, claim.metric) for r in rs]
            n_test = int(ctx.value(rs[0], _split_size(claim.metric)))
            floor = binomial_floor_sd_percent(chance, n_test)
            s = summarize(values, conf, floor_sd=floor)
            margin = claim.band_sds * floor
            v = _within(s.ci_low, s.ci_high, chance - margin, chance + margin)
            verdicts.append(v)
            if v == INCONCLUSIVE:  # seeds after which the CI would decide, at the observed mean and SD
                n_more, _ = seeds_to_decide(s.mean - chance, s.sd_used, 0.0, margin, claim.alpha)
                seeds_needed.append(n_more)
            groups.append(
                {
                    "label": label,
                    "values": values,
                    "n": s.n,
                    "mean": s.mean,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "floor_sd": floor,
                    "band": [chance - margin, chance + margin],
                    "n_test": n_test,
                    "verdict": v,
                }
            )
        verdict = combine(verdicts)
        summary = "; ".join(
            f"{g['label']}: {fmt(g['mean'])}% ({round(conf * 100)}% CI [{fmt(g['ci_low'])}, {fmt(g['ci_high'])}], "
            f"n={g['n']}) vs chance {fmt(chance)} ± {fmt(g['band'][1] - chance)}"
            for g in groups
        )
        known = [n for n in seeds_needed if n is not None]
        seeds = max(known) if known and len(known) == len(seeds_needed) and verdict == INCONCLUSIVE else None
        if seeds is not None:
            summary += f". To decide: about {seeds} seeds per variant (CI width at the observed SD)"
        evidence = {"chance": chance, "confidence": conf, "groups": groups, "seeds_needed": seeds}
        return ctx.result(claim, verdict, summary, evidence, seeds=seeds)

    @staticmethod
    def figure(claim: ChanceLevel, result: Any, path: Path) -> Path | None:
        groups = result.evidence.get("groups") or []
        if not groups:
            return None
        from restudy.api import draw

        fig, ax = draw.subplots(figsize=(max(4.5, 1.4 * len(groups) + 2), 4.0))
        for i, g in enumerate(groups):
            ax.fill_between([i - 0.35, i + 0.35], *g["band"], color="grey", alpha=0.2, linewidth=0)
            vals = draw.floats(g["values"])
            ax.scatter(np.full(len(vals), float(i)) + np.linspace(-0.15, 0.15, len(vals)), vals, s=14, alpha=0.5)
            draw.errorbar(ax, i, g["mean"], g["ci_low"], g["ci_high"], draw.color(0))
        ax.axhline(result.evidence["chance"], color="tab:red", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(range(len(groups)), [g["label"] for g in groups], fontsize=7, rotation=15)
        ax.set_ylabel("test accuracy (%); grey: chance ± band")
        ax.legend(fontsize=8)
        draw.title(ax, result)
        return draw.save(fig, path)


# --------------------------------------------------------------------------- time to fit


class FitSlowdown(ClaimBase):
    """Time to fit grows from the lowest to the highest level of ``over`` by a factor in
    (1, ``max_factor``]."""

    kind: Literal["fit_slowdown"]
    select: Selector
    over: str
    by: str | None = None
    max_factor: float = 10.0

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select",), self.select)]


def _level(r: dict[str, Any], axis: str) -> float:
    return float((r.get("variant") or {})[axis])


@register_claim_kind
class FitSlowdownKind(ClaimKind):
    schema = FitSlowdown
    rule = (
        "a *fit slowdown* claim holds when the geometric-mean ratio of the steps to fit the training set "
        "(highest vs lowest level, paired by seed) has its CI inside (1, max_factor]"
    )

    @staticmethod
    def evaluate(claim: FitSlowdown, ctx: Any) -> Any:
        runs = ctx.runs(claim.select)
        if not runs:
            return ctx.result(claim, NOT_EVALUATED, "no runs selected", {}, metric="fit_step")
        conf = 1 - 2 * claim.alpha
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in runs:
            by[str((r.get("variant") or {}).get(claim.by, "all")) if claim.by else "all"].append(r)
        groups, verdicts = [], []
        for label, rs in sorted(by.items()):
            g = _slowdown(claim, rs, conf)
            g["label"] = label
            verdicts.append(g["verdict"])
            groups.append(g)
        summary = "; ".join(
            f"{g['label']}: ×{fmt(g['factor'])} ({round(conf * 100)}% CI [{fmt(g['ci_low'])}, {fmt(g['ci_high'])}], "
            f"{g['pairs']} pairs" + (f", {g['unfit']} runs never fit" if g["unfit"] else "") + ")"
            for g in groups
        )
        return ctx.result(
            claim,
            combine(verdicts),
            summary + f"; claimed in (1, {fmt(claim.max_factor)}]",
            {"confidence": conf, "max_factor": claim.max_factor, "over": claim.over, "groups": groups},
            metric="fit_step",
        )

    @staticmethod
    def figure(claim: FitSlowdown, result: Any, path: Path) -> Path | None:
        groups = result.evidence.get("groups") or []
        if not groups:
            return None
        from restudy.api import draw

        fig, ax = draw.subplots(figsize=(7.0, 4.2))
        for i, g in enumerate(groups):
            lv = [x for x in g["levels"] if x["mean"] is not None]
            ax.plot([x["x"] for x in lv], [x["mean"] for x in lv], "-o", color=draw.color(i), label=g["label"])
            for x in lv:
                ax.scatter([x["x"]] * len(x["values"]), draw.floats(x["values"]), s=10, color=draw.color(i), alpha=0.4)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xlabel(claim.over)
        ax.set_ylabel("time to fit / mean time to fit at the lowest level")
        ax.legend(fontsize=8)
        draw.title(ax, result)
        return draw.save(fig, path)


def _slowdown(claim: FitSlowdown, rs: list[dict[str, Any]], conf: float) -> dict[str, Any]:
    levels = sorted({_level(r, claim.over) for r in rs})
    steps = {(r["seed_index"], _level(r, claim.over)): r["metrics"].get("fit_step") for r in rs}
    unfit = sum(v is None for v in steps.values())
    base = [v for (_, x), v in steps.items() if x == levels[0] and v]
    base_mean = float(np.mean(base)) if base else math.nan
    per_level = []
    for x in levels:
        vals = [v / base_mean for (_, lx), v in sorted(steps.items()) if lx == x and v is not None]
        per_level.append({"x": x, "values": vals, "mean": float(np.mean(vals)) if vals else None})
    lo, hi = levels[0], levels[-1]
    seeds = sorted({s for s, _ in steps})
    pairs = [(steps.get((s, hi)), steps.get((s, lo))) for s in seeds if (s, hi) in steps and (s, lo) in steps]
    logs = [math.log(a / b) for a, b in pairs if a and b]
    out: dict[str, Any] = {"levels": per_level, "pairs": len(logs), "unfit": unfit, "low": lo, "high": hi}
    if len(logs) < 2 or len(levels) < 2:
        return out | {"factor": math.nan, "ci_low": math.nan, "ci_high": math.nan, "verdict": INCONCLUSIVE}
    s = summarize(logs, conf)
    factor, low, high = math.exp(s.mean), math.exp(s.ci_low), math.exp(s.ci_high)
    verdict = _within(low, high, 1.0, claim.max_factor)
    if verdict == REPRODUCED and low <= 1.0:
        verdict = INCONCLUSIVE
    if unfit and verdict != NOT_REPRODUCED:
        verdict = INCONCLUSIVE  # a censored time to fit: the ratio is not known
    return out | {"factor": factor, "ci_low": low, "ci_high": high, "verdict": verdict}


# --------------------------------------------------------------------------- modest effect


class ModestEffect(Quantified, ClaimBase):
    """The paired difference of the metric between ``a`` and ``b`` lies within ± ``band``: in every
    cell the two selectors leave free (the default), on their mean, or in any of them."""

    kind: Literal["modest_effect"]
    a: Selector
    b: Selector
    band: float = Field(gt=0, description="the largest difference that is still modest, in band_of's unit")
    band_of: Literal["pp", "error"] = Field(
        "pp",
        description="pp: the band is in the metric's own unit; error: a fraction of b's test error in each cell "
        "(100 − its mean accuracy), valid at any scale",
    )
    band_reason: str = Field("", description="why this band (shown in the report)")
    side: Literal["both", "upper"] = Field(
        "both",
        description="both: a − b within center ± band ('changes only modestly'); upper: a − b at most "
        "center + band, however far below ('does not provide significant improvement' bounds the gain only)",
    )
    center: float = Field(
        0.0,
        description="the difference the band is centred on, in pp ('improved by 2 %'); only with band_of pp",
    )

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("a",), self.a), (("b",), self.b)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        if self.center and self.band_of != "pp":
            return [(("center",), "a centre is a difference in pp: use band_of pp with it")]
        return []

    def bounds(self, band: float) -> tuple[float, float]:
        """The interval a − b must lie in, for a band in the metric's unit."""
        low = -math.inf if self.side == "upper" else self.center - band
        return low, self.center + band


def _band(claim: ModestEffect, ctx: Any, pairs: list) -> float:
    """The band in the metric's unit for these pairs: ``band``, or ``band`` × b's mean error."""
    if claim.band_of == "pp":
        return claim.band
    accs = [ctx.value(y, claim.metric) for _, y in pairs]
    accs = [a for a in accs if math.isfinite(a)]
    return claim.band * (100.0 - float(np.mean(accs))) if accs else math.nan


def _modest_cell(claim: ModestEffect, ctx: Any, pairs: list, alphas: tuple[float, float]) -> dict[str, Any]:
    band = _band(claim, ctx, pairs)
    diffs = [(x["seed_index"], ctx.value(x, claim.metric) - ctx.value(y, claim.metric)) for x, y in pairs]
    diffs = [(k, d) for k, d in diffs if math.isfinite(d)]
    seeds, means = ctx.per_seed(diffs)  # pairs of one seed share its streams: n counts seeds
    noise = ctx.difference_noise(pairs, claim.metric)
    s = summarize(means, 1 - 2 * alphas[0], extra_variance=noise)
    r = summarize(means, 1 - 2 * alphas[1], extra_variance=noise)
    stuck = not_learned([x for pair in pairs for x in pair])
    decided = len(seeds) >= 2 and not stuck
    low, high = claim.bounds(band)
    return {
        "passed": decided and _within(s.ci_low, s.ci_high, low, high) == REPRODUCED,
        "refuted": decided and _within(r.ci_low, r.ci_high, low, high) == NOT_REPRODUCED,
        "band": band,
        "mean": s.mean,
        "ci_low": s.ci_low,
        "ci_high": s.ci_high,
        "n": s.n,
        "seeds": seeds,
        "seed_means": means,
        "diffs": [d for _, d in diffs],
        "not_learned_runs": len(stuck),
        "test_set_sd": math.sqrt(noise),
    }


@register_claim_kind
class ModestEffectKind(ClaimKind):
    schema = ModestEffect
    rule = (
        "a *modest effect* claim holds when the CI of the paired difference a − b (the test set's own noise "
        "included for a test accuracy) lies within ± band, in each cell as the quantifier says; a cell where "
        "a side did not learn gives no verdict (two models at chance differ by nothing)"
    )

    @staticmethod
    def evaluate(claim: ModestEffect, ctx: Any) -> Any:
        a_runs, b_runs = ctx.runs(claim.a), ctx.runs(claim.b)
        pairs, info = ctx.pair(a_runs, b_runs, claim.a, claim.b)
        free = info.get("by", ["seed_index"])[1:]
        by_cell: dict[str, list] = {}
        for x, y in pairs:
            label = ", ".join(f"{ax} {(x.get('variant') or {}).get(ax)}" for ax in free)
            by_cell.setdefault(label if claim.quantifier != "mean" else "", []).append((x, y))
        n_seeds = len({x["seed_index"] for x, _ in pairs})
        if n_seeds < 2:
            why = f"{n_seeds} seed(s) with pairs ({len(pairs)} pairs): too few"
            return ctx.result(claim, NOT_EVALUATED, why, {"pairs": len(pairs), "seeds": n_seeds})
        alphas = cell_alphas(claim.quantifier, len(by_cell), claim.alpha)
        cells = {label: _modest_cell(claim, ctx, ps, alphas) for label, ps in by_cell.items()}
        verdict = combine_cells(
            claim.quantifier, [c["passed"] for c in cells.values()], [c["refuted"] for c in cells.values()], claim.share
        )
        pooled = _modest_cell(claim, ctx, pairs, alphas)
        conf = 1 - 2 * alphas[0]
        per_cell = claim.band_of == "error"
        parts = [
            f"{label + ': ' if label else ''}{fmt(c['mean'])} pp ({round(conf * 100)}% CI [{fmt(c['ci_low'])}, "
            f"{fmt(c['ci_high'])}], n={c['n']} seeds"
            + (f"; band ± {fmt(c['band'])} pp)" if per_cell else ")")
            + (" ✓" if c["passed"] else " ✗" if c["refuted"] else "")
            for label, c in cells.items()
        ]
        band = f"± {fmt(claim.band)} pp" if not per_cell else f"± {claim.band:.0%} of b's test error"
        if claim.center:
            band = f"{fmt(claim.center)} {band}"
        if claim.side == "upper":
            band = "at most " + band.replace("± ", "+ ", 1)
        summary = f"{claim.a.label()} − {claim.b.label()}: {'; '.join(parts)} vs {band}"
        stuck = sum(c["not_learned_runs"] for c in cells.values())
        if stuck:
            summary += (
                f"; ⚠ {stuck} runs did not learn (train accuracy near chance): their cells give no verdict, "
                "two models that learned nothing differ by nothing"
            )
        ev = {k: pooled[k] for k in ("diffs", "mean", "ci_low", "ci_high", "n", "seeds", "seed_means", "test_set_sd")}
        ev |= {"band": pooled["band"], "band_of": claim.band_of, "band_reason": claim.band_reason}
        ev |= {"confidence": conf, "pairing": info, "quantifier": claim.quantifier}
        ev |= {"cells": [{"cell": label, **{k: v for k, v in c.items() if k != "diffs"}} for label, c in cells.items()]}
        return ctx.result(claim, verdict, summary, ev)

    @staticmethod
    def figure(claim: ModestEffect, result: Any, path: Path) -> Path | None:
        ev = result.evidence
        if not ev.get("diffs"):
            return None
        from restudy.api import draw

        fig, ax = draw.subplots(figsize=(4.5, 4.0))
        low, high = claim.bounds(ev["band"])
        if not math.isfinite(low):  # side upper: shade down to the lowest point drawn
            low = min([*draw.floats(ev["diffs"]), ev["ci_low"], high]) - 1.0
        ax.axhspan(low, high, color="grey", alpha=0.2, linewidth=0)
        vals = draw.floats(ev["diffs"])
        ax.scatter(np.linspace(-0.1, 0.1, len(vals)), vals, s=14, alpha=0.5)
        draw.errorbar(ax, 0.0, ev["mean"], ev["ci_low"], ev["ci_high"], draw.color(0))
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xticks([0.0], [f"{claim.a.label()} − {claim.b.label()}"], fontsize=7)
        ax.set_ylabel(f"{claim.metric} difference; grey: ± band")
        draw.title(ax, result)
        return draw.save(fig, path)


# --------------------------------------------------------------------------- training loss per step (Fig. 1a)


class StepLoss(ClaimBase):
    """The per-step training loss of the selected runs falls to at most ``max_loss``."""

    kind: Literal["step_loss"]
    select: Selector
    metric: Literal["train_loss"] = "train_loss"
    max_loss: float
    max_loss_reason: str = ""

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select",), self.select)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        if not (math.isfinite(self.max_loss) and self.max_loss > 0):
            return [(("max_loss",), "max_loss must be a loss > 0 (a cross-entropy)")]
        return []


def _mean_curve(curves: list[list[dict[str, Any]]]) -> tuple[list[int], list[float], list[int]]:
    """Steps, the mean loss over the runs whose curve has that step, and how many have it."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for c in curves:
        for p in c:
            by_step[int(p["step"])].append(float(p["loss"]))
    steps = sorted(by_step)
    return steps, [float(np.mean(by_step[s])) for s in steps], [len(by_step[s]) for s in steps]


@register_claim_kind
class StepLossKind(ClaimKind):
    schema = StepLoss
    rule = (
        "a *step loss* claim holds when the CI of the mean final training loss (the last window of each "
        "run's per-step loss curve) lies at or below max_loss"
    )

    @staticmethod
    def evaluate(claim: StepLoss, ctx: Any) -> Any:
        runs = ctx.runs(claim.select)
        if not runs:
            return ctx.result(claim, NOT_EVALUATED, "no runs selected", {})
        missing = sum(not r.get("step_curve") for r in runs)
        if missing:
            return ctx.result(
                claim, NOT_EVALUATED, f"{missing} of {len(runs)} runs have no step curve (curve_every_steps 0)", {}
            )
        conf = 1 - 2 * claim.alpha
        groups, verdicts = [], []
        for label, rs in sorted(_by_variant(runs).items()):
            finals = [float(r["step_curve"][-1]["loss"]) for r in rs]
            s = summarize(finals, conf)
            v = INCONCLUSIVE if s.n < 2 else _within(s.ci_low, s.ci_high, -math.inf, claim.max_loss)
            verdicts.append(v)
            steps, mean, n_at = _mean_curve([r["step_curve"] for r in rs])
            groups.append(
                {
                    "label": label,
                    "finals": finals,
                    "n": s.n,
                    "mean": s.mean,
                    "ci_low": s.ci_low,
                    "ci_high": s.ci_high,
                    "steps": steps,
                    "mean_loss": mean,
                    "runs_at_step": n_at,
                    "verdict": v,
                }
            )
        summary = (
            "; ".join(
                f"{g['label']}: final loss {fmt(g['mean'])} ({round(conf * 100)}% CI [{fmt(g['ci_low'])}, "
                f"{fmt(g['ci_high'])}], n={g['n']})"
                for g in groups
            )
            + f" vs at most {fmt(claim.max_loss)}"
        )
        ev = {"confidence": conf, "max_loss": claim.max_loss, "groups": groups}
        return ctx.result(claim, combine(verdicts), summary, ev, metric="train_loss")

    @staticmethod
    def figure(claim: StepLoss, result: Any, path: Path) -> Path | None:
        return step_loss_figure(result.evidence.get("groups") or [], path, result)


def step_loss_figure(groups: list[dict[str, Any]], path: Path, result: Any = None) -> Path | None:
    """Fig. 1a: training loss vs step per group (mean over the seeds still training at a step)."""
    if not groups:
        return None
    from restudy.api import draw

    fig, ax = draw.subplots(figsize=(7.0, 4.2))
    for i, g in enumerate(groups):
        ax.plot(g["steps"], g["mean_loss"], color=draw.color(i), linewidth=1.3, label=f"{g['label']} ({g['n']} seeds)")
    if result is not None and "max_loss" in result.evidence:
        ax.axhline(result.evidence["max_loss"], color="grey", linestyle="--", linewidth=0.8, label="max_loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (mean over a window of steps)")
    ax.legend(fontsize=7)
    if result is not None:
        draw.title(ax, result)
    return draw.save(fig, path)
