"""Rich rendering at the edge: run progress (an ETA from measured cost, the experiments in flight),
analysis progress, verdict tables, error panels."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
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


def _epochs(spec: Any) -> float:
    """A run's planned epochs (its unit of cost); 1 when unknown."""
    value = getattr(getattr(spec, "engine", None), "epochs", 1)
    try:
        return float(value) or 1.0
    except (TypeError, ValueError):
        return 1.0


def _clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "estimating…"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class CostClock:
    """An ETA from measured cost: each finished run's own time per epoch (a stacked run records
    its share of its stack), per experiment, times the epochs still to run, divided by the measured
    throughput (run time done per wall second, i.e. the parallelism actually reached)."""

    def __init__(self, specs: list[Any], todo_keys: set[str], now: float | None = None) -> None:
        self.t0 = time.monotonic() if now is None else now
        self.remaining: dict[str, float] = {}  # experiment -> epochs still to run
        self.cost: dict[str, list[float]] = {}  # experiment -> [seconds, epochs] measured
        self.epochs = {s.key: _epochs(s) for s in specs}
        for s in specs:
            if s.key in todo_keys:
                self.remaining[s.experiment] = self.remaining.get(s.experiment, 0.0) + _epochs(s)
        self.done_s = 0.0

    def record(self, key: str | None, experiment: str, wall_s: Any) -> None:
        epochs = self.epochs.get(key or "", 1.0)
        self.remaining[experiment] = max(0.0, self.remaining.get(experiment, 0.0) - epochs)
        if isinstance(wall_s, (int, float)) and wall_s >= 0:
            c = self.cost.setdefault(experiment, [0.0, 0.0])
            c[0] += float(wall_s)
            c[1] += epochs
            self.done_s += float(wall_s)

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, or None until a run has finished."""
        elapsed = (time.monotonic() if now is None else now) - self.t0
        total_s = sum(c[0] for c in self.cost.values())
        total_e = sum(c[1] for c in self.cost.values())
        if not total_e or not self.done_s or elapsed <= 0:
            return None
        left = 0.0
        for exp, epochs in self.remaining.items():
            c = self.cost.get(exp)
            per_epoch = c[0] / c[1] if c and c[1] else total_s / total_e
            left += per_epoch * epochs
        return left * elapsed / self.done_s


class RunProgress:
    """A progress callback for ``runner.run_study``: one overall bar with an ETA from measured cost
    (:class:`CostClock`) and the experiments in flight; resumes, failures and waits as lines."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("[dim]{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        self.total: Any = None
        self.clock: CostClock | None = None
        self.per_exp: dict[str, list[int]] = {}
        self.counts = {"finished": 0, "diverged": 0, "failed": 0}

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _detail(self) -> str:
        flying = [f"{e} {d}/{n}" for e, (n, d) in self.per_exp.items() if 0 < d < n]
        done = sum(d >= n for n, d in self.per_exp.values())
        text = f"experiments {done}/{len(self.per_exp)} done"
        return text + (f"; in flight: {', '.join(flying[:3])}" + (" …" if len(flying) > 3 else "") if flying else "")

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            specs = info["specs"]
            for s in specs:
                total_done = self.per_exp.setdefault(s.experiment, [0, 0])
                total_done[0] += 1
                total_done[1] += s.key not in info["todo_keys"]
            if info["done"]:
                todo = info["todo"]
                console.print(f"resuming: {info['done']} of {info['total']} runs already done, {todo} to run")
            self.clock = CostClock(specs, set(info["todo_keys"]))
            self.total = self.progress.add_task(
                "[bold]runs", total=info["total"], completed=info["done"], eta="estimating…", detail=self._detail()
            )
        elif event == "run":
            rec = info["record"]
            exp = rec["spec"]["experiment"]
            self.counts[rec["status"]] = self.counts.get(rec["status"], 0) + 1
            if exp in self.per_exp:
                self.per_exp[exp][1] += 1
            if self.clock is not None:
                self.clock.record(rec.get("key"), exp, (rec.get("timings") or {}).get("wall_s"))
            eta = _clock(self.clock.eta()) if self.clock else "estimating…"
            self.progress.update(self.total, advance=1, eta=eta, detail=self._detail())
            if rec["status"] != "finished":
                style = "yellow" if rec["status"] == "diverged" else "red"
                var = ",".join(f"{k}={v}" for k, v in rec["spec"]["variant"].items())
                self.progress.console.print(
                    f"[{style}]{rec['status']}[/]: "
                    + escape(f"{exp} {var} seed {rec['spec']['seed_index']} — {rec.get('reason', '')[:160]}")
                )
        elif event == "waiting":
            self.progress.console.print(f"waiting for {len(info['keys'])} run(s) held by another restudy process")


class AnalysisProgress:
    """Progress of the analysis after the runs: a spinner naming the step (comparing, drawing
    figure k of n, writing files) with the time it has taken, and one line when it is done."""

    def __init__(self) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.t0 = time.monotonic()

    def __enter__(self) -> AnalysisProgress:
        self.progress.start()
        self.task = self.progress.add_task("analysis", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()
        if exc[0] is None:
            console.print(f"analysis done in {time.monotonic() - self.t0:.1f} s")

    def step(self, text: str) -> None:
        self.progress.update(self.task, description=f"analysis: {text}")

    def report(self, step: str, done: int, total: int) -> None:
        """A ``write_report`` progress callback."""
        what = "drawing figures" if step == "figures" else "writing report files"
        self.step(f"{what} {done}/{total}")


def verdict_table(comparison: Any) -> Table:
    table = Table(title=f"Claims — {comparison.study}, {comparison.scale} scale ({comparison.dataset})")
    table.add_column("claim")
    table.add_column("verdict")
    table.add_column("evidence", overflow="fold")
    for c in comparison.claims:
        table.add_row(escape(c.id), f"[{VERDICT_STYLE.get(c.verdict, '')}]{c.verdict}[/]", escape(c.summary))
    return table
