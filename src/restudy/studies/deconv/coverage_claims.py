"""Claim kinds and a run metric for the [Re] Network Deconvolution report's own findings (re2025),
registered on import:

* ``gap_contrast``: one network's paired gap between two levels of an axis (the ND − BN training
  time, re2025 §5.3: "DPN-92 ... the biggest difference between them", "the shortest time [difference]
  is seen in the EfficientNet") is larger, or smaller, than each other network's. Per seed and cell
  (the levels of the axes the selectors leave free, the contrasted axis excluded), g = gap(a) −
  gap(b) (b − a with ``larger: false``); each cell is one one-sided t-test over seeds, the cells
  and the b's combined by the ``quantifier`` (:mod:`restudy.compare.quantifiers`); a b refuting
  refutes the claim.
* ``gap_vs_reported``: the reproduction's gains over the original are similar for both methods
  (re2025 §6: "both network deconvolution (ND) and batch normalization (BN) baselines exhibited
  similar gains"). (ND_run − ND_orig) − (BN_run − BN_orig) = (ND − BN)_run − (ND − BN)_orig: per pair
  of runs the paired gap a − b less the gap the reported table prints for that cell. With
  ``quantifier: mean`` each seed's differences are averaged over the cells first (n counts seeds);
  the (1 − 2α) t-interval inside ± ``band`` is reproduced (two one-sided tests), wholly outside
  not reproduced. Only runs at the tables' scale are compared (other scales: not evaluated).
* ``seed_spread``: "the results of each run slightly vary" (re2025 §6): per selected variant, the
  seed-to-seed SD of the metric with its chi-square (1 − 2α′) interval must lie at or below
  ``value`` (reproduced); a lower bound above it refutes the cell.
* ``squared_deviation_range``: the [Re] report's averaged squared deviation (its §5.1 rule: the
  mean over runs of ((reproduced − reported) × unit)², the unit of the table's
  ``squared_deviation`` rule) lies below ``below`` in every cell of the named tables: per cell a
  one-sided t-interval of the mean of the runs' squared deviations.
* run metric ``patch_correlation``: "network deconvolution ... removing pixel-wise and channel-wise
  correlations in the input data" (re2025 §1, the original's Figure 3 and Algorithm 1). After
  training, in evaluation mode on the first 512 test examples, for every ungrouped convolution the
  mean |off-diagonal entry| of the correlation matrix of the k²·C patch features its kernel is
  applied to: the raw patches for a ``Conv2d`` (BN comes after it), the whitened patches
  D(p − μ) (running μ and D) for a ``FastDeconv`` (whitening blocks of B < C channels: the k²·B
  features of one block, the ones its whitening acts on); averaged over the layers (``patch_corr``,
  0: no correlation, 1: every feature a copy of every other).
* run metric ``peak_gpu_mem``: the GPU memory the run's process peaked at (GiB,
  ``torch.cuda.max_memory_allocated``; the peak is reset after reading, so the next run in the
  same worker starts from zero); NaN without a GPU (re2025 §6.2: "We had to transfer from 16GB GPU
  (NVIDIA V100) to 80 GB GPU").
"""

from __future__ import annotations

import math
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
    cell_alphas,
    combine_cells,
    counts_text,
    fmt,
    register,
    register_claim_kind,
    summarize,
)

__all__ = ["GapContrast", "GapVsReported", "SeedSpread", "SquaredDeviationRange", "patch_correlation", "peak_gpu_mem"]


def _combine(verdicts: list[str]) -> str:
    """Comparisons that must all hold: any refuted refutes, all reproduced reproduce."""
    if not verdicts:
        return NOT_EVALUATED
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return REPRODUCED if all(v == REPRODUCED for v in verdicts) else INCONCLUSIVE


def _one_sided(values: list[float], alpha: float) -> tuple[bool, bool, Any]:
    """Whether the mean of ``values`` is shown above 0 (pass) or below 0 (refute) at ``alpha``."""
    s = summarize(values, 1 - 2 * alpha)
    if s.n < 2 or not math.isfinite(s.ci_low):
        return False, False, s
    return s.ci_low > 0, s.ci_high < 0, s


# --------------------------------------------------------------------------- gap_contrast


class GapContrast(Quantified, ClaimBase):
    """``a``'s paired gap ``high − low`` on axis ``over`` is larger (or, with ``larger: false``,
    smaller) than each ``b``'s, per cell."""

    kind: Literal["gap_contrast"]
    a: Selector
    b: list[Selector] = Field(min_length=1)
    over: str = Field(description="the axis whose two levels make the gap, e.g. norm")
    high: str = Field(description="the level the gap starts from, e.g. nd")
    low: str = Field(description="the level subtracted, e.g. bn")
    larger: bool = True

    def selectors(self) -> list[tuple[Any, Selector]]:
        return [(("a",), self.a), *[(("b", i), s) for i, s in enumerate(self.b)]]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        return [
            ((name,), f"the contrasted axis {self.over!r} may not be pinned by a selector")
            for name, s in self.selectors()
            if self.over in s.where
        ]


def _gaps(claim: GapContrast, ctx: Any, sel: Selector) -> dict[tuple[Any, ...], float]:
    """(seed index, free-axis levels) → the paired gap high − low of ``sel``'s runs."""
    hi = Selector(experiment=sel.experiment, where={**sel.where, claim.over: claim.high})
    lo = Selector(experiment=sel.experiment, where={**sel.where, claim.over: claim.low})
    pairs, info = ctx.pair(ctx.runs(hi), ctx.runs(lo), hi, lo)
    free = [ax for ax in info.get("by", []) if ax != "seed_index"]
    out: dict[tuple[Any, ...], float] = {}
    for x, y in pairs:
        g = ctx.value(x, claim.metric) - ctx.value(y, claim.metric)
        if math.isfinite(g):
            out[(int(x["seed_index"]), tuple(sorted((ax, x["variant"][ax]) for ax in free)))] = g
    return out


def _strip(key: tuple[Any, ...], pinned: set[str]) -> tuple[Any, ...]:
    return (key[0], tuple((ax, v) for ax, v in key[1] if ax not in pinned))


@register_claim_kind
class GapContrastKind(ClaimKind):
    schema = GapContrast
    rule = (
        "a *gap contrast* claim holds when, per cell, the one-sided t-interval over seeds of gap(a) − gap(b) "
        "(each gap the paired difference between the contrasted axis' two levels) lies above 0 for every b, "
        "the cells combined by the quantifier"
    )

    @staticmethod
    def evaluate(claim: GapContrast, ctx: Any) -> Any:
        pinned = set(claim.a.where) | {ax for s in claim.b for ax in s.where}
        ga = {_strip(k, pinned): v for k, v in _gaps(claim, ctx, claim.a).items()}
        sign = 1.0 if claim.larger else -1.0
        comparisons, verdicts = [], []
        for b in claim.b:
            gb = {_strip(k, pinned): v for k, v in _gaps(claim, ctx, b).items()}
            cells: dict[tuple[Any, ...], dict[int, float]] = {}
            for key in set(ga) & set(gb):
                cells.setdefault(key[1], {})[key[0]] = sign * (ga[key] - gb[key])
            cells = {k: v for k, v in cells.items() if len(v) >= 2}
            if not cells:
                continue
            a_pass, a_ref = cell_alphas(claim.quantifier, len(cells), claim.alpha, len(claim.b))
            passed, refuted, rows = [], [], []
            for cell, by_seed in sorted(cells.items()):
                vals = [by_seed[s] for s in sorted(by_seed)]
                p, _, s = _one_sided(vals, a_pass)
                _, r, _ = _one_sided(vals, a_ref)
                passed.append(p)
                refuted.append(r)
                rows.append({"cell": ", ".join(f"{ax}={v}" for ax, v in cell) or "all", "mean": s.mean, "n": s.n})
            v = combine_cells(claim.quantifier, passed, refuted, claim.share)
            verdicts.append(v)
            comparisons.append(
                {"b": b.label(), "verdict": v, "cells": rows, "counts": counts_text(claim.quantifier, passed, refuted)}
            )
        if not comparisons:
            return ctx.result(claim, NOT_EVALUATED, "no cell with paired gaps of a and b from ≥ 2 seeds", {})
        verdict = _combine(verdicts)
        word = "larger" if claim.larger else "smaller"
        summary = (
            f"{claim.a.label()}'s gap {claim.over} {claim.high} − {claim.low} in {claim.metric} is {word} than each of "
            f"{len(comparisons)} others': "
            + "; ".join(
                f"{x['b']}: {x['verdict'].replace('_', ' ')} ({x['counts']}, mean difference "
                + ", ".join(fmt(r["mean"]) for r in x["cells"])
                + ")"
                for x in comparisons
            )
        )
        return ctx.result(claim, verdict, summary, {"comparisons": comparisons, "larger": claim.larger})


# --------------------------------------------------------------------------- gap_vs_reported


class GapVsReported(Quantified, ClaimBase):
    """The paired gap ``a − b`` equals the gap the reported ``tables`` print for the same cell,
    within ± ``band`` (metric units)."""

    kind: Literal["gap_vs_reported"]
    a: Selector
    b: Selector
    tables: list[str] = Field(min_length=1)
    band: float = Field(gt=0)
    band_reason: str = Field(min_length=1)
    quantifier: Literal["mean", "every"] = "mean"  # type: ignore[assignment]

    def selectors(self) -> list[tuple[Any, Selector]]:
        return [(("a",), self.a), (("b",), self.b)]

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        ids = {t.id: t for t in study.tables}
        out: list[tuple[Any, ...]] = []
        for i, t in enumerate(self.tables):
            if t not in ids:
                out.append((("tables", i), f"no table {t!r} in the study's tables"))
            elif getattr(ids[t].layout, "column_axis", None) is None:
                out.append((("tables", i), f"table {t!r} has no row/column layout"))
        return out


def _reported_gap(claim: GapVsReported, ctx: Any, variant: dict[str, str]) -> float | None:
    for tid in claim.tables:
        t = ctx.study.table(tid)
        lay = t.layout
        if lay.experiment != claim.a.experiment or t.scale != ctx.scale:
            continue
        if any(variant.get(k) != str(v) for k, v in lay.where.items()):
            continue
        row = variant.get(lay.row_axis)
        va = t.value(row, str(claim.a.where.get(lay.column_axis)))
        vb = t.value(row, str(claim.b.where.get(lay.column_axis)))
        if va is not None and vb is not None:
            return va.value - vb.value
    return None


@register_claim_kind
class GapVsReportedKind(ClaimKind):
    schema = GapVsReported
    rule = (
        "a *gap vs reported* claim holds when the (1 − 2α) t-interval over seeds of the paired gap a − b less "
        "the reported gap of the same cell (each seed's cells averaged for mean) lies inside ± band"
    )

    @staticmethod
    def evaluate(claim: GapVsReported, ctx: Any) -> Any:
        pairs, info = ctx.pair(ctx.runs(claim.a), ctx.runs(claim.b), claim.a, claim.b)
        free = [ax for ax in info.get("by", []) if ax != "seed_index"]
        cells: dict[tuple[str, ...], dict[int, list[float]]] = {}
        for x, y in pairs:
            rep = _reported_gap(claim, ctx, x["variant"])
            d = ctx.value(x, claim.metric) - ctx.value(y, claim.metric)
            if rep is None or not math.isfinite(d):
                continue
            key = tuple(str(x["variant"].get(ax)) for ax in free)
            cells.setdefault(key, {}).setdefault(int(x["seed_index"]), []).append(d - rep)
        if not cells:
            why = f"no pair of runs at a cell the tables report at this scale ({ctx.scale})"
            return ctx.result(claim, NOT_EVALUATED, why, {"pairing": info})
        if claim.quantifier == "mean":
            seeds = sorted(set.intersection(*(set(c) for c in cells.values())))
            groups = {("mean over cells",): {s: [float(np.mean([cells[k][s][0] for k in cells]))] for s in seeds}}
        else:
            groups = cells
        a_pass, a_ref = cell_alphas(claim.quantifier, len(groups), claim.alpha)
        passed, refuted, rows = [], [], []
        for key, by_seed in sorted(groups.items()):
            vals = [float(np.mean(v)) for _, v in sorted(by_seed.items())]
            s, strict = summarize(vals, 1 - 2 * a_pass), summarize(vals, 1 - 2 * a_ref)
            ok = s.n >= 2 and -claim.band <= s.ci_low and s.ci_high <= claim.band
            bad = strict.n >= 2 and (strict.ci_low > claim.band or strict.ci_high < -claim.band)
            passed.append(ok)
            refuted.append(bad)
            rows.append({"cell": ", ".join(key), "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n})
        verdict = combine_cells(claim.quantifier, passed, refuted)
        summary = (
            f"({claim.a.label()} − {claim.b.label()}) − reported gap in {claim.metric}: "
            + "; ".join(
                f"{r['cell']}: {fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] (n={r['n']})" for r in rows
            )
            + f" against ± {fmt(claim.band)} ({counts_text(claim.quantifier, passed, refuted)}; {len(cells)} cells)"
        )
        return ctx.result(claim, verdict, summary, {"cells": rows, "band": claim.band, "pairing": info})


# --------------------------------------------------------------------------- seed_spread


class SeedSpread(Quantified, ClaimBase):
    """The seed-to-seed SD of the metric in each selected variant is at most ``value``."""

    kind: Literal["seed_spread"]
    select: Selector
    value: float = Field(gt=0)
    value_reason: str = Field(min_length=1)

    def selectors(self) -> list[tuple[Any, Selector]]:
        return [(("select",), self.select)]


def _chi2_cdf(x: float, k: int) -> float:
    """P(χ²_k ≤ x): the regularized lower incomplete gamma P(k/2, x/2), by its power series."""
    if x <= 0:
        return 0.0
    a, z = k / 2.0, x / 2.0
    term = total = 1.0 / a
    n = 1
    while term > 1e-15 * total and n < 10000:
        term *= z / (a + n)
        total += term
        n += 1
    return min(1.0, math.exp(a * math.log(z) - z - math.lgamma(a)) * total)


def chi2_ppf(q: float, k: int) -> float:
    """The q-quantile of χ²_k (bisection on :func:`_chi2_cdf`)."""
    lo, hi = 0.0, max(1.0, 10.0 * k)
    while _chi2_cdf(hi, k) < q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if _chi2_cdf(mid, k) < q else (lo, mid)
    return (lo + hi) / 2.0


def sd_interval(values: list[float], alpha: float) -> tuple[float, float, float]:
    """The sample SD and its two-sided (1 − 2α) chi-square interval."""
    n = len(values)
    s = float(np.std(values, ddof=1))
    return s, s * math.sqrt((n - 1) / chi2_ppf(1 - alpha, n - 1)), s * math.sqrt((n - 1) / chi2_ppf(alpha, n - 1))


@register_claim_kind
class SeedSpreadKind(ClaimKind):
    schema = SeedSpread
    rule = (
        "a *seed spread* claim holds when, in each selected variant, the chi-square upper bound of the "
        "seed-to-seed SD lies at or below the value (its lower bound above the value refutes)"
    )

    @staticmethod
    def evaluate(claim: SeedSpread, ctx: Any) -> Any:
        groups: dict[str, dict[int, float]] = {}
        for r in ctx.runs(claim.select):
            v = ctx.value(r, claim.metric)
            if math.isfinite(v):
                groups.setdefault(r.get("variant_id") or str(r["variant"]), {})[int(r["seed_index"])] = v
        groups = {k: g for k, g in groups.items() if len(g) >= 2}
        if not groups:
            return ctx.result(claim, NOT_EVALUATED, "no variant with runs of ≥ 2 seeds", {})
        a_pass, a_ref = cell_alphas(claim.quantifier, len(groups), claim.alpha)
        passed, refuted, rows = [], [], []
        for k, g in sorted(groups.items()):
            vals = list(g.values())
            sd, lo, hi = sd_interval(vals, a_pass)
            _, lo_strict, _ = sd_interval(vals, a_ref)
            passed.append(hi <= claim.value)
            refuted.append(lo_strict > claim.value)
            rows.append({"variant": k, "sd": sd, "ci_low": lo, "ci_high": hi, "n": len(vals)})
        verdict = combine_cells(claim.quantifier, passed, refuted, claim.share)
        worst = max(rows, key=lambda r: r["sd"])
        summary = (
            f"seed-to-seed SD of {claim.metric} against ≤ {fmt(claim.value)}: "
            f"{counts_text(claim.quantifier, passed, refuted, claim.share, 'variants')}; largest SD "
            f"{fmt(worst['sd'])} ({worst['variant']}, CI [{fmt(worst['ci_low'])}, {fmt(worst['ci_high'])}], "
            f"n={worst['n']})"
        )
        return ctx.result(claim, verdict, summary, {"variants": rows, "value": claim.value})


# --------------------------------------------------------------------------- squared_deviation_range


class SquaredDeviationRange(Quantified, ClaimBase):
    """The [Re] report's averaged squared deviation is below ``below`` in every cell of ``tables``."""

    kind: Literal["squared_deviation_range"]
    tables: list[str] = Field(min_length=1)
    below: float = Field(gt=0)
    below_reason: str = Field(min_length=1)

    def problems(self, study: Any) -> list[tuple[Any, ...]]:
        ids = {t.id: t for t in study.tables}
        return [
            (("tables", i), f"table {t!r} is not in the study's tables or has no squared_deviation rule")
            for i, t in enumerate(self.tables)
            if t not in ids or ids[t].squared_deviation is None
        ]


@register_claim_kind
class SquaredDeviationRangeKind(ClaimKind):
    schema = SquaredDeviationRange
    rule = (
        "a *squared deviation range* claim holds when, in each cell, the one-sided upper confidence bound of "
        "the runs' mean squared deviation from the reported value (in the table's unit) lies below the bound"
    )

    @staticmethod
    def evaluate(claim: SquaredDeviationRange, ctx: Any) -> Any:
        cells: list[tuple[str, list[float]]] = []
        for tid in claim.tables:
            t = ctx.study.table(tid)
            if t.scale != ctx.scale:
                continue
            lay, unit = t.layout, t.squared_deviation.unit
            for row in t.rows:
                for col in t.columns:
                    rep = t.value(row, col)
                    if rep is None:
                        continue
                    sel = Selector(
                        experiment=lay.experiment, where={**lay.where, lay.row_axis: row, lay.column_axis: col}
                    )
                    vals = [ctx.value(r, str(t.metric)) for r in ctx.runs(sel)]
                    sq = [((v - rep.value) * unit) ** 2 for v in vals if math.isfinite(v)]
                    if len(sq) >= 2:
                        cells.append((f"{tid} {row}/{col}", sq))
        if not cells:
            return ctx.result(claim, NOT_EVALUATED, f"no reported cell at this scale ({ctx.scale}) has ≥ 2 runs", {})
        a_pass, a_ref = cell_alphas(claim.quantifier, len(cells), claim.alpha)
        passed, refuted, rows = [], [], []
        for name, sq in cells:
            s, strict = summarize(sq, 1 - 2 * a_pass), summarize(sq, 1 - 2 * a_ref)
            passed.append(s.ci_high < claim.below)
            refuted.append(strict.ci_low >= claim.below)
            rows.append({"cell": name, "mean": s.mean, "ci_high": s.ci_high, "n": s.n})
        verdict = combine_cells(claim.quantifier, passed, refuted, claim.share)
        worst = max(rows, key=lambda r: r["mean"])
        summary = (
            f"averaged squared deviation below {fmt(claim.below)}: {counts_text(claim.quantifier, passed, refuted)}; "
            f"largest {fmt(worst['mean'], 3)} ({worst['cell']}, upper bound {fmt(worst['ci_high'], 3)}, n={worst['n']})"
        )
        return ctx.result(claim, verdict, summary, {"cells": rows, "below": claim.below})


# --------------------------------------------------------------------------- patch_correlation


def _mean_abs_offdiag(X: Any) -> float:
    """Mean |off-diagonal| of the correlation matrix of the columns of X (rows are samples);
    constant columns (zero padding) are left out."""
    import torch

    X = X.double()
    X = X - X.mean(0, keepdim=True)
    sd = X.pow(2).mean(0).sqrt()
    X = X[:, sd > 1e-8] / sd[sd > 1e-8]
    f = X.shape[1]
    if f < 2:
        return math.nan
    corr = (X.T @ X) / X.shape[0]
    off = corr - torch.diag(torch.diag(corr))
    return float(off.abs().sum() / (f * (f - 1)))


@register("run_metric", "patch_correlation")
def patch_correlation(*, model: Any, x_test: Any, **_: Any) -> dict[str, float]:
    """``patch_corr``: the mean |off-diagonal correlation| of the patch features each ungrouped
    convolution's kernel is applied to (whitened ones for deconvolution), averaged over layers."""
    import torch
    from torch.nn import functional as F

    from restudy.api import FastDeconv

    values: list[float] = []

    def hook(module: Any, inputs: Any) -> None:
        x = inputs[0]
        if isinstance(module, FastDeconv):
            X = module.sample_patches(x)
            nf = module.num_features
            X = X.reshape(X.shape[0], nf, -1).transpose(1, 2).reshape(-1, nf)
            X = (X - module.running_mean) @ module.running_deconv.T
        else:
            cols = F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
            X = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        values.append(_mean_abs_offdiag(X[:20000]))

    device = next(model.parameters()).device
    handles = [
        m.register_forward_pre_hook(hook)
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d) and m.groups == 1 and m.kernel_size != (1, 1)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.as_tensor(x_test[:512]).to(device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    finite = [v for v in values if math.isfinite(v)]
    return {"patch_corr": float(np.mean(finite)) if finite else math.nan}


patch_correlation.metrics = ("patch_corr",)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- peak_gpu_mem


@register("run_metric", "peak_gpu_mem")
def peak_gpu_mem(**_: Any) -> dict[str, float]:
    """The process's peak GPU memory since the last reset, in GiB (NaN without a GPU); then resets it."""
    import torch

    if not torch.cuda.is_available():
        return {"peak_gpu_mem_gb": math.nan}
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return {"peak_gpu_mem_gb": float(peak)}


peak_gpu_mem.metrics = ("peak_gpu_mem_gb",)  # type: ignore[attr-defined]
