"""Reports: ``report.md``, one self-contained ``report.html``, ``figures/*.png`` and ``results.json``.

``write_report`` is the only function with side effects: it draws the figures (``plots``), builds
the view model and ``results.json`` (``results``), renders Markdown (``markdown``) and HTML
(``html``) from the same view model, and writes the files.

Imports compare, claims, spec and storage.safeio (no torch).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import compare as cmp
from ..spec.study import Study
from ..storage.safeio import atomic_write_text, write_json
from . import html, markdown, plots, results

__all__ = ["write_report"]

log = logging.getLogger(__name__)
FIGURES = "figures"


def _at_scale(records: Sequence[dict[str, Any]], scale: str) -> list[dict[str, Any]]:
    """Records of ``scale`` (records that do not say their scale are kept)."""
    return [r for r in records if (r.get("spec") or {}).get("scale") in (scale, None)]


def write_report(
    out_dir: Path,
    study: Study,
    scale: str,
    comparison: cmp.Comparison,
    records: list[dict[str, Any]],
    env: dict[str, Any],
    *,
    plan_info: dict[str, Any],
    progress: Any = None,
) -> dict[str, Path]:
    """Writes the report of one study at one scale.

    Args:
        out_dir: the folder to write into (created if needed).
        study: the study.
        scale: the scale of the runs.
        comparison: :func:`restudy.compare.compare` of those runs.
        records: full run records (``key, spec, status, reason, metrics, curves, timings, env``).
        env: the environment of this invocation (:func:`restudy.storage.env.capture`).
        plan_info: ``scale_description, dataset, deviations, settings`` (experiment → variant →
            setting → value/provenance/source), ``reused_env_mismatch`` (run keys),
            ``wall_s_total, workers, command``; optionally ``paper_settings`` (experiment →
            setting → [{value, provenance}] at paper scale) and ``paper_data`` (lines naming the
            files paper scale reads).
        progress: called as ``progress(step, done, total)`` while figures are drawn
            (``"figures"``) and the files written (``"files"``).

    Returns:
        ``markdown``, ``html``, ``results`` (the files) and ``figures`` (the folder) →
        path, plus ``"claim:<id>"`` / ``"curves:<experiment>"`` → each figure drawn.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = _at_scale(records, scale)
    notify = progress or (lambda step, done, total: None)
    figures = plots.make_figures(
        out_dir / FIGURES,
        study,
        comparison,
        records,
        progress=lambda d, n: notify("figures", d, n),
        workers=min(int(plan_info.get("workers") or 1), os.cpu_count() or 1),
    )
    relative = {key: f"{FIGURES}/{path.name}" for key, path in figures.items()}
    ctx = results.report_context(study, scale, comparison, records, env, plan_info, relative)
    paths = {
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
        "results": out_dir / "results.json",
        "figures": out_dir / FIGURES,
    }
    atomic_write_text(paths["markdown"], markdown.render_markdown(ctx))
    files = {relative[key]: path for key, path in figures.items()}
    atomic_write_text(paths["html"], html.render_html(ctx, files))
    write_json(paths["results"], results.build_results(study, scale, comparison, records, env, plan_info))
    notify("files", 1, 1)
    log.info("wrote report to %s (%d figures)", out_dir, len(figures))
    return {**paths, **figures}
