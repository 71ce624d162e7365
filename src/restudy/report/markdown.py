"""The Markdown report: lays out the view model of :func:`restudy.report.results.report_context`.

Verdicts carry a coloured mark (🟢 reproduced, 🔴 not reproduced, 🟡 inconclusive, ⚪ not
evaluated); assumed hyperparameters are bold. Figures are linked as ``figures/*.png``.

Imports nothing from restudy (pure string building).
"""

from __future__ import annotations

from typing import Any

VERDICT_MARK = {"reproduced": "🟢", "not_reproduced": "🔴", "inconclusive": "🟡", "not_evaluated": "⚪"}
LIGHT_MARK = {"black": "⚫", "green": "🟢", "red": "🔴", "gray": "⚪"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cell_text(cell: dict[str, str]) -> str:
    """A cell as Markdown: bold when assumed, a coloured mark for verdicts and lights."""
    text, cls = _escape(cell["text"]), cell.get("cls", "")
    kind, _, value = cls.partition(" ")
    if kind == "assumed":
        return f"**{text}**" if text else text
    if kind == "verdict":
        return f"{VERDICT_MARK.get(value, '')} {text}".strip()
    if kind == "light":
        return f"{LIGHT_MARK.get(value, '')} {text}".strip()
    return text


def table(tab: dict[str, Any]) -> list[str]:
    """A view-model table as Markdown lines (an italic note when it has no rows)."""
    if not tab["rows"]:
        return ["_(none)_", ""]
    lines = [
        "| " + " | ".join(_escape(h) for h in tab["headers"]) + " |",
        "|" + "|".join(" --- " for _ in tab["headers"]) + "|",
    ]
    lines += ["| " + " | ".join(_cell_text(c) for c in row) + " |" for row in tab["rows"]]
    return lines + [""]


def _header(ctx: dict[str, Any]) -> list[str]:
    p = ctx["paper"]
    lines = [
        f"# {ctx['title']}",
        "",
        f"**Paper:** {p['title']}"
        + (f" ({p['authors']})" if p["authors"] else "")
        + (f", {p['venue']}" if p["venue"] else ""),
    ]
    if p["url"]:
        lines.append(f"  \n**Link:** {p['url']}")
    if p["code"]:
        lines.append(f"  \n**Original code:** {p['code']}")
    lines += ["", f"> **Scale: {ctx['scale']} — data: {ctx['dataset']}.** {ctx['banner']}"]
    if ctx["scale_warning"]:
        lines += [">", f"> ⚠️ {ctx['scale_warning']}"]
    if ctx["scale_description"]:
        lines += [">", f"> {ctx['scale_description']}"]
    return lines + [""]


def _summary(ctx: dict[str, Any]) -> list[str]:
    counts = ", ".join(f"{v} {k}" for k, v in ctx["verdict_counts"].items() if v)
    lines = ["## Verdicts", "", f"{len(ctx['claims'])} claims: {counts or 'none'}.", ""]
    lines += table(ctx["verdicts"])
    rules = "; ".join(ctx["rules"])
    lines += [
        f"How verdicts are reached: {rules + '. ' if rules else ''}"
        "Inconclusive means the data cannot decide at this number of seeds.",
        "",
    ]
    return lines


def _claims(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Claims", ""]
    for c in ctx["claims"]:
        mark = VERDICT_MARK.get(c["verdict"], "")
        lines += [f"### {c['id']} — {mark} {c['verdict_text']}", "", f"> {c['statement']}", ""]
        if c["source"]:
            lines += [f"Source: {c['source']}. Kind: `{c['kind']}`, metric `{c['metric']}`.", ""]
        lines += [f"**Result:** {c['summary']}", "", f"_{c['scale_note']}_", ""]
        lines += [f"- {line}" for line in c["lines"]]
        if c["lines"]:
            lines.append("")
        if c["table"]:
            lines += table(c["table"])
        if c["figure"]:
            lines += [f"![{c['id']}]({c['figure']})", ""]
    return lines


def _variability(ctx: dict[str, Any]) -> list[str]:
    """Run-to-run variability: per table, model set × metric, reductions, judged cells, figure."""
    if not ctx["has_variability"]:
        return []
    lines = [
        "## Run-to-run variability",
        "",
        "Metrics of Summers & Dinneen (2021) over each set of models, from their stored test "
        "logits: SDs are population SDs over models; pairwise metrics average over model "
        "pairs. Brackets: 95% percentile bootstrap CIs over models.",
        "",
    ]
    lines += [f"> ⚠️ {note}" for note in ctx["variability_notes"]]
    if ctx["variability_notes"]:
        lines.append("")
    for t in ctx["variability"]:
        lines += _table_heading(t, ctx)
        if t["table"]:
            lines += table(t["table"])
        if t["reduction"]:
            lines += [
                f"Variability reduction % against **{t['reference']}**, two ways: the "
                "original paper's formula (V = 1 − correlation for the correlation) and the "
                "reproduction's recalculation (relative change of the correlation).",
                "",
            ]
            lines += table(t["reduction"])
        if t["cells"]:
            lines += [f"Reported cells: {t['evaluated']}.", ""] + table(t["cells"])
        if t["figure"]:
            lines += [f"![{t['id']}]({t['figure']})", ""]
    return lines


def _table_heading(t: dict[str, Any], ctx: dict[str, Any]) -> list[str]:
    """Title, where the numbers were reported and where reproduced, and a warning when the two
    are not comparable (other scale or data)."""
    lines = [
        f"### {t['title']} ({t['where'] or t['id']})",
        "",
        f"Reported in: {t['document']}, at {t['reported_scale']} scale on "
        f"{t['reported_dataset']}. Reproduced: {ctx['scale']} scale on {ctx['dataset']}.",
        "",
    ]
    if not t["comparable"]:
        lines += [f"> ⚠️ {t['note'][0].upper() + t['note'][1:]}.", ""]
    return lines


def _curves(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Training curves", "", "Mean over seeds per variant; train and test in separate panels.", ""]
    for c in ctx["curves"]:
        lines += [f"### {c['experiment']}", ""]
        if c["description"]:
            lines += [c["description"], ""]
        lines += [f"![{c['experiment']} curves]({c['figure']})", ""]
    if not ctx["curves"]:
        lines += ["_(no curves recorded)_", ""]
    return lines


def _reported(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Reported vs reproduced", ""]
    if not ctx["reported"]:
        return lines + ["_(the study declares no result tables)_", ""]
    for t in ctx["reported"]:
        lines += _table_heading(t, ctx)
        lines += table(t["table"])
        lines += [f"MSD: {t['msd']}; {t['evaluated']}.", ""]
    return lines


def _groups(ctx: dict[str, Any]) -> list[str]:
    return [
        "## All groups",
        "",
        f"Every experiment × variant at {ctx['scale']} scale on "
        f"{ctx['dataset']}. Diverged runs count in accuracy (as measured); failed runs do not.",
        "",
    ] + table(ctx["groups"])


def _hyper(ctx: dict[str, Any]) -> list[str]:
    lines = [
        "## Hyperparameters and their provenance",
        "",
        "Provenance: `paper` (stated in the paper), `code` (found in the original code), "
        "`authors` (told by the authors), `assumed` (**bold**: not found, chosen here).",
        "",
    ]
    for h in ctx["hyper"]:
        lines += [f"### {h['experiment']}", "", f"{h['n_variants']} variants; {h['n_assumed']} assumed settings.", ""]
        lines += table(h["table"])
    if not ctx["hyper"]:
        lines += ["_(no settings recorded)_", ""]
    for t in ctx["hyper_tables"]:
        lines += [f"### {t['title']}", "", f"As reported in: {t['document']}, {t['where']}.", ""]
        lines += table(t["table"])
    return lines


def _deviations(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Deviations from the original protocol", ""]
    lines += [f"- {d}" for d in ctx["deviations"]] or ["_(none: the paper protocol)_"]
    return lines + [""]


def _environment(ctx: dict[str, Any]) -> list[str]:
    return ["## Environment", ""] + table(ctx["environment"])


def _cost(ctx: dict[str, Any]) -> list[str]:
    c = ctx["cost"]
    lines = ["## Cost", ""] + table(c["table"])
    lines += [
        f"Runs: {c['runs']}; run time (sum over runs): {c['run_time']}; elapsed: "
        f"{c['elapsed']}; workers: {c['workers']}."
    ]
    if c["command"]:
        lines += ["", f"Command: `{c['command']}`"]
    return lines + [""]


def _reused(ctx: dict[str, Any]) -> list[str]:
    lines = ["## Runs reused from another environment", ""]
    if not ctx["reused"]:
        return lines + ["None: every run was made in the environment above.", ""]
    lines += [
        f"⚠️ {len(ctx['reused'])} runs were reused from an earlier invocation whose "
        "environment fingerprint differs from the current one; their numbers may differ "
        "bit-for-bit from a fresh run:",
        "",
    ]
    return lines + [f"- `{k}`" for k in ctx["reused"]] + [""]


def render_markdown(ctx: dict[str, Any]) -> str:
    """Renders the report as Markdown.

    Args:
        ctx: the view model of :func:`restudy.report.results.report_context`.

    Returns:
        The Markdown text.
    """
    parts = (
        _header,
        _summary,
        _claims,
        _variability,
        _curves,
        _reported,
        _groups,
        _hyper,
        _deviations,
        _environment,
        _cost,
        _reused,
    )
    lines: list[str] = []
    for part in parts:
        lines += part(ctx)
    return "\n".join(lines).rstrip() + "\n"
