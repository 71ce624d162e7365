"""The ``restudy`` command line: parses, calls library functions, renders. Computes nothing itself.

User errors (``RestudyError``) are shown as one panel on stderr with exit code 2, no traceback.
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from .errors import RestudyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Reproduce the claims of deep-learning papers under controlled randomness.",
)

INVOCATION = "invocation.json"


def _execution_mode(value: str) -> str:
    """``--execution``: an executor mode (``executor.EXECUTION_MODES``) other than ``inline``,
    which ``--workers 0`` selects."""
    from .executor import EXECUTION_MODES

    allowed = [m for m in EXECUTION_MODES if m != "inline"]
    if value not in allowed:
        raise typer.BadParameter(f"unknown execution mode {value!r}; allowed: {', '.join(allowed)}")
    return value


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RestudyError as e:
            from .console import error_panel

            error_panel(str(e), title=type(e).__name__)
            raise typer.Exit(2) from None

    return wrapper


@app.command("list")
@_user_errors
def list_cmd() -> None:
    """List the built-in studies."""
    from rich.table import Table

    from .console import console
    from .studyfile import builtin_studies, load_study

    table = Table(title="Built-in studies")
    for col in ("id", "paper", "experiments", "claims", "scales"):
        table.add_column(col)
    for sid, path in builtin_studies().items():
        st = load_study(path)
        table.add_row(
            sid,
            f"{st.paper.title} ({st.paper.venue} {st.paper.year or ''})".strip(),
            str(len(st.experiments)),
            str(len(st.claims)),
            ", ".join(st.scales) or "paper",
        )
    console.print(table)


@app.command()
@_user_errors
def show(
    study: str = typer.Argument(..., help="Built-in study id or path to a study YAML file."),
    scale: str = typer.Option("small", help="Scale whose settings are shown: smoke, small or paper."),
    settings: bool = typer.Option(
        False,
        "--settings",
        help="List every engine setting (type, default, "
        "constraint, when it applies) with the study's parts registered.",
    ),
    full: bool = typer.Option(False, "--full", help="Every setting of every experiment and variant."),
) -> None:
    """Show a study: claims, runs per experiment and scale, the settings it sets (--full: all)."""
    from .console import console
    from .plan import plan, validate
    from .study import SCALES
    from .studyfile import load_study

    st = load_study(study)
    if settings:
        validate(st)  # imports the study's module: its parts are listed with the built-in ones
        console.print(_settings_table())
        return
    runs = {sc: plan(st, sc) for sc in (scale, *[s for s in SCALES if s != scale])}  # checks --scale first
    for renderable in _show_renderables(st, scale, runs, full):
        console.print(renderable)


def _show_renderables(st: Any, scale: str, runs: dict[str, list], full: bool) -> list[Any]:
    """What ``restudy show`` prints: header, claims, experiments × scales, settings (compact: the
    ones the study sets, shared ones once; ``full``: every setting of every variant)."""
    from rich.markup import escape
    from rich.table import Table

    from .report.provenance import settings_views
    from .report.tables import value_text
    from .study import SCALES

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
        by_exp.setdefault(s.experiment, {})[s.variant_id] = {
            k: {"value": v, **s.provenance.get(k, {})} for k, v in s.settings.items()
        }
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


@app.command("settings")
@_user_errors
def settings_cmd() -> None:
    """List every engine setting: name, type, default, constraint, when it applies, help."""
    from .console import console

    console.print(_settings_table())


def _settings_table() -> Any:
    from rich.markup import escape
    from rich.table import Table

    from .settings import DECLARATIONS, declaration_row

    rows = [declaration_row(d) for d in DECLARATIONS]
    t = Table(title="Engine settings (model.*, data.*, method.* are passed to the part as arguments)")
    for col in rows[0]:
        t.add_column(col, overflow="fold", no_wrap=col in ("name", "type", "default"))
    for r in rows:
        t.add_row(*(escape(v) for v in r.values()))
    return t


@app.command(context_settings={"allow_extra_args": False})
@_user_errors
def run(
    study: str = typer.Argument(..., help="Built-in study id (see `restudy list`) or a study YAML file."),
    overrides: list[str] | None = typer.Argument(
        None, help="Setting overrides: key=value for every experiment, or experiment:key=value."
    ),
    scale: str = typer.Option("small", help="smoke (seconds), small (minutes on a CPU) or paper (original protocol)."),
    seeds: int | None = typer.Option(None, min=1, help="Seeds per variant (default: the study's, per scale)."),
    workers: int | None = typer.Option(
        None, min=0, help="Worker processes (default: one per core; 0 runs in this process)."
    ),
    threads: int = typer.Option(1, min=1, help="Intra-op threads per worker."),
    out: Path | None = typer.Option(None, help="Output directory (default: results/<study>-<scale>)."),
    fresh: bool = typer.Option(False, "--fresh", help="Redo runs that already finished."),
    execution: str = typer.Option(
        "auto",
        callback=_execution_mode,
        help="auto, stacked (train the seeds of tiny models as one "
        "stacked model) or pool (one run per worker process).",
    ),
    allow_mixed_env: bool = typer.Option(
        False,
        "--allow-mixed-env",
        help="Let runs reused from another environment (versions, CPU, threads, execution mode) enter "
        "the verdicts; without it a claim using them is inconclusive with that reason.",
    ),
) -> None:
    """Run a study (resuming finished runs), compare with the paper and write the report."""
    from rich.markup import escape

    from .console import RunProgress, console, verdict_table
    from .plan import plan
    from .runner import run_study
    from .safeio import atomic_write_text, write_json
    from .studyfile import load_study, parse_overrides, resolve_study_path

    path = resolve_study_path(study)
    st = load_study(path)
    ov = parse_overrides(overrides or [])
    specs = plan(st, scale, seeds=seeds, overrides=ov)  # the one plan; everything is checked before starting
    out = out or Path("results") / f"{st.id}-{scale}"
    _prepare_out(out, st.id, scale, fresh)
    atomic_write_text(out / "study.yaml", path.read_text(encoding="utf-8"))
    command = "restudy " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    resume = _resume_command(out)
    write_json(
        out / INVOCATION,
        {
            "study": st.id,
            "study_file": str(path.resolve()),
            "scale": scale,
            "seeds": seeds,
            "overrides": overrides or [],
            "command": command,
        },
    )
    t_start = time.perf_counter()
    data = st.scales[scale].dataset if scale in st.scales and st.scales[scale].dataset else specs[0].dataset_label
    console.print(f"[bold]{st.id}[/] at {scale} scale on {data}: {len(specs)} runs → {out}")
    try:
        with RunProgress() as progress:
            outcome = run_study(
                st,
                scale,
                out,
                seeds=seeds,
                workers=workers,
                threads=threads,
                fresh=fresh,
                overrides=ov,
                progress=_with_notices(progress, resume),
                study_path=str(path),
                execution=execution,
                specs=specs,
            )
    except KeyboardInterrupt:
        console.print("[bold red]stopped[/]: the finished runs are kept. To resume, type:")
        console.print(f"  {escape(resume)}", soft_wrap=True)
        raise typer.Exit(130) from None
    if outcome.interrupted:
        left = len(outcome.specs) - len(outcome.records)
        console.print(
            f"[bold yellow]interrupted[/]: {len(outcome.executed)} run(s) done now, {left} not run; "
            "no report written. To resume, type:"
        )
        console.print(f"  {escape(resume)}", soft_wrap=True)
        raise typer.Exit(130)
    t_analysis = time.perf_counter()
    comparison, paths = _compare_and_report(
        st,
        scale,
        out,
        outcome.records,
        outcome.env,
        command=command,
        specs=outcome.specs,
        env_mismatch=outcome.env_mismatch,
        wall_s=outcome.wall_s,
        workers=workers,
        allow_mixed_env=allow_mixed_env,
    )
    t_end = time.perf_counter()
    console.print(verdict_table(comparison))
    console.print(
        closing_line(
            len(outcome.executed),
            len(outcome.reused),
            t_end - t_start,
            t_analysis - t_start,
            t_end - t_analysis,
            paths.get("html", out / "report.html"),
        )
    )


def _prepare_out(out: Path, study_id: str, scale: str, fresh: bool) -> None:
    """Make ``out`` (a writable folder); refuse a folder holding another study's (or scale's)
    results unless ``fresh``."""
    import os

    from .safeio import read_json

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


def _resume_command(out: Path) -> str:
    """The command that resumes this run: the same one, with its output folder named."""
    args = list(sys.argv[1:])
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return "restudy " + " ".join(shlex.quote(a) for a in args)


def _with_notices(progress: Callable[[str, dict], None], resume: str) -> Callable[[str, dict], None]:
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
    from .report.tables import duration

    share = f" ({analysis_s / training_s:.0%} of training)" if executed and training_s > 0 else ""
    return (
        f"ran {executed} run(s), reused {reused}; wall time {duration(wall_s)}: training "
        f"{duration(training_s)}, comparison and report {duration(analysis_s)}{share}. Report: {html}"
    )


def _paper_info(st: Any) -> tuple[dict, list[str]]:
    """The paper-scale settings (to mark values that differ from them) and the data files paper
    scale reads (for the report's next steps), resolved per variant without planning runs; empty
    when the paper scale cannot be resolved."""
    from .data.cifar import CIFAR10, CIFAR100
    from .errors import RestudyError as _Err
    from .plan import resolve_settings, variants

    settings: dict[str, dict[str, list]] = {}
    try:
        for exp in st.experiments:
            for var in variants(st, exp.id, "paper"):
                for k, h in resolve_settings(st, exp.id, var, "paper").items():
                    settings.setdefault(exp.id, {}).setdefault(k, []).append(
                        {"value": h.value, "provenance": h.provenance}
                    )
    except _Err:
        return {}, []
    names = {str(e["value"]) for names in settings.values() for e in names.get("data", [])}
    data = [
        f"{spec.name}: {spec.folder}/ with {', '.join(spec.files)} under $RESTUDY_DATA "
        f"(default ~/.cache/restudy/data), from {spec.url}"
        for spec in (CIFAR10, CIFAR100)
        if spec.name in names
    ]
    return settings, data


def _compare_and_report(
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
):
    """Compares the runs with the claims and writes the report, showing each step's progress."""
    from .compare import compare, load_predictions
    from .console import AnalysisProgress
    from .record import row
    from .report import write_report

    with AnalysisProgress() as analysis:
        analysis.step("comparing runs with the claims")
        comparison = compare(
            st,
            scale,
            [row(r) for r in records],
            predictions=load_predictions(out),
            env_mismatch=env_mismatch,
            allow_mixed_env=allow_mixed_env,
        )
        analysis.step("reading the paper-scale plan")
        plan_info = _plan_info(st, scale, specs, env_mismatch, wall_s, workers, command)
        analysis.step("drawing figures")
        env = {**env, **_run_env(records)}
        paths = write_report(out, st, scale, comparison, records, env, plan_info=plan_info, progress=analysis.report)
    return comparison, paths


def _plan_info(
    st: Any, scale: str, specs: list, env_mismatch: list[str], wall_s: float | None, workers: int | None, command: str
) -> dict:
    """What the report says about the plan: scale, data, deviations, settings with provenance (and
    the paper scale's), cost and command."""
    from .executor import default_workers

    paper_settings, paper_data = _paper_info(st)
    sc = st.scales.get(scale)
    settings: dict[str, dict[str, dict]] = {}
    for s in specs:
        settings.setdefault(s.experiment, {})[s.variant_id] = {
            k: {"value": v, **s.provenance.get(k, {})} for k, v in s.settings.items()
        }
    return {
        "scale_description": sc.description if sc else "",
        "dataset": (sc.dataset if sc and sc.dataset else (specs[0].dataset_label if specs else "")),
        "deviations": list(sc.deviations) if sc else [],
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
    for key in ("threads", "determinism", "memory_format", "device", "gpu", "cuda", "cudnn"):
        seen = []
        for r in records:
            v = r.get("env", {}).get(key)
            if v is not None and v not in seen:
                seen.append(v)
        if seen:
            out[key] = seen[0] if len(seen) == 1 else seen
    return out


@app.command()
@_user_errors
def report(directory: Path = typer.Argument(..., help="Output directory of a `restudy run`.")) -> None:
    """Re-create the report of a finished (or partly finished) study from its run store."""
    from .console import console, verdict_table
    from .env import capture
    from .plan import plan
    from .safeio import read_json
    from .store import Store
    from .studyfile import load_study, parse_overrides

    inv_path = directory / INVOCATION
    if not inv_path.is_file():
        raise RestudyError("not a restudy output directory (no invocation.json)", where=str(directory))
    inv = read_json(inv_path)
    if not isinstance(inv, dict) or not isinstance(inv.get("scale"), str):
        raise RestudyError(
            f"{INVOCATION} is not what restudy writes (a mapping with the study, scale and overrides)",
            where=str(inv_path),
            got=type(inv).__name__ if not isinstance(inv, dict) else inv.get("scale"),
        )
    if not isinstance(inv.get("overrides", []), list) or not isinstance(inv.get("seeds"), (int, type(None))):
        raise RestudyError(f"{INVOCATION}: 'overrides' must be a list and 'seeds' a number", where=str(inv_path))
    if not (directory / "study.yaml").is_file():
        raise RestudyError("the output folder has no study.yaml (the study it ran)", where=str(directory))
    # The study's own module lives next to the original study file, not in the output directory.
    origin = Path(inv["study_file"]).parent if isinstance(inv.get("study_file"), str) and inv["study_file"] else None
    st = load_study(directory / "study.yaml", module_dir=origin if origin and origin.is_dir() else None)
    specs = plan(st, inv["scale"], seeds=inv.get("seeds"), overrides=parse_overrides(inv.get("overrides", [])))
    with Store(directory) as store:
        store.reindex()
        records = store.records([s.key for s in specs])
        invalid = store.invalid()
    if invalid:
        from rich.markup import escape

        console.print(f"[yellow]{len(invalid)} stored run(s) are invalid and not used (`restudy run` redoes them):[/]")
        for key, why in sorted(invalid.items()):
            console.print(f"  {key}: {escape(why[:300])}")
    if not records:
        raise RestudyError("no finished runs in this directory yet", where=str(directory))
    env = capture(threads=1)
    t_start = time.perf_counter()
    comparison, paths = _compare_and_report(
        st,
        inv["scale"],
        directory,
        records,
        env,
        command=inv.get("command", ""),
        specs=specs,
        env_mismatch=[],
        wall_s=None,  # the original command's wall time is not recorded in the store
        workers=None,
    )
    console.print(verdict_table(comparison))
    console.print(
        f"{len(records)} of {len(specs)} runs; comparison and report took "
        f"{time.perf_counter() - t_start:.1f} s. Report: {paths.get('html', directory / 'report.html')}"
    )


@app.command()
@_user_errors
def env(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the environment restudy records with every run."""
    from rich.table import Table

    from .console import console
    from .env import capture

    e = capture()
    if as_json:
        typer.echo(json.dumps(e, indent=2, default=str))
        return
    t = Table(title="Environment")
    t.add_column("key")
    t.add_column("value", overflow="fold")
    for k, v in e.items():
        if k != "packages":
            t.add_row(k, json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v))
    t.add_row("packages", f"{len(e.get('packages', {}))} installed (use --json for the list)")
    console.print(t)


@app.command()
def schema() -> None:
    """Print the JSON Schema of study files."""
    from .study import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


if __name__ == "__main__":
    app()
