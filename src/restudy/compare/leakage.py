"""The leakage guard: does a reported test number look like a training-set number (or a reported
train number like a test-set one), judged on the seeds of its cell that record both metrics.

Rule, per reported value r of a table whose metric has a train/test counterpart (``test_acc`` ↔
``train_acc``, ``test_loss`` ↔ ``train_loss``, ``test_acc_best`` → ``train_acc``), over the n
seeds of its cell with both metrics (own = the table's metric, other = its counterpart, per seed i):

- the gap gᵢ = otherᵢ − ownᵢ must differ from 0 beyond noise: its (1 − 2α) t-interval (n − 1
  df) excludes 0. Without a gap the two metrics cannot be told apart, whatever r is.
- r lies past the midpoint mᵢ = (ownᵢ + otherᵢ)/2 on the side of ``other`` beyond noise:
  with s = sign(mean g), the (1 − 2α) interval of s·(r − mean m) lies above 0 (``flagged``:
  closer to ``other`` than to ``own``) or below 0 (``clear``), with standard error
  √(sd_m²/n + se_r²) (se_r: the reported value's own, as the numeric cells estimate it).

Both one-sided tests at α = 0.05 must reject (an intersection–union test: the flag's false-alarm
rate stays ≤ α without a split). α is not divided over the cells: a flag is a warning about one
printed value, read on its own, and the report says how many flags chance alone would give. The
margin is the midpoint itself: the question is which of the two quantities the value is, and
equal distance is where neither answer is better. For accuracies the SDs are floored by the
binomial test-set SD (of the gap; half of it for the midpoint) so that seeds agreeing by
construction (same data order, one test set) never make a small distance "beyond noise".
Fewer than 2 seeds, smoke scale, or runs at another scale than the table's: ``cannot_tell``
(the numbers are shown for information).

Imports spec, storage.record, stats, display and the sibling modules verdicts, select and cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from ..display.numbers import fmt
from ..spec.reported import ReportedTable, ReportedValue, TableLayout
from ..spec.study import Study
from ..stats.decisions import equivalence
from ..stats.summary import binomial_floor_sd_percent
from ..storage.record import ACCURACY_PREFIXES
from .cells import cell_runs, reported_se, scale_note
from .select import Row, datasets, metric_value, n_test_of, usable
from .verdicts import LeakageResult, chance_sentence

ALPHA = 0.05
"""Level of each one-sided test (gap and side); see the module docstring for why it is not split."""
PARTNER: dict[str, str] = {
    "test_acc": "train_acc",
    "train_acc": "test_acc",
    "test_loss": "train_loss",
    "train_loss": "test_loss",
    # the best test accuracy over epochs (the original code's "Best Acc") against the final train
    # accuracy: near the end of training the train accuracy only grows, so its final value is its best
    "test_acc_best": "train_acc",
}
SPLIT = {m: ("training-set" if m.startswith("train_") else "test-set") for m in (*PARTNER, *PARTNER.values())}
FLAGGED = "flagged"
CLEAR = "clear"
CANNOT_TELL = "cannot_tell"
STATUSES = (FLAGGED, CLEAR, CANNOT_TELL)
RULE = (
    "A reported train or test value is flagged when, over the seeds of its cell that record both the "
    "train and the test metric, the two metrics differ beyond noise and the value lies closer to the "
    "other split's metric than to its own beyond noise (past their per-seed midpoint; two one-sided "
    f"t-tests, each at α = {ALPHA:g}, both must reject). Smoke scale, runs at another scale than the "
    "table's or fewer than 2 seeds: cannot tell."
)


def applies(table: ReportedTable) -> bool:
    """Whether the guard reads ``table``: a result table mapped onto runs, whose metric has a
    train/test counterpart."""
    return table.kind == "result" and isinstance(table.layout, TableLayout) and str(table.metric) in PARTNER


def _pairs(runs: Iterable[Row], own: str, other: str) -> tuple[np.ndarray, np.ndarray]:
    """Per seed (run), both metrics; runs missing either are dropped."""
    pairs = [(metric_value(r, own), metric_value(r, other)) for r in usable(runs)]
    kept = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    arr = np.array(kept, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _interval(mean: float, se: float, n: int) -> tuple[float, float]:
    """The (1 − 2α) t-interval of a mean (n − 1 df)."""
    eq = equivalence(mean, se, n - 1, 0.0, ALPHA)
    return eq.ci_low, eq.ci_high


def evaluate_value(
    table: ReportedTable,
    row: str,
    column: str,
    reported: ReportedValue,
    runs: Sequence[Row],
    scale: str,
    dataset: str = "",
) -> LeakageResult:
    """The guard's decision for one reported value against the runs of its cell (module docstring);
    ``dataset`` names the data these runs are on when the cell has none."""
    own, other = str(table.metric), PARTNER[str(table.metric)]
    a, b = _pairs(runs, own, other)
    n = int(a.size)
    comparable = scale == table.scale
    own_mean, other_mean = (float(np.mean(a)), float(np.mean(b))) if n else (math.nan, math.nan)
    own_sd, other_sd = (float(np.std(a, ddof=1)), float(np.std(b, ddof=1))) if n > 1 else (math.nan, math.nan)
    base = dict(
        table=table.id,
        row=row,
        column=column,
        reported=reported.value,
        reported_text=reported.text,
        metric=own,
        other=other,
        n=n,
        own_mean=own_mean,
        own_sd=own_sd,
        other_mean=other_mean,
        other_sd=other_sd,
        looks_like=SPLIT[other],
        alpha=ALPHA,
        scale=scale,
        comparable=comparable,
    )
    nan = dict(gap_low=math.nan, gap_high=math.nan, side=math.nan, side_low=math.nan, side_high=math.nan)
    why = ""
    if scale == "smoke":
        why = "smoke checks the pipeline only"
    elif not comparable:
        why = scale_note(table, scale, datasets(usable(runs), dataset))
    elif n < 2:
        why = f"{n} seed(s) with both {own} and {other}: at least 2 are needed to tell seed noise from a gap"
    if why:
        return LeakageResult(**base, **nan, status=CANNOT_TELL, note=f"cannot tell: {why}")

    gap = b - a
    mid = (a + b) / 2.0
    n_test = table.test_size or n_test_of(usable(runs))
    floor = 0.0
    if own.startswith(ACCURACY_PREFIXES) and n_test:
        floor = binomial_floor_sd_percent(min(100.0, max(0.0, float(np.mean(a)))), n_test)
    sd_gap = max(float(np.std(gap, ddof=1)), floor)
    sd_mid = max(float(np.std(mid, ddof=1)), floor / 2.0)
    gap_low, gap_high = _interval(float(np.mean(gap)), sd_gap / math.sqrt(n), n)
    sign = 1.0 if np.mean(gap) >= 0 else -1.0
    se_r, _ = reported_se(table, reported, n_test)
    side = sign * (reported.value - float(np.mean(mid)))
    side_low, side_high = _interval(side, math.sqrt(sd_mid**2 / n + se_r**2), n)
    gap_real = gap_low > 0 or gap_high < 0
    nearer = (
        f"{fmt(reported.value)} vs {other} {fmt(other_mean)} and {own} {fmt(own_mean)} over {n} seeds; "
        f"{int(round((1 - 2 * ALPHA) * 100))}% CI of its distance past their midpoint towards {other} "
        f"[{fmt(side_low)}, {fmt(side_high)}]"
    )
    if not gap_real:
        status, note = (
            CANNOT_TELL,
            (
                f"cannot tell: {other} − {own} [{fmt(gap_low)}, {fmt(gap_high)}] does not differ from 0 beyond "
                f"noise over {n} seeds, so the two metrics cannot be told apart"
            ),
        )
    elif side_low > 0:
        status, note = FLAGGED, f"looks like a {SPLIT[other]} number: {nearer}, above 0"
    elif side_high < 0:
        status, note = CLEAR, f"closer to {own}: {nearer}, below 0"
    else:
        status, note = CANNOT_TELL, f"cannot tell: {nearer}, containing 0"
    return LeakageResult(
        **base,
        gap_low=gap_low,
        gap_high=gap_high,
        side=side,
        side_low=side_low,
        side_high=side_high,
        status=status,
        note=note,
    )


def judge_tables(study: Study, scale: str, rows: list[Row], dataset: str = "") -> list[LeakageResult]:
    """The guard's decision for every reported value of every table it applies to (:func:`applies`);
    ``dataset`` names the data the runs are on."""
    out = []
    for table in study.tables:
        if not applies(table):
            continue
        for r in table.rows:
            for c in table.columns:
                reported = table.value(r, c)
                if reported is not None:
                    out.append(
                        evaluate_value(table, r, c, reported, cell_runs(table, r, c, rows, scale), scale, dataset)
                    )
    return out


def summary(results: Sequence[LeakageResult]) -> str:
    """One sentence: how many values were judged, flagged and left undecided, and how many flags
    chance alone would give."""
    judged = [x for x in results if x.comparable and x.scale != "smoke" and x.n >= 2]
    flagged = sum(x.status == FLAGGED for x in results)
    text = (
        f"{flagged} of {len(results)} reported train/test values flagged; "
        f"{sum(x.status == CLEAR for x in results)} clear; {sum(x.status == CANNOT_TELL for x in results)} cannot tell"
    )
    if judged:
        chance = chance_sentence([ALPHA] * len(judged)).replace("judged cells", "judged values")
        text += "; " + chance.replace("mark about", "flag at most about").replace(" not reproduced", "")
    return text
