"""The report's table cells and texts: a table is ``{"headers": [str], "rows": [[cell]]}`` where a
cell is ``{"text": str, "cls": str}``; ``cls`` names a style: ``verdict <verdict>``, ``light
<colour>``, ``flag`` (the leakage guard's warning) or ``assumed``. Claim kinds build their
evidence tables with these helpers; numbers go through :func:`restudy.display.numbers.fmt` (one missing
mark).

Imports numbers only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from .numbers import MISSING, fmt, signed_percent

RAN_INSTEAD = "these runs are "  # how a scale note names what ran (the report reads it off a cell's note)
VERDICT_TEXT = {
    "reproduced": "reproduced",
    "not_reproduced": "not reproduced",
    "inconclusive": "inconclusive",
    "not_evaluated": "not evaluated",
}
LIGHT_TEXT = {"black": "within 10%", "green": "better by >10%", "red": "worse by >10%", "gray": "n/a"}
METRIC_LABELS = {
    "sd_accuracy": "SD accuracy (%)",
    "sd_cross_entropy": "SD cross-entropy",
    "disagreement": "pairwise disagreement (%)",
    "correlation": "pairwise corr. (Spearman)",
    "correlation_spearman": "pairwise corr. (Spearman)",
    "correlation_pearson": "pairwise corr. (Pearson)",
    "ensemble_gain": "ensemble Δ accuracy (%)",
    "ensemble_gain_ce": "ensemble Δ CE",
    "reduction_original": "reduction % (original paper's formula)",
    "reduction_recalculated": "reduction % (reproduction's recalculation)",
    "cka": "pairwise linear CKA (assumed variant)",
}
METRIC_DIGITS = {
    "sd_accuracy": 3,
    "sd_cross_entropy": 4,
    "disagreement": 2,
    "correlation": 3,
    "correlation_spearman": 3,
    "correlation_pearson": 3,
    "ensemble_gain": 2,
    "ensemble_gain_ce": 4,
    "reduction_original": 1,
    "reduction_recalculated": 1,
    "cka": 3,
}
Cell = dict[str, str]
Table = dict[str, Any]


def anchor(kind: str, name: str) -> str:
    """An HTML id for a section: ``claim-each_source_like_all``."""
    return f"{kind}-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def cell(text: Any, cls: str = "") -> Cell:
    """One table cell."""
    return {"text": str(text), "cls": cls}


def verdict_cell(verdict: str) -> Cell:
    """A verdict as a styled cell."""
    return cell(VERDICT_TEXT.get(verdict, verdict), f"verdict {verdict}")


def light_cell(light: str) -> Cell:
    """A traffic light as a styled cell."""
    return cell(f"{light} ({LIGHT_TEXT.get(light, '')})", f"light {light}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell | str]]) -> Table:
    """A table of cells (plain strings become unstyled cells)."""
    return {"headers": list(headers), "rows": [[c if isinstance(c, dict) else cell(c) for c in r] for r in rows]}


def mean_sd_n(mean: Any, sd: Any, n: int) -> str:
    """``mean ± SD (n)``; ``mean (1)`` for one run; the missing mark for none."""
    if not n:
        return MISSING
    if n == 1 or sd is None or (isinstance(sd, float) and not math.isfinite(sd)):
        return f"{fmt(mean)} ({n})"
    return f"{fmt(mean)} ± {fmt(sd)} ({n})"


def duration(seconds: Any) -> str:
    """Seconds as ``1h 02m``, ``3m 05s`` or ``12.3 s``."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return MISSING
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def value_text(v: Any) -> str:
    """A setting's value as compact text (JSON for lists and maps)."""
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def ci_text(entry: dict[str, Any] | None, digits: int) -> str:
    """``value [low, high]``, or the value alone without a CI, or the missing mark."""
    if not entry or not isinstance(entry.get("value"), (int, float)):
        return MISSING
    text = fmt(entry["value"], digits)
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and math.isfinite(lo) and math.isfinite(hi):
        text += f" [{fmt(lo, digits)}, {fmt(hi, digits)}]"
    return text


def flagged_cell(text: str, flag: str = "") -> Cell:
    """A table cell with the leakage guard's warning next to it (``flag``: what the value looks like)."""
    return cell(f"{text} ⚠ {flag}", "flag") if flag else cell(text)


def ran_instead(notes: Iterable[str]) -> str:
    """What ran instead of a table's scale and data (``these runs are … scale on …``), read off its
    cells' notes ('' when none says)."""
    return next((n[n.index(RAN_INSTEAD) :] for n in notes if RAN_INSTEAD in n), "")


def cells_table(
    cells: Sequence[dict[str, Any]],
    flags: dict[tuple[str, str], str] | None = None,
    squared_deviation: Any = None,
    comparable: bool = True,
) -> Table:
    """Reported cells against their runs: reproduced mean ± SD (n), CI, reported value, relative
    error, traffic light, verdict and note; ``flags`` (row, column) → the leakage guard's warning;
    with the table's ``squared_deviation`` criterion, each cell's averaged squared deviation and
    whether the reproduction's rule calls it consistent. A table not ``comparable`` with these runs
    (another scale or other data) shows the two side by side only: no error, light, verdict or
    criterion, whose one reason its heading gives."""
    flags = flags or {}
    crit = squared_deviation if comparable else None
    headers = ["cell", "reproduced mean ± SD (n)", "CI", "reported", "rel. error", "light", "verdict", "note"]
    if not comparable:
        headers = headers[:4]
    if crit is not None:
        headers.insert(6, f"avg. sq. dev. (consistent if < {crit.below:g})")
    rows = []
    for c in cells:
        row = [
            flagged_cell(
                f"{c['table']}: {c['row']} / {c['column']}"
                + (f" (stand-in: {c['stand_in']})" if c.get("stand_in") else ""),
                flags.get((c["row"], c["column"]), ""),
            ),
            mean_sd_n(c["mean"], c["sd"], c["n"]),
            f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]",
            fmt(c["reported"]),
        ]
        if not comparable:
            rows.append(row)
            continue
        row += [
            signed_percent(c["rel_error"]),
            light_cell(c["light"]),
            verdict_cell(c["verdict"]),
            c["note"],
        ]
        if crit is not None:
            sq = c.get("sq_dev")
            if isinstance(sq, (int, float)) and math.isfinite(sq):
                row.insert(6, f"{fmt(sq, 4)} ({'consistent' if sq < crit.below else 'not consistent'})")
            else:
                row.insert(6, MISSING)
        rows.append(row)
    return table(headers, rows)


def seeds_line(result: Any) -> str:
    """``Seeds needed to decide ...: n.`` for a claim that says how many ('' otherwise)."""
    if not result.seeds_needed:
        return ""
    return f"Seeds needed to decide (80% power at the observed effect): {result.seeds_needed}."


def evidence_lines(result: Any) -> list[str]:
    """The default rendering of a kind's evidence: its top-level numbers and words, one line
    (nested lists and maps are left to ``results.json``), then the seeds needed."""
    items = []
    for key, value in result.evidence.items():
        if isinstance(value, bool) or value is None:
            items.append(f"{key} {value}")
        elif isinstance(value, (int, float)):
            items.append(f"{key} {fmt(value, 4).rstrip('0').rstrip('.')}")
        elif isinstance(value, str) and value:
            items.append(f"{key} {value}")
    lines = ["Evidence: " + "; ".join(items) + "."] if items else []
    return lines + [seeds_line(result)]
