"""Rich rendering at the edge: progress over experiments × seeds, verdict tables, error panels."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

VERDICT_STYLE = {
    "reproduced": "bold green",
    "not_reproduced": "bold red",
    "inconclusive": "bold yellow",
    "not_evaluated": "dim",
}


def error_panel(message: str, title: str = "error") -> None:
    err_console.print(Panel(escape(message), title=title, border_style="red", expand=False))


class RunProgress:
    """A progress callback for ``runner.run_study``: one bar per experiment plus a total with ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.total: Any = None
        self.counts = {"finished": 0, "diverged": 0, "failed": 0}

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            specs = info["specs"]
            per_exp: dict[str, list[int]] = {}
            for s in specs:
                total_done = per_exp.setdefault(s.experiment, [0, 0])
                total_done[0] += 1
                total_done[1] += s.key not in info["todo_keys"]
            if info["done"]:
                todo = info["todo"]
                console.print(f"resuming: {info['done']} of {info['total']} runs already done, {todo} to run")
            for exp, (n, done) in per_exp.items():
                self.tasks[exp] = self.progress.add_task(f"{exp} (variants × seeds)", total=n, completed=done)
            self.total = self.progress.add_task("[bold]all runs", total=info["total"], completed=info["done"])
        elif event == "run":
            rec = info["record"]
            exp = rec["spec"]["experiment"]
            self.counts[rec["status"]] = self.counts.get(rec["status"], 0) + 1
            self.progress.advance(self.tasks[exp])
            self.progress.advance(self.total)
            if rec["status"] != "finished":
                style = "yellow" if rec["status"] == "diverged" else "red"
                var = ",".join(f"{k}={v}" for k, v in rec["spec"]["variant"].items())
                self.progress.console.print(
                    f"[{style}]{rec['status']}[/]: "
                    + escape(f"{exp} {var} seed {rec['spec']['seed_index']} — {rec.get('reason', '')[:160]}")
                )
        elif event == "waiting":
            self.progress.console.print(f"waiting for {len(info['keys'])} run(s) held by another restudy process")


def verdict_table(comparison: Any) -> Table:
    table = Table(title=f"Claims — {comparison.study}, {comparison.scale} scale ({comparison.dataset})")
    table.add_column("claim")
    table.add_column("verdict")
    table.add_column("evidence", overflow="fold")
    for c in comparison.claims:
        table.add_row(escape(c.id), f"[{VERDICT_STYLE.get(c.verdict, '')}]{c.verdict}[/]", escape(c.summary))
    return table
