"""What ``restudy show`` and ``restudy settings`` print: a study's claims, runs per experiment and
scale and its settings, or the table of every engine setting (rich renderables, printed by the CLI)."""

from __future__ import annotations

from typing import Any


def show_renderables(st: Any, scale: str, runs: dict[str, list], full: bool) -> list[Any]:
    """What ``restudy show`` prints: header, claims, experiments × scales, settings (compact: the
    ones the study sets, shared ones once; ``full``: every setting of every variant)."""
    from rich.markup import escape
    from rich.table import Table

    from ..display.tables import value_text
    from ..report.provenance import settings_views
    from ..spec.values import SCALES

    sc = st.scales.get(scale)
    out: list[Any] = [
        f"[bold]{escape(st.title)}[/]\n{escape(', '.join(st.paper.authors))} — {st.paper.venue} "
        f"{st.paper.year or ''}\n{st.paper.url}"
    ]
    claims = Table(title="Claims")
    for col in ("id", "kind", "statement"):
        claims.add_column(col, overflow="fold")
    for c in st.claims:
        claims.add_row(escape(c.id), c.kind, escape(c.statement))
    out.append(claims)
    grid = Table(title="Runs per experiment and scale (variants × seeds)")
    grid.add_column("experiment")
    for s in SCALES:
        grid.add_column(
            s + (" (data: " + st.scales[s].dataset + ")" if s in st.scales and st.scales[s].dataset else "")
        )
    for exp in st.experiments:
        cells = []
        for s in SCALES:
            specs = [r for r in runs[s] if r.experiment == exp.id]
            variants = len({r.variant_id for r in specs})
            cells.append(f"{len(specs)} ({variants} × {len(specs) // max(1, variants)})" if specs else "not run")
        grid.add_row(exp.id, *cells)
    grid.add_row("[bold]total", *[f"[bold]{len(runs[s])}" for s in SCALES])
    out.append(grid)
    absent = [e.id for e in st.experiments if not any(r.experiment == e.id for r in runs[scale])]
    if absent:
        out.append(f"Not run at {scale} scale: {', '.join(absent)}.")
    if sc is not None and sc.description:
        out.append(f"{scale}: {escape(sc.description)}")
    specs = runs[scale]
    by_exp: dict[str, dict[str, dict]] = {}
    for s in specs:
        by_exp.setdefault(s.experiment, {})[s.variant_id] = s.settings.table()
    if full:
        for exp, variants in by_exp.items():
            for vid, values in variants.items():
                t = Table(title=f"{exp}, variant {vid} at {scale} scale" if vid != "-" else f"{exp} at {scale} scale")
                for col in ("setting", "value", "provenance", "source"):
                    t.add_column(col, overflow="fold")
                for k, e in sorted(values.items()):
                    style = "bold yellow" if e.get("provenance") == "assumed" else ""
                    prov = f"[{style}]{e.get('provenance')}[/]" if style else str(e.get("provenance"))
                    t.add_row(k, escape(value_text(e["value"])), prov, escape(str(e.get("source", ""))))
                out.append(t)
        return out
    set_here = {
        exp: {
            vid: {k: e for k, e in values.items() if not str(e.get("source", "")).startswith("restudy default")}
            for vid, values in variants.items()
        }
        for exp, variants in by_exp.items()
    }
    view = settings_views(st, set_here)
    for title, tab in (
        (f"Settings the study sets at {scale} scale (every experiment, unless listed below)", view["common"]),
        ("Where an experiment differs", view["differences"]),
    ):
        if not tab["rows"]:
            continue
        t = Table(title=title)
        for col in tab["headers"]:
            t.add_column(col, overflow="fold")
        for row in tab["rows"]:
            t.add_row(*(escape(c["text"]) for c in row))
        out.append(t)
    same = [e["experiment"] for e in view["experiments"] if not e["table"]]
    if same:
        out.append(f"No other settings: {', '.join(same)}.")
    out.append("restudy's own defaults are left out: `--full` shows every setting, `--settings` every engine setting.")
    return out


def parts_table(named: dict[str, set[str]] | None = None) -> Any:
    """The arguments of registered parts (``named``: only these names per kind; default every
    registered part of the kinds a study sets arguments of): what ``model.*``, ``data.*``,
    ``method.*`` and ``transform.*`` settings a study may give each."""
    from rich.markup import escape
    from rich.table import Table

    from .. import plugins
    from ..spec.parts import PREFIX_OF, arguments, import_path, takes_any

    t = Table(title="Part arguments (set as data.ARG, model.ARG, method.ARG, transform.ARG)")
    for col in ("setting", "part", "argument", "type", "default", "help"):
        t.add_column(col, overflow="fold", no_wrap=col in ("setting", "argument", "type"))
    for kind, prefix in PREFIX_OF.items():
        for name in sorted(named.get(kind, set()) if named is not None else plugins.names(kind)):
            args = arguments(kind, name)
            fn = plugins.get(kind, name)
            part = f"{name} ({import_path(fn)})"
            if not args:
                t.add_row(prefix, escape(part), "(none)", "", "", "any keyword" if takes_any(fn) else "")
            for a in args:
                t.add_row(
                    escape(f"{prefix}.{a.name}"),
                    escape(part),
                    a.name,
                    escape(a.type),
                    escape(a.default_text()),
                    escape(a.help),
                )
    return t


def settings_table() -> Any:
    from rich.markup import escape
    from rich.table import Table

    from ..spec.settings import DECLARATIONS, declaration_row

    rows = [declaration_row(d) for d in DECLARATIONS]
    t = Table(title="Engine settings (model.*, data.*, method.* are passed to the part as arguments)")
    for col in rows[0]:
        t.add_column(col, overflow="fold", no_wrap=col in ("name", "type", "default"))
    for r in rows:
        t.add_row(*(escape(v) for v in r.values()))
    return t
