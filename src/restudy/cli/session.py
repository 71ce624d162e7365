"""The parts of ``restudy run`` and ``restudy report`` around the runner: the output folder's checks,
the resume command, notices while runs go on, and comparing plus writing the report with progress."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from ..errors import RestudyError

INVOCATION = "invocation.json"
ONLY_HELP = (
    "a subset: KEY=VALUE on the experiment, a variant axis or a setting (repeatable; one key's "
    "values: any of them, different keys: all), e.g. --only model=resnet18 --only epochs=20."
)


def prepare_out(out: Path, study_id: str, scale: str, fresh: bool) -> None:
    """Make ``out`` (a writable folder); refuse a folder holding another study's (or scale's)
    results unless ``fresh``."""
    import os

    from ..storage.safeio import read_json

    if out.exists() and not out.is_dir():
        raise RestudyError("--out names a file, not a folder", where=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RestudyError(f"cannot create the output folder: {e.strerror or e}", where=str(out)) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RestudyError("the output folder is not writable; choose another --out", where=str(out))
    inv_path = out / INVOCATION
    if fresh or not inv_path.exists():
        return
    try:
        inv = read_json(inv_path)
    except RestudyError:
        inv = None
    if not isinstance(inv, dict):
        raise RestudyError(
            f"{INVOCATION} here is not one restudy wrote; use another --out, or --fresh to start over here",
            where=str(inv_path),
        )
    if (inv.get("study"), inv.get("scale")) != (study_id, scale):
        raise RestudyError(
            f"this folder holds the results of study '{inv.get('study')}' at scale '{inv.get('scale')}'; "
            f"running '{study_id}' at scale '{scale}' here would mix them. Use another --out, or --fresh "
            "to start over here",
            where=str(out),
        )


def rerun_of(study_id: str, study_file: str | None, out: Path, overrides: list[str], only: list[str]) -> dict:
    """What a command continuing a run names (:func:`restudy.spec.studyfile.run_command`): the study
    as ``restudy run`` finds it again (its built-in id or its file's absolute path; the output
    folder's copy when the original file is gone), the output folder, overrides and ``--only``."""
    from ..spec.studyfile import builtin_studies, study_argument

    if study_file and not Path(study_file).is_file() and study_id not in builtin_studies():
        study_file = str(out / "study.yaml")
    return {
        "study": study_argument(study_file, study_id),
        "out": str(out),
        "overrides": [str(o) for o in overrides],
        "only": [str(o) for o in only],
    }


def resume_command(out: Path) -> str:
    """The command that resumes this run: the same one, with its output folder named."""
    args = list(sys.argv[1:])
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return "restudy " + " ".join(shlex.quote(a) for a in args)


def with_notices(progress: Callable[[str, dict], None], resume: str) -> Callable[[str, dict], None]:
    """``progress`` plus what a user must read while a study runs: runs found invalid (redone),
    runs taken over from a dead driver, and what a Ctrl-C does."""
    from rich.markup import escape

    from .console import console

    def notify(event: str, info: dict) -> None:
        if event == "invalid":
            console.print(f"[yellow]{len(info['runs'])} stored run(s) are invalid and will be redone:[/]")
            for key, why in sorted(info["runs"].items()):
                console.print(f"  {key}: {escape(why[:300])}")
        elif event == "takeover":
            console.print(f"taking over {len(info['keys'])} run(s) left by a restudy process that stopped")
        elif event == "interrupt":
            console.print(
                "[bold yellow]Ctrl-C[/]: no more runs will start; the running ones finish. "
                "Press Ctrl-C again to stop now."
            )
        progress(event, info)

    return notify


def closing_line(executed: int, reused: int, wall_s: float, training_s: float, analysis_s: float, html: Any) -> str:
    """The last line of ``restudy run``: the wall time of the whole command (not a sum of run
    times), split into training and analysis, and where the report is."""
    from ..display.tables import duration

    share = f" ({analysis_s / training_s:.0%} of training)" if executed and training_s > 0 else ""
    return (
        f"ran {executed} run(s), reused {reused}; wall time {duration(wall_s)}: training "
        f"{duration(training_s)}, comparison and report {duration(analysis_s)}{share}. Report: {html}"
    )


def _paper_info(st: Any, scale: str, specs: list) -> tuple[dict, list[str]]:
    """The paper-scale settings (to mark values that differ from them) and the files the paper
    scale's data sets read (for the report's next steps, as each data set's factory declares them
    in ``files_needed``); the runs of this command when it ran at paper scale, else one seed of
    the paper plan; empty when the paper scale cannot be planned."""
    from .. import plugins
    from ..errors import RestudyError as _Err
    from ..planning.runs import variant_settings, variants

    overridden = any(e.get("source") == "command-line override" for s in specs for e in s.settings.provenance.values())
    if scale == "paper" and specs and not overridden:  # this command's own runs: nothing to resolve again
        paper = [(s.experiment, s.settings) for s in specs if s.seed_index == 0]
    else:
        try:
            paper = [
                (exp.id, variant_settings(st, exp.id, var, "paper"))
                for exp in st.experiments
                for var in variants(st, exp.id, "paper")
            ]
        except _Err:
            return {}, []
    settings: dict[str, dict[str, list]] = {}
    for experiment, run_settings in paper:
        for k, entry in run_settings.table().items():
            settings.setdefault(experiment, {}).setdefault(k, []).append(
                {"value": entry["value"], "provenance": entry.get("provenance")}
            )
    data: list[str] = []
    for name in sorted({s.engine.data for _, s in paper}):
        needed = (
            getattr(plugins.get("dataset", name), "files_needed", None) if name in plugins.names("dataset") else None
        )
        if isinstance(needed, str) and needed not in data:
            data.append(needed)
    return settings, data


def compare_and_report(
    st: Any,
    scale: str,
    out: Path,
    records: list[dict],
    env: dict,
    *,
    command: str,
    specs: list,
    env_mismatch: list[str],
    wall_s: float | None,
    workers: int | None,
    allow_mixed_env: bool = False,
    only: list[str] | None = None,
    rerun: dict[str, Any] | None = None,
):
    """Compares the runs with the claims and writes the report, showing each step's progress
    (``only``: the ``--only`` items when the command ran a subset of the study; ``rerun``: what a
    command that continues this run names, from :func:`rerun_of`)."""
    from ..compare import compare, load_predictions
    from ..compare.stability import RESAMPLES
    from ..estimate.planfile import estimate_vs_actual
    from ..report import write_report
    from ..storage.record import row
    from .console import AnalysisProgress

    training_ended = datetime.now(UTC)  # the runs of this command started within wall_s before this
    looks = _read_looks(out, st.id, scale)
    with AnalysisProgress() as analysis:
        analysis.step("comparing runs with the claims")
        comparison = compare(
            st,
            scale,
            [row(r) for r in records],
            predictions=load_predictions(out),
            env_mismatch=env_mismatch,
            allow_mixed_env=allow_mixed_env,
            subset=_subset(st, scale, specs, only),
            looks=looks,
            resamples=RESAMPLES,
        )
        _write_looks(out, st.id, scale, looks, comparison)
        analysis.step("reading the paper-scale plan")
        plan_info = _plan_info(st, scale, specs, env_mismatch, wall_s, workers, command)
        plan_info["rerun"] = rerun or rerun_of(st.id, None, out, [], only or [])
        plan_info["estimate"] = estimate_vs_actual(  # restudy plan's estimate beside the actual time
            out, [s.key for s in specs], records, wall_s, training_ended
        )
        analysis.step("drawing figures")
        env = {**env, **_run_env(records)}
        paths = write_report(out, st, scale, comparison, records, env, plan_info=plan_info, progress=analysis.report)
    return comparison, paths


def _read_looks(out: Path, study_id: str, scale: str) -> dict[str, list]:
    """The earlier looks at each claim of this study and scale in ``out`` (none when absent or
    written for another study or scale)."""
    from ..storage.artifacts import LOOKS_FILE
    from ..storage.safeio import read_json

    path = out / LOOKS_FILE
    if not path.is_file():
        return {}
    try:
        data = read_json(path)
    except RestudyError:
        return {}
    if not isinstance(data, dict) or (data.get("study"), data.get("scale")) != (study_id, scale):
        return {}
    claims = data.get("claims")
    return {k: v for k, v in claims.items() if isinstance(v, list)} if isinstance(claims, dict) else {}


def _write_looks(out: Path, study_id: str, scale: str, looks: dict[str, list], comparison: Any) -> None:
    """Add this report's looks (one per claim with a verdict and a seed count not seen before)."""
    from ..compare.looks import Look, record
    from ..storage.artifacts import LOOKS_FILE
    from ..storage.safeio import write_json

    updated = dict(looks)
    for c in comparison.claims:
        info = (c.evidence or {}).get("look")
        if c.verdict == "not_evaluated" or not isinstance(info, dict):
            continue
        look = Look(info["index"], info["alpha"], info["first_seed"], info["seeds"])
        updated[c.id] = record(looks.get(c.id, ()), look, c.verdict)
    if updated != looks:
        write_json(out / LOOKS_FILE, {"study": study_id, "scale": scale, "claims": updated})


def _subset(st: Any, scale: str, specs: list, only: list[str] | None) -> Any:
    """The runs planned by a command that ran part of the study (None without ``--only``), and the
    data it ran when that is narrower than the scale's (its ``data`` settings, against the whole
    plan's)."""
    from ..compare import Subset
    from ..planning.runs import plan

    if not only:
        return None
    what = " ".join(f"--only {shlex.quote(str(x))}" for x in only)
    ran = sorted({str(s.engine.data) for s in specs})
    every = {str(s.engine.data) for s in plan(st, scale, seeds=1)}
    sc = st.scales.get(scale)
    data = ""
    if sc is not None and sc.dataset and len(ran) < len(every):
        data = f"{', '.join(ran)} only (the {scale} scale runs {sc.dataset})"
    return Subset(tuple((s.experiment, dict(s.variant)) for s in specs), what, data)


def _plan_info(
    st: Any, scale: str, specs: list, env_mismatch: list[str], wall_s: float | None, workers: int | None, command: str
) -> dict:
    """What the report says about the plan: scale, data, deviations, settings with provenance (and
    the paper scale's), cost and command."""
    from ..execution.executor import default_workers
    from ..planning.runs import seeds_for, variants
    from ..report.provenance import measured_deviations

    paper_settings, paper_data = _paper_info(st, scale, specs)
    sc = st.scales.get(scale)
    settings: dict[str, dict[str, dict]] = {}
    seeds: dict[str, int] = {}
    for s in specs:
        settings.setdefault(s.experiment, {})[s.variant_id] = s.settings.table()
        seeds[s.experiment] = max(seeds.get(s.experiment, 0), s.seed_index + 1)
    ran = {s.experiment for s in specs}
    paper_seeds = {e.id: seeds_for(st, e.id, "paper") for e in st.experiments if e.id in ran}
    try:
        paper_variants = {e.id: len(variants(st, e.id, "paper")) for e in st.experiments if e.id in ran}
    except RestudyError:
        paper_variants = {}
    declared = list(sc.deviations) if sc else []
    measured = measured_deviations(settings, paper_settings, seeds, paper_seeds, paper_variants)
    return {
        "scale_description": sc.description if sc else "",
        "dataset": (sc.dataset if sc and sc.dataset else (specs[0].dataset_label if specs else "")),
        "deviations": declared + [f"measured: {d}" for d in measured],
        "settings": settings,
        "reused_env_mismatch": env_mismatch,
        "wall_s_total": wall_s,
        "workers": workers if workers is not None else default_workers(),
        "command": command,
        "paper_settings": paper_settings,
        "paper_data": paper_data,
    }


def _run_env(records: list[dict]) -> dict:
    """What the workers recorded (threads, determinism flags, memory format), from the runs
    themselves; values that differ between runs are listed."""
    out: dict = {}
    for key in (
        "threads",
        "determinism",
        "memory_format",
        "device",
        "device_notice",
        "gpu",
        "gpu_count",
        "gpu_memory_gib",
        "driver",
        "cuda",
        "cudnn",
        "gpu_flags",
        "runs_per_gpu",
    ):
        seen = []
        for r in records:
            v = r.get("env", {}).get(key)
            if v is not None and v not in seen:
                seen.append(v)
        if seen:
            out[key] = seen[0] if len(seen) == 1 else seen
    return out


def execution_mode(value: str) -> str:
    """``--execution``: an executor mode (``executor.EXECUTION_MODES``) other than ``inline``,
    which ``--workers 0`` selects."""
    from ..execution.executor import EXECUTION_MODES

    allowed = [m for m in EXECUTION_MODES if m != "inline"]
    if value not in allowed:
        raise typer.BadParameter(f"unknown execution mode {value!r}; allowed: {', '.join(allowed)}")
    return value
