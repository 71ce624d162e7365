"""The Markdown report: lays out the view model of :func:`restudy.report.results.report_context`.

Verdicts carry a coloured mark (🟢 reproduced, 🔴 not reproduced, 🟡 inconclusive, ⚪ not
evaluated); a setting that differs from the paper's protocol is bold. A line of contents links
the sections (anchors); figures are linked as ``figures/*.png``.

Imports nothing from restudy (pure string building).
"""

from __future__ import annotations

import re
from typing import Any

VERDICT_MARK = {"reproduced": "🟢", "not_reproduced": "🔴", "inconclusive": "🟡", "not_evaluated": "⚪"}
LIGHT_MARK = {"black": "⚫", "green": "🟢", "red": "🔴", "gray": "⚪"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(text: str, url: str) -> str:
    return f"[{text}]({url})" if url else text


def _cell_text(cell: dict[str, str]) -> str:
    """A cell as Markdown: bold where a setting differs, a coloured mark for verdicts and lights,
    a link to a section."""
    text, cls = _escape(cell["text"]), cell.get("cls", "")
    kind, _, value = cls.partition(" ")
    if kind == "differs":
        return f"**{text}**" if text else text
    if kind == "verdict":
        return f"{VERDICT_MARK.get(value, '')} {text}".strip()
    if kind == "light":
        return f"{LIGHT_MARK.get(value, '')} {text}".strip()
    if kind == "link":
        return f"[{text}](#{value})"
    return text


def table(tab: dict[str, Any] | None) -> list[str]:
    """A view-model table as Markdown lines (an italic note when it has no rows)."""
    if not tab or not tab["rows"]:
        return ["_(none)_", ""]
    lines = [
        "| " + " | ".join(_escape(h) for h in tab["headers"]) + " |",
        "|" + "|".join(" --- " for _ in tab["headers"]) + "|",
    ]
    lines += ["| " + " | ".join(_cell_text(c) for c in row) + " |" for row in tab["rows"]]
    return lines + [""]


SECTIONS = (
    ("verdicts", "Verdicts"),
    ("claims", "Claims"),
    ("coverage", "What the documents claim"),
    ("variability", "Run-to-run variability"),
    ("curves", "Training curves"),
    ("reported", "Reported vs reproduced"),
    ("leakage", "Train/test leakage guard"),
    ("groups", "All groups"),
    ("settings", "Settings and their provenance"),
    ("environment", "Environment and cost"),
    ("next", "What to do next"),
)


def sections(ctx: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's sections present in this report: (anchor, heading)."""
    skip = set()
    if not ctx["has_variability"]:
        skip.add("variability")
    if not ctx["reported"]:
        skip.add("reported")
    if not ctx.get("leakage"):
        skip.add("leakage")
    if not ctx["curves"]:
        skip.add("curves")
    if not ctx.get("coverage"):
        skip.add("coverage")
    return [(a, h) for a, h in SECTIONS if a not in skip]


def _header(ctx: dict[str, Any]) -> list[str]:
    p, ran = ctx["paper"], ctx["what_ran"]
    lines = [f"# {ctx['title']}", ""]
    if ran["paper_setting"]:
        lines += [f"_The paper's setting: {ran['paper_setting']}._", ""]
    paper = _link(p["title"], p["url"]) + (f" ({p['authors']})" if p["authors"] else "")
    paper += f", {p['venue']}" if p["venue"] else ""
    if p["code"]:
        paper += f" · original code: <{p['code']}>"
    lines += [f"**Paper:** {paper}", ""]
    if ctx["documents"]:
        docs = "; ".join(f"`{d['id']}` = {_link(d['title'], d['url'])}" for d in ctx["documents"])
        lines += [f"**Documents cited:** {docs}.", ""]
    lines += [f"> **Scale: {ctx['scale']} — data: {ctx['dataset']}.** {ctx['banner']}"]
    if ctx["scale_warning"]:
        lines += [">", f"> ⚠️ {ctx['scale_warning']}"]
    if ctx["scale_description"]:
        lines += [">", f"> {ctx['scale_description']}"]
    toc = " · ".join(f"[{h}](#{a})" for a, h in sections(ctx))
    return lines + ["", f"Contents: {toc}", ""]


def _not_evaluated(rows: list[list[dict[str, str]]]) -> tuple[list[list[dict[str, str]]], list[str]]:
    """Splits the verdict rows: claims not evaluated (at this scale, or outside a subset run) leave
    the table and become one line per reason (each statement linked to its claim)."""
    kept, by_reason = [], {}
    for row in rows:
        if row[1].get("cls", "") == "verdict not_evaluated":
            by_reason.setdefault(row[2]["text"], []).append(_cell_text(row[0]))
        else:
            kept.append(row)
    lines = []
    for reason, claims in by_reason.items():
        why = reason.removeprefix("not evaluated: ")
        if len(claims) > 1:  # the evaluator's reason speaks of one claim
            why = why.replace("this claim gets a verdict at", "these claims get their verdicts at")
        lines += [f"⚪ not evaluated ({_escape(why)}): {'; '.join(claims)}.", ""]
    return kept, lines


def _summary(ctx: dict[str, Any]) -> list[str]:
    counts = ", ".join(f"{v} {k}" for k, v in ctx["verdict_counts"].items() if v)
    lines = ["## Verdicts", "", f"{len(ctx['claims'])} claims: {counts or 'none'}.", ""]
    tab = ctx["verdicts"]
    rows, skipped = _not_evaluated(tab["rows"]) if tab else ([], [])
    if rows or not skipped:
        lines += table({**tab, "rows": rows} if tab else tab)
    lines += skipped
    if ctx.get("host_note"):
        lines += [ctx["host_note"], ""]
    rules = "; ".join(ctx["rules"])
    lines += [
        f"How verdicts are reached: {rules + '. ' if rules else ''}"
        "Inconclusive means the data cannot decide at this number of seeds.",
        "",
    ]
    return lines


def _claims(ctx: dict[str, Any]) -> list[str]:
    """Each claim once: source, evidence and figure as one item, then its table (its statement
    and result sentence are in the verdicts table, which links here). Claims not evaluated at this scale, with
    nothing to show, share one line (their statements are in the verdicts section)."""
    lines = ["## Claims", ""]
    bare = []
    for c in ctx["claims"]:
        if c["verdict"] == "not_evaluated" and not (c["lines"] or c["table"] or c["figure"]):
            src = f" (source: {_escape(c['source'])})" if c["source"] and c["source"] != "n/a" else ""
            bare.append(f'<a id="{c["anchor"]}"></a>**{c["id"]}**{src}')
            continue
        mark = VERDICT_MARK.get(c["verdict"], "")
        lines.append(f'### <a id="{c["anchor"]}"></a>{c["id"]} — {mark} {c["verdict_text"]}')
        meta = f"Source: {c['source']}. " if c["source"] and c["source"] != "n/a" else ""
        meta += f"Test: {c['kind'].replace('_', ' ')}."
        if c["verdict"] == "not_evaluated":
            meta += f" {c['summary'][:1].upper()}{c['summary'][1:]}."
        figure = [f"Figure: ![{c['id']}]({c['figure']})"] if c["figure"] else []
        # source, test, evidence and figure in one item: the report stays short to scroll (the HTML
        # lists them); the statement is the verdicts table's, which links here
        lines += ["- " + " · ".join([meta, *(line.rstrip(".") + "." for line in c["lines"]), *figure]), ""]
        if c["table"]:
            lines += table(c["table"])
    if bare:
        lines += [f"### ⚪ Not evaluated at this scale ({len(bare)})", "; ".join(bare) + ".", ""]
    return lines


def _coverage(ctx: dict[str, Any]) -> list[str]:
    """Every claim of the documents with the claims that test it (or why none can)."""
    cov = ctx["coverage"]
    return ["## What the documents claim", "", cov["sentence"], "", *table(cov["table"])]


def _variability(ctx: dict[str, Any]) -> list[str]:
    """Run-to-run variability: per table, model set × metric, reductions, judged cells, figure."""
    if not ctx["has_variability"]:
        return []
    lines = [
        "## Run-to-run variability",
        "",
        "Metrics of Summers & Dinneen (2021) over each set of models, from their stored test "
        "logits: SDs are population SDs over models; pairwise metrics average over model "
        "pairs. Brackets: 95% bootstrap CIs over models (4,000 resamples; a log-scale interval for a "
        "positive metric whose resamples are all positive, BCa otherwise, both widened for few models).",
        "",
    ]
    lines += [f"> ⚠️ {note}" for note in ctx["variability_notes"]]
    if ctx["variability_notes"]:
        lines.append("")
    for t in ctx["variability"]:
        lines += _table_heading(t, ctx, t["not_applicable"])
        if t["figure"]:  # the figure closes the heading's paragraph: one line, not three
            lines[-2] += f" ![{t['id']}]({t['figure']})"
        if t["table"]:
            lines += table(t["table"])
        if t["reduction"]:
            lines += [f"Reduction % against **{t['reference']}** (both formulas):", ""]
            lines += table(t["reduction"])
        if t["cells"]:
            lines += [f"Reported cells: {t['evaluated']}.", ""] + table(t["cells"])
    return lines


def _table_heading(t: dict[str, Any], ctx: dict[str, Any], extra: str = "") -> list[str]:
    """Title (what it measures, where it was reported), the paper's setting against what ran here,
    whether the two are comparable, and ``extra`` (e.g. the rows that do not apply here)."""
    where = f" ({t['where']})" if t["where"] else ""
    setting = f"as “{t['source_title']}”, " if t.get("paper_setting") else ""
    here = f"; here {t['models_per_row']} models per row" if "models_per_row" in t else ""
    comparable = "" if t["comparable"] else f" Not comparable: {t.get('not_comparable') or NOT_COMPARABLE_WHY}."
    return [
        f'### <a id="{t["anchor"]}"></a>{t["title"]}{where}',
        "",
        f"_Reported in {t['document']} {setting}at {t['reported_scale']} scale on {t['reported_dataset']}"
        f"{here}.{comparable}_" + (f" _{extra}_" if extra else ""),
        "",
    ]


def _curves(ctx: dict[str, Any]) -> list[str]:
    if not ctx["curves"]:
        return []
    lines = [
        "## Training curves",
        "",
        "Per line (a variant, or an experiment of one variant): the mean over seeds, and the range over seeds "
        "as a band; train and test in separate panels.",
        "",
    ]
    for c in ctx["curves"]:
        what = "; ".join(
            f"**{x['experiment']}**" + (f" ({x['description'].rstrip('.')})" if x["description"] else "")
            for x in c["experiments"]
        )
        lines += [f"- {what}. ![{c['experiment']} curves]({c['figure']})"]
    return lines + [""]


NOT_COMPARABLE_WHY = "reported at another scale or on other data"
SIDE_BY_SIDE = (
    "Side by side only: numbers from another scale or other data get no relative error, light, "
    "squared deviation or verdict."
)
RATIOS_INTRO = (
    "Times measured on different machines are not compared; the cost of one column relative to "
    "another on the same machine is (geometric mean of the per-seed ratios):"
)


def _reported(ctx: dict[str, Any]) -> list[str]:
    if not ctx["reported"]:
        return []
    lines = ["## Reported vs reproduced", ""]
    ran = [t for t in ctx["reported"] if not t.get("reported_only")]
    for t in ran:
        lines += _table_heading(t, ctx)
        lines += [f"> {t['remark']}", ""] if t.get("remark") else []
        lines += [f"> Stand-ins: {t['stand_in']}", ""] if t.get("stand_in") else []
        lines += table(t["table"])
        if t.get("ratios"):  # a machine-dependent metric: its column ratios are what compares
            lines += [RATIOS_INTRO, "", *table(t["ratios"])]
        elif t["comparable"]:
            lines += [f"MSD: {t['msd']}; {t['evaluated']}.", ""]
        else:
            lines += [SIDE_BY_SIDE, ""]
        if t.get("criterion") and t["comparable"]:
            lines += [f"_Averaged squared deviation: {_escape(t['criterion'])}_", ""]
    return lines + _reported_only(ctx)


def _reported_only(ctx: dict[str, Any]) -> list[str]:
    """The tables none of whose cells has runs here, folded together after those that have: each
    with its reported values as the document lays them out and the one reason it has no runs."""
    fold = ctx.get("reported_fold")
    if not fold:
        return []
    lines = [f'### <a id="{fold["anchor"]}"></a>{fold["title"]}', "", fold["intro"], ""]
    lines += [f"<details><summary>{fold['summary']}</summary>", ""]
    shown: dict[str, dict[str, Any]] = {}  # a grid of reported values → the table that showed it
    for t in (t for t in ctx["reported"] if t.get("reported_only")):
        where = f" ({t['where']})" if t["where"] else ""
        lines += [f'#### <a id="{t["anchor"]}"></a>{t["title"]}{where}', ""]
        lines += [f"> {t['remark']}", ""] if t.get("remark") else []
        grid = table(t["reported_only"]["table"])
        first = shown.setdefault("\n".join(grid), t)
        source = f"From {t['document']}; {_escape(t['reported_only']['why'])}"
        if first is not t:  # e.g. one paper table compared as best-over-epochs and as final
            lines += [f"_{source}. The same values as [{first['title']}](#{first['anchor']})._", ""]
            continue
        lines += [f"_{source}._", "", *grid]
    return lines + ["</details>", ""]


def _leakage(ctx: dict[str, Any]) -> list[str]:
    g = ctx["leakage"]
    note = f" {g['scale_note']}" if g["scale_note"] else ""
    lines = ["## Train/test leakage guard", "", g["rule"], "", g["summary"] + note, ""]
    if g["table"]:
        lines += table(g["table"])
    return lines


def _groups(ctx: dict[str, Any]) -> list[str]:
    return [
        "## All groups",
        "",
        f"Every experiment × variant at {ctx['scale']} scale on "
        f"{ctx['dataset']}. Diverged runs count in accuracy (as measured); failed runs do not.",
        "",
    ] + table(ctx["groups"])


def _settings(ctx: dict[str, Any]) -> list[str]:
    st = ctx["settings"]
    lines = ["## Settings and their provenance", "", st["legend"], ""]
    if st["common"]["rows"]:
        lines += ["Every experiment uses these unless it is listed below with its own value:", ""]
        lines += table(st["common"])
    if st["defaults"]:
        lines += [f"restudy's own defaults (the paper does not say): {st['defaults']}.", ""]
    same = [e["experiment"] for e in st["experiments"] if not e["table"]]
    if st["differences"]["rows"]:
        lines += ["Where an experiment differs:", ""] + table(st["differences"])
    if same:
        lines += [f"No other settings: {', '.join(same)}.", ""]
    for t in ctx["hyper_tables"]:
        lines += [f"**{t['title']}** (as reported in {t['document']}, {t['where']}):", ""]
        lines += table(t["table"])
    lines += ["Deviations from the original protocol:", ""]
    lines += [f"- {d}" for d in ctx["deviations"]] or ["- none: the paper protocol"]
    return lines + [""]


def _environment(ctx: dict[str, Any]) -> list[str]:
    c = ctx["cost"]
    items = "; ".join(f"{_escape(r[0]['text'])}: {_escape(r[1]['text'])}" for r in ctx["environment"]["rows"])
    lines = ["## Environment and cost", "", items + ".", ""]
    lines += [
        f"Runs: {c['runs']}; elapsed: {c['elapsed']}; run time summed over runs: {c['run_time']}; "
        f"workers: {c['workers']}. Per-run time by group: [All groups](#groups)."
    ]
    if c["command"]:
        lines += ["", f"Command: `{c['command']}`"]
    if c["estimate"]:
        lines += ["", c["estimate"]]
    lines.append("")
    if ctx["reused"]:
        lines += [
            f"⚠️ {len(ctx['reused'])} runs were reused from an earlier invocation whose "
            "environment fingerprint differs from the current one; their numbers may differ "
            "bit-for-bit from a fresh run:",
            "",
        ]
        lines += [f"- `{k}`" for k in ctx["reused"]] + [""]
    else:
        lines += ["Every run was made in this environment.", ""]
    return lines


def _next(ctx: dict[str, Any]) -> list[str]:
    n = ctx["next_steps"]
    lines = ["## What to do next", ""]
    for c in n["commands"]:
        lines.append(
            f"- To settle {', '.join(c['claims'])}: `{c['command']}` ({c['seeds']} seeds per variant; "
            f"about {c['estimate']} more on this machine, scaled from this run; finished runs are reused)."
        )
    if n["unknown"]:
        lines.append(f"- {', '.join(n['unknown'])}: more seeds would not settle it at the observed effect.")
    p = n["paper"]
    if p:
        waiting = f" It judges {', '.join(p['claims'])}." if p["claims"] else ""
        if p.get("leakage"):
            waiting += f" Its runs let the leakage guard judge {p['leakage']} reported train/test values."
        lines.append(f"- Paper scale: `{p['command']}`.{waiting}")
        for d in p["data"]:
            lines.append(f"  - {d}")
    if len(lines) == 2:
        lines.append("- Nothing: every claim has a verdict at this scale.")
    return lines + [""]


# The only HTML this module writes: anchors, folds and autolinks; any other "<" came from a study
# file's text (a statement, a source, a title) and is written as &lt;, so that a Markdown viewer
# that renders HTML never runs a <script> or an <img onerror> a study file carries.
_OWN_TAGS = re.compile(r'<(?!a id="[\w.:-]*">|/a>|/?details>|/?summary>|https?://[^\s<>"]*>)')


def _inert(text: str) -> str:
    return _OWN_TAGS.sub("&lt;", text)


def render_markdown(ctx: dict[str, Any]) -> str:
    """Renders the report as Markdown.

    Args:
        ctx: the view model of :func:`restudy.report.results.report_context`.

    Returns:
        The Markdown text.
    """
    parts = {
        "verdicts": _summary,
        "claims": _claims,
        "coverage": _coverage,
        "variability": _variability,
        "curves": _curves,
        "reported": _reported,
        "leakage": _leakage,
        "groups": _groups,
        "settings": _settings,
        "environment": _environment,
        "next": _next,
    }
    lines = _header(ctx)
    for anchor_id, _ in sections(ctx):
        part = parts[anchor_id](ctx)
        part[0] = part[0].replace("## ", f'## <a id="{anchor_id}"></a>', 1)
        lines += part
    # a heading needs no blank line after it: the report stays short to scroll
    # nor a blank line before a sub-heading (Markdown ends the paragraph above at a heading anyway)
    lines = [
        ln
        for i, ln in enumerate(lines)
        if not (
            ln == ""
            and ((i and lines[i - 1].startswith("#")) or lines[i + 1 : i + 2][:1] and lines[i + 1].startswith("### "))
        )
    ]
    return _inert("\n".join(lines).rstrip() + "\n")
