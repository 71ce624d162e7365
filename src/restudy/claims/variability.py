"""Claim kind ``variability``: run-to-run variability of model sets, measured on their stored test
predictions (:mod:`restudy.compare.modelsets`), compared with a reference set or with zero.

Each model set's runs are stacked from their stored predictions and measured with
:func:`restudy.stats.variability.summarize`. V is the metric as an amount of variability (1 − ρ for the
correlation). Uncertainty comes from the seeded bootstrap over models of the model set, as
log-scale intervals with bias correction and the expanded t quantile for positive spreads and
ratios, BCa otherwise (:func:`restudy.stats.bootstrap_interval`; percentile intervals of an SD or
a ratio of SDs from 20 models cover only 82–92 %).

- ``zero``: reproduced iff every group has ≥ 2 models, they were trained one by one (not as slices
  of one stacked model: their identity would say nothing about separately trained models, so such
  a group is inconclusive with that reason) and every requested metric shows exactly no
  variability (SDs = 0, disagreement = 0, correlation = 1, ensemble gain = 0); not reproduced
  otherwise, naming the metric and its value. No statistics: bit-identical runs give exact zeros.
- ``comparable``: per group and metric, r = V_group/V_reference with its (1 − 2α/k) bootstrap CI,
  k = groups × metrics (Bonferroni: the claim fails if any one fails). Reproduced if every CI lies
  inside ``band`` (an equivalence test); not reproduced if any CI lies entirely outside it; else
  inconclusive, with an *estimate* of the models per set that would decide, from the CI width
  shrinking as 1/√M at the observed ratio.
- ``lower``: the same ratios; a CI entirely below 1 is reproduced, entirely above 1 not
  reproduced, else inconclusive (with the models that would decide either way); the (group,
  metric) verdicts combine as numeric cells do. The evidence adds the variability reduction %
  both ways (:func:`restudy.stats.variability.reduction_percent`).
- ``lower`` with ``mainly_in`` ("the reduction shows mainly in model diversity", rep2022 §4): per
  group, the geometric mean of r over those metrics must lie below 1 *and* below the geometric
  mean of r over the claim's other metrics (the ratio of the two below 1: the named metrics carry
  the larger share of the log-reduction); each is a one-sided bootstrap test at α/groups, both must
  pass (intersection–union), either refuting at half that refutes. The per-metric ratios are shown
  for information.
- ``not_evaluated`` when a set has fewer than 2 models with predictions or none are stored.
  Diverged runs never enter a set; they are listed.

The figure draws the evidence's ratios with their CIs (or, for ``zero``, each group's values).

Imports spec, stats, compare and display (matplotlib only inside ``figure``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from ..compare.modelsets import (
    VAR_RESAMPLES,
    SetData,
    bca,
    joint_draws,
    joint_jackknife,
    no_variability,
    paired,
)
from ..compare.set_ratios import mainly_test, models_needed, ratio_draws
from ..compare.verdicts import (
    INCONCLUSIVE,
    NOT_EVALUATED,
    NOT_REPRODUCED,
    REPRODUCED,
    combine,
    directional_verdict,
)
from ..display.numbers import fmt, pct
from ..spec.claim_base import ClaimBase, ModelSet, Selector
from ..spec.values import Loc
from ..stats import variability as metrics
from .base import ClaimKind, register_claim_kind

VARIABILITY_METRICS: tuple[str, ...] = (
    "sd_accuracy",
    "sd_cross_entropy",
    "disagreement",
    "correlation",
    "ensemble_gain",
)


class VariabilityClaim(ClaimBase):
    """Run-to-run variability of model sets, measured on their stored test predictions
    (``restudy.stats.variability.variability``), compared with a reference set or with zero.

    ``comparable``: every metric of every group lies within ``band`` × the reference's value (its
    bootstrap CI inside the band: reproduced; outside: not reproduced). ``lower``: every metric of
    every group shows less variability than the reference. ``zero``: every metric shows no
    variability at all (bit-identical models)."""

    kind: Literal["variability"]
    groups: list[ModelSet] = Field(min_length=1)
    reference: ModelSet | None = None
    relation: Literal["comparable", "lower", "zero"]
    metrics: list[Literal["sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"]] = list(
        VARIABILITY_METRICS
    )
    band: tuple[float, float] = (0.5, 2.0)
    band_reason: str = Field("", description="why this band (shown in the report)")
    mainly_in: list[Literal["sd_accuracy", "sd_cross_entropy", "disagreement", "correlation", "ensemble_gain"]] = Field(
        [],
        description="with relation lower: the reduction shows mainly in these metrics ('mainly in model "
        "diversity'): they must be reduced, and by more than the claim's other metrics",
    )

    @field_validator("band")
    @classmethod
    def _band_around_one(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= 1 <= v[1]:
            raise ValueError(f"band must be [low, high] with 0 < low <= 1 <= high; got {list(v)}")
        return v

    @model_validator(mode="after")
    def _needs_reference(self) -> VariabilityClaim:
        if self.relation != "zero" and self.reference is None:
            raise ValueError(f"relation '{self.relation}' needs a 'reference' model set")
        if self.mainly_in:
            rest = [m for m in self.metrics if m not in self.mainly_in]
            if self.relation != "lower":
                raise ValueError(f"mainly_in is read only with relation lower (this claim says {self.relation!r})")
            if not set(self.mainly_in) <= set(self.metrics) or not rest:
                raise ValueError(
                    f"mainly_in {self.mainly_in} must be some of the claim's metrics {self.metrics}, not all: "
                    "'mainly' compares them with the others"
                )
        return self

    def selectors(self) -> list[tuple[Loc, Selector]]:
        out: list[tuple[Loc, Selector]] = [(("groups", i), g.selector()) for i, g in enumerate(self.groups)]
        return out + ([(("reference",), self.reference.selector())] if self.reference else [])


# --------------------------------------------------------------------------------------------
# the evaluator
# --------------------------------------------------------------------------------------------


def _zero_group(claim: VariabilityClaim, data: SetData) -> dict[str, Any]:
    """One group of a ``zero`` claim: exact values, no statistics."""
    base = {"group": data.name, "n_models": data.n_models, "missing": len(data.missing), "stacked": len(data.stacked)}
    if data.why:
        return {**base, "verdict": NOT_EVALUATED, "sentence": f"{data.name}: {data.why}"}
    if data.stacked:
        return {
            **base,
            "values": {m: data.values[m] for m in claim.metrics},
            "verdict": INCONCLUSIVE,
            "sentence": (
                f"{data.name}: {len(data.stacked)} of its {data.n_models} models were trained as slices of one "
                "stacked model: their identity says nothing about separately trained models "
                "(train them one by one, e.g. with a setting the stacked path does not support)"
            ),
        }
    values = {m: data.values[m] for m in claim.metrics}
    off = [f"{m} = {fmt(v, 4)}" for m, v in values.items() if not no_variability(m, v)]
    verdict = NOT_REPRODUCED if off else REPRODUCED
    sentence = f"{data.name}: {data.n_models} models; " + (
        f"variability found: {', '.join(off)}"
        if off
        else "every metric shows exactly no variability (bit-identical predictions)"
    )
    return {**base, "values": values, "verdict": verdict, "sentence": sentence}


def _band_verdict(low: float, high: float, band: tuple[float, float]) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return INCONCLUSIVE
    if band[0] <= low and high <= band[1]:
        return REPRODUCED
    if high < band[0] or low > band[1]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _ratio_one(
    claim: VariabilityClaim,
    metric: str,
    g: SetData,
    ref: SetData,
    draws: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    confidence: float,
    jack: list[tuple[dict[str, Any], dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """r = V_group/V_reference for one metric with its bootstrap CI and verdict."""
    vg = metrics.variability_value(metric, g.values[metric])
    vr = metrics.variability_value(metric, ref.values[metric])
    base = {
        "group": g.name,
        "metric": metric,
        "value_group": g.values[metric],
        "value_reference": ref.values[metric],
        "v_group": vg,
        "v_reference": vr,
    }
    if not vr > 0:
        return {
            **base,
            "ratio": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "verdict": NOT_EVALUATED,
            "models_needed": None,
            "sentence": f"{metric}: the reference shows no variability (V = {fmt(vr, 4)}): the ratio is undefined",
        }
    ratio, r_draws, jk = ratio_draws(metric, g, ref, draws, jack)
    low, high = bca(ratio, r_draws, jk, confidence, min(g.n_models, ref.n_models))
    if claim.relation == "lower":
        verdict = directional_verdict(low - 1.0, high - 1.0, claimed_positive=False)
        targets: Sequence[float] = (1.0,)
    else:
        verdict = _band_verdict(low, high, claim.band)
        targets = claim.band
    needed = (
        models_needed(ratio, low, high, targets, max(g.n_models, ref.n_models)) if verdict == INCONCLUSIVE else None
    )
    sentence = (
        f"{metric}: r = {fmt(ratio)} ({pct(confidence)} CI [{fmt(low)}, {fmt(high)}]; V {fmt(vg, 4)} vs {fmt(vr, 4)})"
    )
    return {
        **base,
        "ratio": ratio,
        "ci_low": low,
        "ci_high": high,
        "verdict": verdict,
        "models_needed": needed,
        "sentence": sentence,
    }


def _reduction_evidence(g: SetData, ref: SetData) -> dict[str, Any]:
    """Variability reduction % of a group against the reference, both formulas, labelled."""
    red = metrics.reduction_percent(g.values, ref.values)
    return {
        "original": red["original"],
        "recalculated": red["recalculated"],
        "per_metric": red["per_metric"],
        "labels": {"original": "original paper's formula", "recalculated": "reproduction's recalculation"},
        "definitions": red["labels"],
    }


def _group_sentence(
    claim: VariabilityClaim, g: SetData, comps: list[dict[str, Any]], reduction: dict[str, Any] | None
) -> str:
    ok = sum(c["verdict"] == REPRODUCED for c in comps)
    ratios = [c["ratio"] for c in comps if math.isfinite(c["ratio"])]
    span = f" (r {fmt(min(ratios))}–{fmt(max(ratios))})" if ratios else ""
    if claim.relation == "lower":
        head = f"{g.name}: CI of r below 1 in {ok}/{len(comps)} metrics{span}"
    else:
        head = f"{g.name}: CI of r inside [{claim.band[0]:g}, {claim.band[1]:g}] in {ok}/{len(comps)} metrics{span}"
    bad = [c["sentence"] for c in comps if c["verdict"] == NOT_REPRODUCED]
    if bad:
        head += "; against: " + "; ".join(bad)
    open_ = [c["metric"] for c in comps if c["verdict"] in (INCONCLUSIVE, NOT_EVALUATED)]
    if open_:
        head += f"; undecided: {', '.join(open_)}"
    if reduction is not None:
        head += (
            f"; reduction {fmt(reduction['original'], 1)}% (original paper's formula) / "
            f"{fmt(reduction['recalculated'], 1)}% (reproduction's recalculation)"
        )
    return head


def _ratio_group(claim: VariabilityClaim, g: SetData, ref: SetData, confidence: float) -> dict[str, Any]:
    """One group of a ``comparable`` or ``lower`` claim against the reference."""
    base = {"group": g.name, "n_models": g.n_models, "missing": len(g.missing), "paired_with_reference": paired(g, ref)}
    if g.why or ref.why:
        why = f"{g.name}: {g.why}" if g.why else f"reference {ref.name}: {ref.why}"
        return {**base, "verdict": NOT_EVALUATED, "comparisons": [], "sentence": why}
    draws = joint_draws(g, ref)
    jack = joint_jackknife(g, ref)
    comps = [_ratio_one(claim, m, g, ref, draws, confidence, jack) for m in claim.metrics]
    reduction = _reduction_evidence(g, ref) if claim.relation == "lower" else None
    verdict = combine([c["verdict"] for c in comps])
    needed = [c["models_needed"] for c in comps if c.get("models_needed")]
    return {
        **base,
        "verdict": verdict,
        "comparisons": comps,
        "reduction": reduction,
        "models_needed": max(needed) if needed and verdict == INCONCLUSIVE else None,
        "sentence": _group_sentence(claim, g, comps, reduction),
    }


def _set_evidence(data: SetData) -> dict[str, Any]:
    return {
        "name": data.name,
        "n_runs": data.n_runs,
        "n_models": data.n_models,
        "missing": data.missing,
        "nonfinite": data.nonfinite,
        "diverged": data.diverged,
        "stacked": data.stacked,
        "why": data.why,
        "values": data.values,
        "mean_accuracy": data.mean_accuracy,
    }


def _variability_summary(
    claim: VariabilityClaim, groups: list[dict[str, Any]], verdict: str, needed: int | None
) -> str:
    summary = "; ".join(g["sentence"] for g in groups)
    if verdict == INCONCLUSIVE and claim.relation != "zero":
        unbounded = any(
            c.get("ci_high") is None or not math.isfinite(c["ci_high"])
            for g in groups
            for c in g.get("comparisons", [])
            if c["verdict"] == INCONCLUSIVE
        )
        summary += (
            f". To decide: about {needed} models per set (estimate: CI width ∝ 1/√M at the observed ratios)"
            if needed
            else ". Some intervals are unbounded with this few models: more models are needed"
            if unbounded
            else ". No model count is likely to decide at the observed ratios"
        )
    return summary


def evaluate(claim: VariabilityClaim, ctx: Any) -> Any:
    """Measures every model set and judges each group against the reference (or zero)."""
    groups = [ctx.model_set(g) for g in claim.groups]
    ref = ctx.model_set(claim.reference) if claim.reference is not None else None
    k = len(groups) * len(claim.metrics)
    confidence = 1.0 - 2.0 * claim.alpha / k
    if claim.relation == "zero":
        parts = [_zero_group(claim, g) for g in groups]
    else:
        parts = [_ratio_group(claim, g, ref, confidence) for g in groups]  # type: ignore[arg-type]
    if claim.mainly_in:
        for p, g in zip(parts, groups):
            if p["verdict"] == NOT_EVALUATED:
                continue
            alpha = claim.alpha / len(groups)
            p["mainly"] = mainly_test(claim.metrics, claim.mainly_in, g, ref, alpha)  # type: ignore[arg-type]
            p["verdict"] = p["mainly"]["verdict"]
            p["models_needed"] = None
            p["sentence"] += "; " + p["mainly"]["sentence"]
    verdict = combine([p["verdict"] for p in parts])
    needed = _max_models(parts) if verdict == INCONCLUSIVE else None
    evidence = {
        "relation": claim.relation,
        "metrics": list(claim.metrics),
        "band": list(claim.band),
        "confidence": confidence,
        "correction": f"Bonferroni over {len(groups)} group(s) × {len(claim.metrics)} metric(s) = {k}",
        "band_reason": claim.band_reason,
        "resamples": VAR_RESAMPLES,
        "groups": parts,
        "sets": [_set_evidence(g) for g in groups] + ([_set_evidence(ref)] if ref else []),
        "reference": ref.name if ref else None,
    }
    return ctx.result(
        claim,
        verdict,
        _variability_summary(claim, parts, verdict, needed),
        evidence,
        needed,
        metric=", ".join(claim.metrics),
    )


def _max_models(parts: list[dict[str, Any]]) -> int | None:
    needed = [p["models_needed"] for p in parts if p.get("models_needed")]
    return max(needed) if needed else None


# --------------------------------------------------------------------------------------------
# figure and report lines
# --------------------------------------------------------------------------------------------


def _metric_label(metric: str) -> str:
    from ..display.tables import METRIC_LABELS

    return METRIC_LABELS.get(metric, metric)


def _ratio_panel(ax: Any, result: Any, draw: Any) -> bool:
    """Ratios r = V_group/V_reference per (group, metric) with their CIs, the band or 1 marked."""
    ev = result.evidence
    groups = [g for g in ev.get("groups", []) if g.get("comparisons")]
    metric_names = list(ev.get("metrics") or [])
    width = 0.7 / max(1, len(metric_names))
    drawn, positive = False, True
    for gi, g in enumerate(groups):
        for mi, c in enumerate(g["comparisons"]):
            x = gi + (mi - (len(metric_names) - 1) / 2) * width
            ratio = c.get("ratio")
            if ratio is None or not math.isfinite(ratio):
                continue
            lo, hi = c.get("ci_low"), c.get("ci_high")
            label = _metric_label(c["metric"]) if gi == 0 else None
            draw.errorbar(ax, x, ratio, lo, hi, draw.color(mi % 10), label)
            drawn = True
            positive = positive and ratio > 0 and (lo is None or lo > 0)
    band = ev.get("band") or [1.0, 1.0]
    if ev.get("relation") == "comparable":
        ax.axhspan(band[0], band[1], color="tab:green", alpha=0.1, label=f"band [{band[0]:g}, {band[1]:g}]")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(groups)), [g["group"] for g in groups], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(f"r = V(group) / V({ev.get('reference')})\nmean, {pct(ev.get('confidence') or 0.95)} bootstrap CI")
    if drawn and positive:  # ratios: a log axis makes r and 1/r equally far from 1
        draw.log_ratio_axis(ax)
    if drawn:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="metric", title_fontsize=7)
    return drawn


def _zero_panel(ax: Any, result: Any, draw: Any) -> bool:
    """Variability V of each group per metric (0 means none; V = 1 − correlation)."""
    ev = result.evidence
    groups = [g for g in ev.get("groups", []) if g.get("values")]
    names = list(ev.get("metrics") or [])
    width = 0.8 / max(1, len(groups))
    for gi, g in enumerate(groups):
        vals = [g["values"].get(m) for m in names]
        v = [
            (1.0 - x if m.startswith("correlation") else x) if x is not None else math.nan for m, x in zip(names, vals)
        ]
        ax.bar(
            np.arange(len(names)) + (gi - (len(groups) - 1) / 2) * width,
            v,
            width,
            color=draw.color(gi % 10),
            label=f"{g['group']} ({g['n_models']} models)",
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    if groups and all(g.get("verdict") == REPRODUCED for g in groups):
        ax.text(
            0.5,
            0.6,
            "every metric exactly 0: no variability",
            transform=ax.transAxes,
            ha="center",
            fontsize=9,
            color="tab:green",
        )
    ax.set_xticks(range(len(names)), [_metric_label(n) for n in names], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("variability V (0 = none;\n1 − corr. for correlations)")
    if groups:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return bool(groups)


def figure(claim: VariabilityClaim, result: Any, path: Path) -> Path | None:
    """Ratios with CIs against the reference (band shaded), or each group's values for ``zero``."""
    from ..display import draw

    fig, ax = draw.subplots(figsize=(8, 4.2))
    zero = result.evidence.get("relation") == "zero"
    drawn = _zero_panel(ax, result, draw) if zero else _ratio_panel(ax, result, draw)
    if not drawn:
        draw.close(fig)
        return None
    draw.title(ax, result)
    return draw.save(fig, path)


_RELATION_TEXT = {
    "zero": (
        "Relation zero: every metric must show exactly no variability (SDs 0, disagreement "
        "0, correlation 1, ensemble Δ 0) over at least 2 models; no statistics needed."
    ),
    "comparable": (
        "Relation comparable: r = V_group / V_reference (V = 1 − correlation for the "
        "correlation); reproduced when every {conf} bootstrap CI of r (over models, "
        "{resamples} resamples, log-scale, {correction}) lies inside {band}, not reproduced when "
        "one lies entirely outside."
    ),
    "lower": (
        "Relation lower: r = V_group / V_reference (V = 1 − correlation for the correlation); "
        "reproduced when every {conf} bootstrap CI of r (over models, {resamples} resamples, log-scale, "
        "{correction}) lies below 1, not reproduced when one lies entirely above 1."
    ),
}


def _sets_line(ev: dict[str, Any]) -> str:
    """The model sets in one line: ``Sets (models of usable runs): init 20, all 20``."""
    parts = []
    for s in ev.get("sets", []):
        text = f"{s['name']} {s['n_models']}" + (f" of {s['n_runs']}" if s["n_models"] != s["n_runs"] else "")
        if s.get("missing"):
            text += f" ({len(s['missing'])} without stored predictions)"
        if s.get("nonfinite"):
            text += f" ({len(s['nonfinite'])} with non-finite logits left out)"
        if s.get("diverged"):
            text += f" ({len(s['diverged'])} diverged and left out: {', '.join(s['diverged'][:3])})"
        if s.get("stacked"):
            text += f" ({len(s['stacked'])} trained as slices of one stacked model)"
        parts.append(text)
    return f"Model sets (models used): {', '.join(parts)}." if parts else ""


def render(claim: VariabilityClaim, result: Any) -> tuple[list[str], Any]:
    """How it was judged (r defined), the model sets in one line, the models that would decide;
    the ratio r per group (rows) and metric (columns), each cell marked with its verdict."""
    from ..display.tables import METRIC_LABELS, cell, table

    ev = result.evidence
    band = ev.get("band") or [0, 0]
    how = _RELATION_TEXT.get(ev.get("relation"), "").format(
        band=f"[{fmt(band[0], 2)}, {fmt(band[1], 2)}]",
        conf=pct(ev.get("confidence") or 0.95),
        resamples=ev.get("resamples"),
        correction=ev.get("correction", ""),
    )
    if any(g.get("paired_with_reference") for g in ev.get("groups", [])):
        how += " A group made of the reference's own runs is resampled jointly with it."
    lines = [how]
    if ev.get("band_reason") and ev.get("relation") == "comparable":
        lines.append(f"Why this band: {ev['band_reason']}")
    lines.append(_sets_line(ev))
    if result.seeds_needed:
        lines.append(
            f"Models per set likely to decide (estimate: CI width ∝ 1/√M at the "
            f"observed ratios): {result.seeds_needed}."
        )
    groups = [g for g in ev.get("groups", []) if g.get("comparisons")]
    metric_names = list(dict.fromkeys(c["metric"] for g in groups for c in g["comparisons"]))
    rows = []
    for g in groups:
        by_metric = {c["metric"]: c for c in g["comparisons"]}
        line = [cell(g["group"])]
        for m in metric_names:
            c = by_metric.get(m)
            if c is None:
                line.append(cell("–"))
            else:
                line.append(
                    cell(f"{fmt(c['ratio'])} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]", f"verdict {c['verdict']}")
                )
        rows.append(line)
    conf = pct(ev.get("confidence") or 0.95)
    headers = [f"group (vs {ev.get('reference')})"] + [
        f"r: {METRIC_LABELS.get(m, m)} [{conf} CI]" for m in metric_names
    ]
    return [ln for ln in lines if ln], (table(headers, rows) if rows else None)


@register_claim_kind
class Variability(ClaimKind):
    schema = VariabilityClaim
    rule = (
        "a *variability* claim compares r = V(group) / V(reference), the ratio of a run-to-run "
        "variability metric between two model sets, with bootstrap CIs over models (or requires exact zeros)"
    )
    evaluate = staticmethod(evaluate)
    figure = staticmethod(figure)
    render = staticmethod(render)
