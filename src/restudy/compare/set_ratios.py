"""Ratios of run-to-run variability between two model sets (r = V_group / V_reference) with
their bootstrap draws, the model count that would likely decide one, and the "mainly in" test
that compares the reduction of some metrics with that of the others (Summers & Dinneen 2021's
metrics; "the change is mainly visible in model diversity", the ML Reproducibility Challenge 2021
report, §4).

Imports stats, display and the sibling modules modelsets and verdicts (numpy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..display.numbers import fmt, pct
from ..stats import variability as metrics
from .modelsets import SetData, bca, joint_draws, joint_jackknife
from .verdicts import INCONCLUSIVE, NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED

MAX_MODELS = 100000
"""Model counts above this are reported as 'no count would likely decide'."""


def models_needed(ratio: float, low: float, high: float, targets: Sequence[float], n: int) -> int | None:
    """Models per set for the CI to clear the nearest decisive edge, assuming its width shrinks
    as 1/√M around the observed ratio (an estimate, not a power analysis)."""
    if not all(math.isfinite(x) for x in (ratio, low, high)):
        return None
    shrink = []
    for t in targets:
        if low < t <= ratio and ratio > low:
            shrink.append((ratio - t) / (ratio - low))
        elif ratio <= t < high and high > ratio:
            shrink.append((t - ratio) / (high - ratio))
    factor = min(shrink) if shrink else 0.0
    if factor <= 0.0:
        return None
    needed = math.ceil(n / factor**2)
    return needed if needed <= MAX_MODELS else None


def ratio_draws(
    metric: str,
    g: SetData,
    ref: SetData,
    draws: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    jack: list[tuple[dict[str, Any], dict[str, Any]]] | None,
) -> tuple[float, np.ndarray, list[np.ndarray]]:
    """r = V_group/V_reference of one metric, its bootstrap draws and its jackknife values."""
    vg = metrics.variability_value(metric, g.values[metric])
    vr = metrics.variability_value(metric, ref.values[metric])
    with np.errstate(invalid="ignore", divide="ignore"):
        r_draws = metrics.variability_value(metric, draws[0][metric]) / metrics.variability_value(
            metric, draws[1][metric]
        )
        jk = [
            np.atleast_1d(
                np.asarray(metrics.variability_value(metric, a[metric]), dtype=float)
                / np.asarray(metrics.variability_value(metric, b[metric]), dtype=float)
            )
            for a, b in (jack or [])
        ]
        return vg / vr, np.asarray(r_draws, dtype=float), jk


def geometric_mean(parts: Sequence[Any]) -> Any:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp(np.mean([np.log(np.asarray(p, dtype=float)) for p in parts], axis=0))


def mainly_test(
    metrics_: Sequence[str], mainly_in: Sequence[str], g: SetData, ref: SetData, alpha: float
) -> dict[str, Any]:
    """'The reduction shows mainly in M': the geometric mean of r over M lies below 1, and below
    the geometric mean of r over the claim's other metrics (their ratio R < 1: M's log-reduction
    is the larger share of the two). Each is a one-sided bootstrap test; both must pass at α (an
    intersection–union test), and either refuting at α/2 refutes."""
    draws, jack = joint_draws(g, ref), joint_jackknife(g, ref)
    rest = [m for m in metrics_ if m not in mainly_in]
    per = {m: ratio_draws(m, g, ref, draws, jack) for m in metrics_}
    if not all(math.isfinite(per[m][0]) and per[m][0] > 0 for m in metrics_):
        bad = [m for m in metrics_ if not (math.isfinite(per[m][0]) and per[m][0] > 0)]
        return {"verdict": NOT_EVALUATED, "sentence": f"no positive ratio for {', '.join(bad)}: 'mainly' is undefined"}

    def combined(ms: list[str], other: list[str] | None = None) -> tuple[float, np.ndarray, list[np.ndarray]]:
        point = geometric_mean([per[m][0] for m in ms])
        d = geometric_mean([per[m][1] for m in ms])
        j = [geometric_mean([per[m][2][i] for m in ms]) for i in range(len(per[ms[0]][2]))]
        if other:
            op, od, oj = combined(other)
            point, d, j = point / op, d / od, [a / b for a, b in zip(j, oj)]
        return float(point), d, j

    n = min(g.n_models, ref.n_models)
    tests = {"mainly": combined(list(mainly_in)), "versus_rest": combined(list(mainly_in), rest)}
    out: dict[str, Any] = {"metrics": list(mainly_in), "rest": rest}
    passed, refuted = [], []
    for name, (point, d, j) in tests.items():
        lo, hi = bca(point, d, j, 1.0 - 2.0 * alpha, n)
        rlo, _ = bca(point, d, j, 1.0 - alpha, n)
        passed.append(hi < 1.0)
        refuted.append(rlo > 1.0)
        out[name] = {"ratio": point, "ci_low": lo, "ci_high": hi, "passed": passed[-1], "refuted": refuted[-1]}
    main, rest_gm = tests["mainly"][0], geometric_mean([per[m][0] for m in rest])
    drop_main, drop_rest = -math.log(main), -math.log(float(rest_gm))
    share = drop_main / (drop_main + drop_rest) if drop_main > 0 and drop_rest > 0 else (1.0 if drop_main > 0 else 0.0)
    out["share"] = share
    verdict = REPRODUCED if all(passed) else NOT_REPRODUCED if any(refuted) else INCONCLUSIVE
    m, v = out["mainly"], out["versus_rest"]
    out["verdict"] = verdict
    out["sentence"] = (
        f"reduction mainly in {', '.join(mainly_in)}: their r {fmt(m['ratio'])} (geometric mean, "
        f"{pct(1 - 2 * alpha)} CI [{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]) against {fmt(float(rest_gm))} for "
        f"{', '.join(rest)}; ratio {fmt(v['ratio'])} (CI [{fmt(v['ci_low'])}, {fmt(v['ci_high'])}]); "
        f"{share:.0%} of the log-reduction is theirs"
    )
    return out
