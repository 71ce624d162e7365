"""The ``restudy`` command line (typer): parses, calls library functions, renders. Computes nothing itself.

``show.py`` builds what `show` prints; ``session.py`` holds what `run` and `report` do around the runner.

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

from ..errors import RestudyError
from .session import (
    INVOCATION,
    ONLY_HELP,
    closing_line,
    compare_and_report,
    execution_mode,
    prepare_out,
    rerun_of,
    resume_command,
    with_notices,
)
from .show import parts_table, settings_table, show_renderables
from .weights import register as register_weights

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Reproduce the claims of deep-learning papers under controlled randomness.",
)


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

    from ..spec.studyfile import builtin_studies, load_study
    from .console import console

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
    from ..planning.runs import plan, validate
    from ..spec.studyfile import load_study
    from ..spec.values import SCALES
    from .console import console

    st = load_study(study)
    if settings:
        validate(st)  # imports the study's module: its parts are listed with the built-in ones
        console.print(settings_table())
        console.print(parts_table(_parts_named(st)))
        return
    runs = {sc: plan(st, sc) for sc in (scale, *[s for s in SCALES if s != scale])}  # checks --scale first
    for renderable in show_renderables(st, scale, runs, full):
        console.print(renderable)


def _parts_named(st: Any) -> dict[str, set[str]]:
    """The parts a study names at any scale, per kind (model, dataset, method, transform)."""
    from ..planning.runs import plan
    from ..spec.parts import SETTING_OF
    from ..spec.values import SCALES

    named: dict[str, set[str]] = {}
    for sc in SCALES:
        for spec in plan(st, sc):
            v = spec.settings.values
            for kind, setting in SETTING_OF.items():
                for name in (v.get(setting) or []) if kind == "transform" else [v.get(setting)]:
                    if name:
                        named.setdefault(kind, set()).add(str(name))
    return named


@app.command("new")
@_user_errors
def new(
    name: str = typer.Argument(..., help="The new study's id (e.g. label-smoothing): its folder's name too."),
    from_study: str | None = typer.Option(
        None, "--from", help="Start from a copy of this built-in study's file instead of the example."
    ),
    into: Path | None = typer.Option(None, "--dir", help="The folder to write (default: ./NAME); it must be empty."),
) -> None:
    """Write a new study, ready to run at smoke scale: a commented study file and a module with one
    example of every plug-in kind (or, with --from, a copy of a built-in study)."""
    from rich.markup import escape

    from .console import console
    from .new import scaffold

    folder = into or Path(name)
    written = scaffold(name, folder, from_study)
    study = folder / "study.yaml"
    console.print("wrote " + ", ".join(escape(str(p)) for p in written))
    if from_study:
        console.print(f"Its parts are still those of the built-in study {escape(from_study)} (its `module:` line).")
    console.print(
        f"Next: `restudy run {escape(str(study))} --scale smoke` (seconds), then edit the claims, tables and "
        f"settings; `restudy show {escape(str(study))} --settings` lists every setting and part argument."
    )


@app.command("settings")
@_user_errors
def settings_cmd() -> None:
    """List every engine setting (name, type, default, constraint, when it applies, help) and the
    arguments of every registered model, data set, method and transform."""
    from .console import console

    console.print(settings_table())
    console.print(parts_table())


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
    runs_per_gpu: str = typer.Option(
        "auto",
        "--runs-per-gpu",
        help="On CUDA: runs trained at once per GPU, one worker process each: auto (from one run's "
        "measured memory, the free memory and the CPU cores) or a number.",
    ),
    out: Path | None = typer.Option(None, help="Output directory (default: results/<study>-<scale>)."),
    fresh: bool = typer.Option(False, "--fresh", help="Redo runs that already finished."),
    execution: str = typer.Option(
        "auto",
        callback=execution_mode,
        help="auto, stacked (train the seeds of tiny models as one "
        "stacked model) or pool (one run per worker process).",
    ),
    executor: str = typer.Option(
        "local", help="local (a process pool on this machine) or ray (the Ray cluster at --address)."
    ),
    address: str | None = typer.Option(
        None,
        help="--executor ray: the cluster to join ('auto': the one `ray start` runs here, or host:port; "
        "default: that one if any, else a new local Ray instance).",
    ),
    retries: int | None = typer.Option(
        None, min=0, help="--executor ray: re-runs of a run whose worker or node died (default 3, Ray's own)."
    ),
    gpus_per_run: float | None = typer.Option(
        None, min=0, help="--executor ray: GPUs per run, a fraction shares one (default: 1 on a cluster with GPUs)."
    ),
    allow_mixed_env: bool = typer.Option(
        False,
        "--allow-mixed-env",
        help="Let runs reused from another environment (versions, CPU, threads, execution mode) enter "
        "the verdicts; without it a claim using them is inconclusive with that reason.",
    ),
    only: list[str] | None = typer.Option(None, "--only", help="Run " + ONLY_HELP),
) -> None:
    """Run a study (resuming finished runs), compare with the paper and write the report."""
    from rich.markup import escape

    from ..execution.executor import check_runs_per_gpu
    from ..execution.runner import run_study
    from ..planning.runs import parse_only, plan
    from ..spec.studyfile import load_study, parse_overrides, resolve_study_path
    from ..storage.safeio import atomic_write_text, write_json
    from .console import RunProgress, console, verdict_table

    check_runs_per_gpu(runs_per_gpu)
    path = resolve_study_path(study)
    st = load_study(path)
    ov = parse_overrides(overrides or [])
    specs = plan(st, scale, seeds=seeds, overrides=ov, only=parse_only(only or []))  # the one plan, checked first
    runner_executor = _ray_executor(specs, executor, execution, threads, address, retries, gpus_per_run, workers)
    out = out or Path("results") / f"{st.id}-{scale}"
    prepare_out(out, st.id, scale, fresh)
    atomic_write_text(out / "study.yaml", path.read_text(encoding="utf-8"))
    command = "restudy " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    resume = resume_command(out)
    write_json(
        out / INVOCATION,
        {
            "study": st.id,
            "study_file": str(path.resolve()),
            "scale": scale,
            "seeds": seeds,
            "overrides": overrides or [],
            "only": only or [],
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
                progress=with_notices(progress, resume),
                study_path=str(path),
                execution=execution,
                specs=specs,
                runs_per_gpu=runs_per_gpu,
                executor=runner_executor,
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
    comparison, paths = compare_and_report(
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
        only=only,
        rerun=rerun_of(st.id, str(path.resolve()), out, overrides or [], only or []),
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


def _ray_executor(
    specs: list[Any],
    executor: str,
    execution: str,
    threads: int,
    address: str | None,
    retries: int | None,
    gpus_per_run: float | None,
    workers: int | None,
) -> Any:
    """``--executor ray``: the Ray executor for ``specs``; ``local``: None (the runner picks the pool)."""
    if executor not in ("local", "ray"):
        raise RestudyError("unknown executor", where="--executor", got=executor, allowed=("local", "ray"))
    if executor == "local":
        ray_only = (("--address", address), ("--retries", retries), ("--gpus-per-run", gpus_per_run))
        given = [name for name, v in ray_only if v is not None]
        if given:
            raise RestudyError(f"{', '.join(given)} apply to --executor ray only", where="--executor", got=executor)
        return None
    if workers is not None:
        raise RestudyError(
            "--workers applies to the local pool; on Ray each run takes --threads CPUs of the cluster",
            where="--workers",
            got=workers,
        )
    from ..execution.ray_executor import DEFAULT_RETRIES, connect, import_ray, ray_executor

    connect(import_ray(), address)  # Ray missing or no cluster at --address: an error before anything is written
    return ray_executor(
        specs,
        execution,
        threads=threads,
        address=address,
        retries=DEFAULT_RETRIES if retries is None else retries,
        gpus_per_run=gpus_per_run,
    )


@app.command()
@_user_errors
def report(directory: Path = typer.Argument(..., help="Output directory of a `restudy run`.")) -> None:
    """Re-create the report of a finished (or partly finished) study from its run store."""
    from ..planning.runs import parse_only, plan
    from ..spec.studyfile import load_study, parse_overrides, run_command
    from ..storage.env import capture
    from ..storage.safeio import read_json
    from ..storage.store import Store
    from .console import console, verdict_table

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
    ov, only = parse_overrides(inv.get("overrides", [])), parse_only([str(x) for x in inv.get("only", [])])
    study_file = inv.get("study_file") if isinstance(inv.get("study_file"), str) else None
    again = rerun_of(st.id, study_file, directory, inv.get("overrides", []), inv.get("only", []))
    specs = plan(st, inv["scale"], seeds=inv.get("seeds"), overrides=ov, only=only)
    with Store(directory) as store:
        store.reindex()
        records = store.records([s.key for s in specs])
        stored = len(store.statuses())
        invalid = store.invalid()
    if invalid:
        from rich.markup import escape

        console.print(f"[yellow]{len(invalid)} stored run(s) are invalid and not used (`restudy run` redoes them):[/]")
        for key, why in sorted(invalid.items()):
            console.print(f"  {key}: {escape(why[:300])}")
    if not records and stored:
        make = run_command(
            again["study"], inv["scale"], out=directory, overrides=again["overrides"], only=again["only"]
        )
        raise RestudyError(
            f"none of the {stored} stored runs is one this version of the study plans (a setting, the study "
            "file or restudy changed, and a run's key hashes its resolved settings); "
            f"`{make}` makes them",
            where=str(directory),
        )
    if not records:
        raise RestudyError("no finished runs in this directory yet", where=str(directory))
    env = capture(threads=1)
    t_start = time.perf_counter()
    comparison, paths = compare_and_report(
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
        only=[str(x) for x in inv.get("only", [])],
        rerun=again,
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

    from ..storage.env import capture
    from .console import console

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
    from ..spec.study import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


register_weights(app, _user_errors)  # restudy export / validate (cli/weights.py)

from .plan import register as _register_plan  # noqa: E402  (the `plan` command lives in cli/plan.py)

_register_plan(app, _user_errors)
