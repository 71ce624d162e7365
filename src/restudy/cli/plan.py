"""``restudy plan``: what running a study will cost (runs, wall time, core- and GPU-hours, per
experiment) from a short calibration (``restudy.estimate.cost``), and the seeds each claim needs when pilot
runs exist (``restudy.estimate.pilots``); the estimate is kept in ``<out>/plan.json`` for the run's report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .session import ONLY_HELP, execution_mode


def register(app: typer.Typer, user_errors: Any) -> None:
    """Add the ``plan`` command to ``app`` (``user_errors``: the CLI's error wrapper)."""
    app.command("plan", context_settings={"allow_extra_args": False})(user_errors(plan_cmd))


def plan_cmd(
    study: str = typer.Argument(..., help="Built-in study id (see `restudy list`) or a study YAML file."),
    overrides: list[str] | None = typer.Argument(
        None, help="Setting overrides, as for `restudy run`: key=value or experiment:key=value."
    ),
    scale: str = typer.Option("small", help="smoke, small or paper."),
    seeds: int | None = typer.Option(None, min=1, help="Seeds per variant (default: the study's, per scale)."),
    workers: int | None = typer.Option(
        None, min=0, help="Worker slots (default: one per core, or with --executor ray the cluster's CPUs; 0: inline)."
    ),
    threads: int = typer.Option(1, min=1, help="Intra-op threads per worker."),
    execution: str = typer.Option("auto", help="auto, stacked or pool, as for `restudy run`."),
    executor: str = typer.Option(
        "local", help="local (this machine's process pool) or ray (slots: --workers, else the cluster's CPUs)."
    ),
    address: str | None = typer.Option(
        None, help="With --executor ray: the cluster whose CPUs are the slots (auto, HOST:6379, ray://HOST:10001)."
    ),
    out: Path | None = typer.Option(
        None, help="Output directory of the run (default: results/<study>-<scale>): its finished runs count as done."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: {runs, wall_s, core_hours, gpu_hours, ...}."),
    only: list[str] | None = typer.Option(None, "--only", help="Plan " + ONLY_HELP),
) -> None:
    """Estimate a study's cost from a short calibration, and the seeds its claims need from pilot runs."""
    from ..estimate.cost import estimate
    from ..estimate.pilots import fit_epochs, pilot_power
    from ..estimate.planfile import write_plan
    from ..planning.runs import parse_only, plan
    from ..spec.studyfile import load_study, parse_overrides, resolve_study_path, run_command, study_argument
    from ..storage.store import Store
    from .session import prepare_out

    execution_mode(execution)
    if executor == "ray" and workers is None:  # the slots of the cluster the runs would go to
        from ..execution.ray_executor import cluster_slots

        workers = cluster_slots(address, threads)
    path = resolve_study_path(study)
    st = load_study(path)
    specs = plan(st, scale, seeds=seeds, overrides=parse_overrides(overrides or []), only=parse_only(only or []))
    out = out or Path("results") / f"{st.id}-{scale}"
    done: set[str] = set()
    if (out / "store.db").is_file():
        with Store(out) as store:
            done = store.done_keys() & {s.key for s in specs}
    say = _progress(as_json)
    est = estimate(
        st,
        scale,
        specs,
        done=done,
        fit_epochs=fit_epochs(out, specs),
        workers=workers,
        threads=threads,
        execution=execution,
        executor=executor,
        progress=say,
    )
    say("comparing pilot runs with the claims")
    claims, pilots = pilot_power(st, scale, out, specs)
    prepare_out(out, st.id, scale, fresh=False)  # refuses another study's folder
    saved = write_plan(out, est, specs, done)
    if as_json:
        typer.echo(json.dumps({**est.to_json(), "pilot_runs": pilots, "claims": claims, "saved": str(saved)}, indent=2))
        return
    pilot = run_command(
        study_argument(path, st.id), scale, seeds=3, out=out, overrides=overrides or [], only=only or []
    )
    _render(st, scale, est, claims, pilots, out, saved, pilot)


def _progress(quiet: bool) -> Any:
    from .console import err_console

    def say(text: str) -> None:
        if not quiet:
            err_console.print(f"[dim]… {text}[/]", highlight=False)

    return say


def _render(st: Any, scale: str, est: Any, claims: list[dict], pilots: int, out: Path, saved: Path, pilot: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ..display.tables import duration
    from .console import console

    console.print(
        f"[bold]{st.id}[/] at {scale} scale: {est.runs} runs, {est.done} already done in {escape(str(out))}, "
        f"{est.todo} to run"
    )
    if not est.todo:
        console.print("Nothing left to run.")
    else:
        slots = "this process" if est.execution == "inline" else f"{est.workers} worker(s) × {est.threads} thread(s)"
        console.print(
            f"{est.tasks} task(s) on {slots} ({est.executor} executor, {est.execution}); "
            f"calibrated in {est.calibration_s:.1f} s on {est.device}"
        )
        t = Table(title="Estimated cost per experiment")
        for col in ("experiment", "runs", "done", "to run", "stacked", "per run", "run time (sum)"):
            t.add_column(col, justify="left" if col == "experiment" else "right")
        for e in est.per_experiment:
            t.add_row(
                e["experiment"],
                str(e["runs"]),
                str(e["done"]),
                str(e["todo"]),
                str(e["stacked_runs"]),
                duration(e["per_run_s"]),
                duration(e["run_s"]),
            )
        console.print(t)
        load = (
            f"; at the machine's load when planned (calibration got 1/{est.load_factor:.1f} of a core): "
            f"{duration(est.wall_s_now)}"
            if est.load_factor > 1.05
            else ""
        )
        console.print(
            f"[bold]Estimated wall time: {duration(est.wall_s)}[/] with the machine's cores free for it{load} "
            "(the training phase of `restudy run`; the comparison and report come after). "
            f"Core-hours: {est.core_hours:.3f} (cores held × wall time); GPU-hours: {est.gpu_hours:.3f}"
            + (" (CPU only)" if est.device != "cuda" else f" ({est.gpus} GPU(s))")
        )
        console.print(
            f"Measured: per-run overhead {est.overhead_s:.3f} s, worker start {est.startup_s:.1f} s, "
            f"driver before the first run {est.driver_s:.1f} s."
        )
    for note in est.notes:
        console.print(f"Note: {escape(note)}")
    if claims:
        t = Table(title=f"Seeds the claims need (from {pilots} pilot run(s))")
        for col in ("claim", "verdict", "seeds"):
            t.add_column(col)
        for c in claims:
            t.add_row(c["claim"], c["verdict"].replace("_", " "), escape(c["says"]))
        console.print(t)
    else:
        console.print(
            f"Seeds the claims need: run a pilot first (no finished runs in {escape(str(out))}; e.g. "
            f"`{escape(pilot)}`), then plan again."
        )
    console.print(
        f"Estimate saved to {escape(str(saved))}: the report of `restudy run` into this folder sets it beside "
        "the actual time."
    )
