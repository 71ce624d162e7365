"""The HTML report: one self-contained file (inline CSS, figures as base64 PNG data URIs).

Lays out the same view model as the Markdown report with the jinja2 template
``templates/report.html.j2`` (autoescaped). Nothing in the page needs the network to be viewed.

The page has a table of contents with an anchor per section and claim, clickable links, every
table in a horizontal-scroll wrapper (readable at phone width) and long tables folded in
``<details>``.

Imports the Markdown renderer's section list only (jinja2 otherwise).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from .markdown import NOT_COMPARABLE_WHY, RATIOS_INTRO, SIDE_BY_SIDE, sections

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def emphasis(text: str) -> markupsafe.Markup:
    """Escapes ``text`` and turns ``*words*`` (Markdown emphasis) into ``<em>words</em>``."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(re.sub(r"\*([^*]+)\*", r"<em>\1</em>", escaped))


_URL = re.compile(r"https?://[^\s<>\"')\]]+")


def links(text: str) -> markupsafe.Markup:
    """Escapes ``text`` and makes every http(s) URL in it a link."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(_URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["emphasis"] = emphasis
    env.filters["links"] = links
    return env


def render_html(ctx: dict[str, Any], figure_files: dict[str, Path]) -> str:
    """Renders the report as one self-contained HTML page.

    Args:
        ctx: the view model of :func:`restudy.report.results.report_context`; its figure
            entries are the relative paths used as keys of ``figure_files``.
        figure_files: relative figure path → PNG file, embedded as data URIs.

    Returns:
        The HTML text.
    """
    images = {rel: data_uri(path) for rel, path in figure_files.items()}
    template = _environment().get_template(TEMPLATE)
    return template.render(
        ctx=ctx,
        images=images,
        sections=sections(ctx),
        ratios_intro=RATIOS_INTRO,
        side_by_side=SIDE_BY_SIDE,
        not_comparable_why=NOT_COMPARABLE_WHY,
    )
