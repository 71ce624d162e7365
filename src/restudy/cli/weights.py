"""``restudy export`` and ``restudy validate``: release a run's weights and check released weights
by recomputing their test accuracy in inference only (:mod:`restudy.execution.weights` does the work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from ..errors import RestudyError


def _data_args(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (YAML-parsed values) as ``data.*`` arguments."""
    from ..spec.studyfile import parse_overrides

    for item in items or []:
        if item.split("=", 1)[0].startswith("data."):
            raise RestudyError("give data arguments without the 'data.' prefix", where="--data-arg", got=item)
    return {key: v for _, key, v in parse_overrides(list(items or []))}


def export_cmd(
    run: str = typer.Argument(..., help="A run's folder, or its key (a folder name under RESULTS/runs) with --out."),
    weights: Path = typer.Option(..., "--weights", help="The weights file to write (*.safetensors)."),
    out: Path | None = typer.Option(None, "--out", help="The results folder `restudy run` wrote (for a run key)."),
) -> None:
    """Export a run's final weights (kept with save_weights=true) as safetensors plus a JSON sidecar."""
    from ..execution.weights import export, sidecar_path
    from .console import console

    side = export(run, weights, out)
    rec = side["recorded"]
    acc = f"{rec['test_acc']:.4f} %" if isinstance(rec["test_acc"], (int, float)) else "none"
    console.print(
        f"wrote {weights} and {sidecar_path(weights)}: {side['model']} on {side['dataset']} "
        f"(run {side['run']}, {side['experiment']} {side['variant']}, seed {side['seed_index']}), "
        f"recorded test accuracy {acc} on {rec['n_test']} examples"
    )


def validate_cmd(
    study: str = typer.Argument(..., help="Built-in study id or study YAML file the weights belong to."),
    weights: Path = typer.Option(..., "--weights", help="A *.safetensors file (pickles are refused)."),
    data: str | None = typer.Option(None, "--data", help="A registered data set (default: the run's own)."),
    data_arg: list[str] | None = typer.Option(
        None, "--data-arg", help="A data set argument KEY=VALUE, e.g. root=/data/cifar (repeatable)."
    ),
    threads: int = typer.Option(1, min=1, help="Intra-op threads (bit-identity holds at the run's own)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
) -> None:
    """Recompute the test accuracy of released weights and compare it with the recorded value.

    Inference only; bit-identical on the recorded device, thread count and torch version."""
    from rich.markup import escape

    from ..execution.weights import validate
    from ..spec.studyfile import load_study, study_dir
    from ..training.build import device_for
    from .console import console

    st = load_study(study)
    v = validate(
        weights,
        study_id=st.id,
        study_module=st.module,
        study_dir=study_dir(st) if st.module else None,
        data=data,
        data_args=_data_args(data_arg),
        threads=threads,
        device=device_for(device),
    )
    colour = "green" if v.status in ("identical", "agrees") else "yellow" if v.ok else "red"
    console.print(f"{escape(v.model)} on {escape(v.dataset)} ({v.n_test} test examples)")
    console.print(f"recorded test accuracy:   {v.recorded:.4f} %")
    console.print(f"recomputed (inference):   {v.recomputed:.4f} %")
    console.print(f"[{colour}]{v.status}[/]: {escape(v.message)}")
    if not v.ok:
        raise typer.Exit(1)


def register(app: typer.Typer, user_errors: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Adds ``export`` and ``validate`` to ``app`` (user errors shown by ``user_errors``)."""
    app.command("export")(user_errors(export_cmd))
    app.command("validate")(user_errors(validate_cmd))
