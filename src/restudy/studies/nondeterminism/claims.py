"""The nondeterminism study's claim kinds on runs (registered with ``register_claim_kind``); the
kinds about printed numbers are in :mod:`.printed`.

``train_time_within``. The training time (the run's ``train_s``: the optimisation steps, without
loading and evaluation) of ``a`` over that of ``b``, runs paired by seed index: the geometric mean
ratio over seeds with its (1 − 2α) t-interval on the log scale. *Reproduced* when it lies inside
``band``, *not reproduced* when wholly outside, else inconclusive. Paired runs are trained
seed-major (interleaved), so the host's load reaches both arms alike; the summary gives the load.

``variability_scaled``. Each group's overall variability against its own reference set: the
geometric mean over the five metrics of r = V_group/V_reference (V = 1 − correlation for the
correlation), its percentile interval from the two sets' own bootstrap draws over models (the sets
are different experiments: independent resamples) at 1 − 2α/k for k groups. *Reproduced* when every
interval lies inside ``band`` (which, unlike ``variability``'s, need not contain 1: "about three
times higher", rep2022 §4.2), *not reproduced* when one lies wholly outside, else inconclusive.

``mean_metric``. The mean of a run metric over the runs of several experiments, pooled, with its
(1 − 2α) t-interval, against one printed value ("an average accuracy of 63%", rep2022 §4.2):
*reproduced* when the interval lies within the printed value's rounding (± half a unit of its last
digit), *not reproduced* when wholly outside it.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from restudy.api import (
    NOT_EVALUATED,
    ClaimBase,
    ClaimKind,
    Field,
    ModelSet,
    Selector,
    fmt,
    mean_host_load,
    register_claim_kind,
    summarize,
)

from .printed import METRICS, band_verdict, combine_pairs, printed_problems, resolve

__all__ = ["MeanMetric", "TrainTimeWithin", "VariabilityScaled", "scaled_ratio"]


def _ratio_band(band: tuple[float, float]) -> list[tuple[Any, ...]]:
    ok = 0 < band[0] <= band[1]
    return [] if ok else [(("band",), f"band must be ratios [low, high] with 0 < low <= high; got {list(band)}")]


# --------------------------------------------------------------------------------------------
# train_time_within
# --------------------------------------------------------------------------------------------


class TrainTimeWithin(ClaimBase):
    """The training time of ``a`` over that of ``b`` lies inside ``band``."""

    kind: Literal["train_time_within"]
    a: Selector
    b: Selector
    band: tuple[float, float]
    band_reason: str = Field(min_length=1)

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("a",), self.a), (("b",), self.b)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        return _ratio_band(self.band)


def _evaluate_train_time(claim: TrainTimeWithin, ctx: Any) -> Any:
    pairs, info = ctx.pair(ctx.runs(claim.a), ctx.runs(claim.b), claim.a, claim.b)
    by_seed: dict[int, list[float]] = {}
    for x, y in pairs:
        ta, tb = x.get("train_s"), y.get("train_s")
        if isinstance(ta, (int, float)) and isinstance(tb, (int, float)) and ta > 0 and tb > 0:
            by_seed.setdefault(int(x["seed_index"]), []).append(math.log(ta / tb))
    seeds = sorted(by_seed)
    if len(seeds) < 2:
        return ctx.result(claim, NOT_EVALUATED, f"{len(seeds)} seed(s) with timed pairs: too few", {})
    conf = 1 - 2 * claim.alpha
    s = summarize([float(np.mean(by_seed[k])) for k in seeds], conf)
    ratio, lo, hi = math.exp(s.mean), math.exp(s.ci_low), math.exp(s.ci_high)
    verdict = band_verdict(lo, hi, claim.band)
    summary = (
        f"{claim.a.label()} / {claim.b.label()} training time (train_s): ×{fmt(ratio)} "
        f"({round(conf * 100)}% CI [{fmt(lo)}, {fmt(hi)}], geometric mean over n={s.n} paired seeds) "
        f"vs band [{fmt(claim.band[0])}, {fmt(claim.band[1])}]"
    )
    loads = [mean_host_load([p[i] for p in pairs]) for i in (0, 1)]
    if loads[0] and loads[1]:
        (la, cpus), (lb, _) = loads[0], loads[1]
        summary += f"; host load while they ran (1-minute load average, {cpus} cores): {fmt(la)} and {fmt(lb)}"
    ev = {
        "ratio": ratio,
        "ci_low": lo,
        "ci_high": hi,
        "n": s.n,
        "band": list(claim.band),
        "band_reason": claim.band_reason,
        "confidence": conf,
        "pairing": info,
    }
    return ctx.result(claim, verdict, summary, ev, metric="train_s")


@register_claim_kind
class TrainTimeWithinKind(ClaimKind):
    schema = TrainTimeWithin
    rule = (
        "a *training time* claim holds when the t-interval over paired seeds of the geometric mean training-time "
        "ratio a/b lies inside the band"
    )
    evaluate = staticmethod(_evaluate_train_time)


# --------------------------------------------------------------------------------------------
# variability_scaled
# --------------------------------------------------------------------------------------------


class VariabilityScaled(ClaimBase):
    """Each group's overall variability (geometric mean over the metrics of V_group/V_reference)
    lies inside ``band``, each group against its own reference set."""

    kind: Literal["variability_scaled"]
    groups: list[ModelSet] = Field(min_length=1)
    references: list[ModelSet] = Field(min_length=1, description="one reference set per group, in order")
    band: tuple[float, float]
    band_reason: str = Field(min_length=1)
    metrics: list[Literal["sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"]] = list(
        METRICS
    )

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        out = _ratio_band(self.band)
        if len(self.references) != len(self.groups):
            out.append((("references",), f"{len(self.groups)} groups need {len(self.groups)} references, one each"))
        return out

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        out = [(("groups", i), g.selector()) for i, g in enumerate(self.groups)]
        return out + [(("references", i), r.selector()) for i, r in enumerate(self.references)]


def _v(metric: str, x: Any) -> Any:
    return 1.0 - np.asarray(x, dtype=float) if metric == "correlation" else np.asarray(x, dtype=float)


def scaled_ratio(
    metrics: list[str],
    g_values: dict[str, float],
    r_values: dict[str, float],
    g_draws: dict[str, np.ndarray],
    r_draws: dict[str, np.ndarray],
    confidence: float,
) -> tuple[float, float, float]:
    """Geometric mean over ``metrics`` of V_group/V_reference, with the percentile interval of the
    same statistic over the two sets' independent bootstrap draws."""
    point = float(np.exp(np.mean([np.log(_v(m, g_values[m]) / _v(m, r_values[m])) for m in metrics])))
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.mean([np.log(_v(m, g_draws[m]) / _v(m, r_draws[m])) for m in metrics], axis=0)
    logs = logs[np.isfinite(logs)]
    if logs.size < 10:
        return point, math.nan, math.nan
    q = (1 - confidence) / 2
    return point, float(np.exp(np.quantile(logs, q))), float(np.exp(np.quantile(logs, 1 - q)))


def _evaluate_scaled(claim: VariabilityScaled, ctx: Any) -> Any:
    conf = 1 - 2 * claim.alpha / len(claim.groups)
    parts = []
    for g_ms, r_ms in zip(claim.groups, claim.references):
        g, r = ctx.model_set(g_ms), ctx.model_set(r_ms)
        name = f"{g.name} vs {r.name}"
        why = g.why or r.why or ("" if min(g.n_models, r.n_models) >= 2 else "fewer than 2 models")
        if why:
            parts.append({"group": name, "verdict": NOT_EVALUATED, "sentence": f"{name}: {why}"})
            continue
        ratio, lo, hi = scaled_ratio(claim.metrics, g.values, r.values, g.draws(), r.draws(), conf)
        verdict = band_verdict(lo, hi, claim.band)
        parts.append(
            {
                "group": name,
                "n_models": [g.n_models, r.n_models],
                "ratio": ratio,
                "ci_low": lo,
                "ci_high": hi,
                "per_metric": {m: float(_v(m, g.values[m]) / _v(m, r.values[m])) for m in claim.metrics},
                "verdict": verdict,
                "sentence": f"{name}: ×{fmt(ratio)} ({round(conf * 1000) / 10}% CI [{fmt(lo)}, {fmt(hi)}])",
            }
        )
    verdicts = [p["verdict"] for p in parts]
    verdict = NOT_EVALUATED if all(v == NOT_EVALUATED for v in verdicts) else combine_pairs("every", verdicts)
    summary = (
        f"geometric mean of V(group)/V(reference) over {len(claim.metrics)} metrics, band "
        f"[{fmt(claim.band[0])}, {fmt(claim.band[1])}]: " + "; ".join(p["sentence"] for p in parts)
    )
    ev = {"band": list(claim.band), "band_reason": claim.band_reason, "confidence": conf, "groups": parts}
    return ctx.result(claim, verdict, summary, ev, metric=", ".join(claim.metrics))


@register_claim_kind
class VariabilityScaledKind(ClaimKind):
    schema = VariabilityScaled
    rule = (
        "a *scaled variability* claim compares each group's geometric-mean variability ratio against its own "
        "reference with a band that need not contain 1, by bootstrap intervals over models"
    )
    evaluate = staticmethod(_evaluate_scaled)


# --------------------------------------------------------------------------------------------
# mean_metric
# --------------------------------------------------------------------------------------------


class MeanMetric(ClaimBase):
    """The mean of ``metric`` over the runs of ``select`` (pooled) equals the printed value."""

    kind: Literal["mean_metric"]
    select: list[Selector] = Field(min_length=1)
    printed: dict[str, Any] = Field(description="the printed value: {table, row, column} or {value, where}")

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select", i), s) for i, s in enumerate(self.select)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        return printed_problems(self.printed, study, ("printed",))


def _evaluate_mean(claim: MeanMetric, ctx: Any) -> Any:
    values = [ctx.value(r, claim.metric) for s in claim.select for r in ctx.runs(s)]
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return ctx.result(claim, NOT_EVALUATED, f"{len(values)} run(s) with {claim.metric}: too few", {})
    text, target, plo, phi = resolve(claim.printed, ctx.study)
    s = summarize(values, 1 - 2 * claim.alpha)
    verdict = band_verdict(s.ci_low, s.ci_high, (plo, phi))
    summary = (
        f"mean {claim.metric} over {s.n} runs: {fmt(s.mean)} ({round((1 - 2 * claim.alpha) * 100)}% CI "
        f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]) vs printed {text} (values that print as it: [{fmt(plo)}, {fmt(phi)}])"
    )
    ev = {"mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n, "printed": text, "band": [plo, phi]}
    return ctx.result(claim, verdict, summary, ev)


@register_claim_kind
class MeanMetricKind(ClaimKind):
    schema = MeanMetric
    rule = "a *mean metric* claim holds when the t-interval of the pooled mean lies within the printed value's rounding"
    evaluate = staticmethod(_evaluate_mean)
