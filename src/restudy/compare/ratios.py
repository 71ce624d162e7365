"""Tables of a machine-dependent metric (wall time): their values are not compared, the ratios
between their columns are.

A wall time measured on the reproduction's V100 and one measured here differ by the machines, not
by the method, so such a table's cells get no verdict (:func:`restudy.compare.cells.evaluate_cell`
says why). What does carry over is the cost of one column relative to another on the same machine:
per row, each column's time over the first column's (``nd`` over ``bn``). Runs of the two cells
pair by seed index; the measured ratio is the geometric mean of the per-seed ratios, with the
(1 − 2α) t-interval of the mean log-ratio over seeds (α = 0.05: the 90 % interval the claims
use), and beside it the ratio of the two reported values when the table's scale is the runs'.
No verdict is given here: a claim of kind ``cost_ratio`` judges the ratios a paper states.

Imports spec, stats and the sibling modules verdicts, select and cells.
"""

from __future__ import annotations

import math

import numpy as np

from ..spec.reported import ReportedTable, TableLayout
from ..stats.decisions import equivalence
from .cells import cell_runs
from .select import MACHINE_DEPENDENT, Row, metric_value, per_seed_means, usable
from .verdicts import ColumnRatio

ALPHA = 0.05
"""Each side of the ratio's interval; the (1 − 2α) = 90 % interval matches the claims'."""


def machine_dependent(table: ReportedTable) -> bool:
    """Whether ``table`` reports a metric whose values depend on the machine (e.g. ``wall_s``)."""
    return str(table.metric) in MACHINE_DEPENDENT


def _by_seed(runs: list[Row], metric: str) -> dict[int, float]:
    """Per seed index, the mean of the cell's positive values of ``metric``."""
    values = [(r["seed_index"], v) for r in usable(runs) if (v := metric_value(r, metric)) > 0]
    return dict(zip(*per_seed_means(values)))


def column_ratios(table: ReportedTable, rows: list[Row], scale: str) -> list[ColumnRatio]:
    """Per row of a machine-dependent result table, every column over the first one (module
    docstring); rows with no run in either cell are left out."""
    if not machine_dependent(table) or not isinstance(table.layout, TableLayout) or len(table.columns) < 2:
        return []
    metric, base = str(table.metric), table.columns[0]
    out = []
    for r in table.rows:
        b = _by_seed(cell_runs(table, r, base, rows, scale), metric)
        for c in table.columns[1:]:
            a = _by_seed(cell_runs(table, r, c, rows, scale), metric)
            seeds = sorted(set(a) & set(b))
            if not seeds:
                continue
            logs = np.log([a[k] / b[k] for k in seeds])
            low = high = math.nan
            if len(seeds) > 1:
                se = float(np.std(logs, ddof=1)) / math.sqrt(len(seeds))
                eq = equivalence(float(np.mean(logs)), se, len(seeds) - 1, 0.0, ALPHA)
                low, high = math.exp(eq.ci_low), math.exp(eq.ci_high)
            rep_a, rep_b = table.value(r, c), table.value(r, base)
            reported = (
                rep_a.value / rep_b.value
                if scale == table.scale and rep_a is not None and rep_b is not None and rep_b.value
                else math.nan
            )
            measured = math.exp(float(np.mean(logs)))
            out.append(ColumnRatio(table.id, r, c, base, measured, low, high, len(seeds), reported))
    return out
