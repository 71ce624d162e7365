"""Console rendering: errors, progress and verdicts reach the user as written (no markup injection)."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from restudy.cli import console


def test_error_panel_shows_the_message_literally(capsys):
    console.error_panel("study.yaml:3 seed: [bold]not[/bold] an integer; got: 'abc'")
    err = capsys.readouterr().err
    assert "study.yaml:3 seed: [bold]not[/bold] an integer; got: 'abc'" in err


def _spec(key: str, exp: str) -> SimpleNamespace:
    return SimpleNamespace(key=key, experiment=exp)


def test_progress_reports_resume_problems_and_waiting(capsys):
    specs = [_spec("a", "fc"), _spec("b", "fc"), _spec("c", "fc_bias")]
    with console.RunProgress() as progress:
        progress("start", {"specs": specs, "todo_keys": {"b", "c"}, "done": 1, "total": 3, "todo": 2})
        progress(
            "run",
            {
                "record": {
                    "status": "diverged",
                    "reason": "loss is nan [epoch 1]",
                    "spec": {"experiment": "fc", "variant": {"depth": "9"}, "seed_index": 1},
                }
            },
        )
        progress(
            "run",
            {
                "record": {
                    "status": "finished",
                    "reason": "",
                    "spec": {"experiment": "fc_bias", "variant": {}, "seed_index": 0},
                }
            },
        )
        progress("waiting", {"keys": ["x", "y"]})
    out = capsys.readouterr().out
    assert "resuming: 1 of 3 runs already done, 2 to run" in out
    assert "diverged: fc depth=9 seed 1" in out and "loss is nan [epoch 1]" in out
    assert "waiting for 2 run(s) held by another restudy process" in out
    assert progress.counts == {"finished": 1, "diverged": 1, "failed": 0}


def test_verdict_table_lists_every_claim():
    claims = [
        SimpleNamespace(id="enorm_beats_bn", verdict="reproduced", summary="+1.2 points [0.3, 2.1]"),
        SimpleNamespace(id="deep_[x]", verdict="inconclusive", summary="n = 2"),
    ]
    comparison = SimpleNamespace(study="enorm", scale="smoke", dataset="synthetic", claims=claims)
    out = Console(record=True, width=200)
    out.print(console.verdict_table(comparison))
    text = out.export_text()
    assert "Claims — enorm, smoke scale (synthetic)" in text
    for c in claims:
        assert c.id in text and c.verdict in text and c.summary in text


def _timed_spec(key: str, exp: str, epochs: int) -> SimpleNamespace:
    return SimpleNamespace(key=key, experiment=exp, engine=SimpleNamespace(epochs=epochs))


def test_eta_comes_from_measured_cost_and_a_stacked_group_counts_its_models():
    # 40 runs of 10 epochs; a stacked group of 20 finishes at once after 20 s of wall time, each
    # model recording its share (1 s). Throughput: 20 s of run time per 20 s of wall time.
    specs = [_timed_spec(f"a{i}", "a", 10) for i in range(20)] + [_timed_spec(f"b{i}", "b", 10) for i in range(20)]
    clock = console.CostClock(specs, {s.key for s in specs}, now=0.0)
    assert clock.eta(now=5.0) is None  # nothing measured yet: no guess
    for i in range(20):
        clock.record(f"a{i}", "a", 1.0)
    assert clock.eta(now=20.0) == 20.0  # the other 20 models cost as much again
    # shorter runs of another experiment are estimated at the measured cost per epoch
    short = [_timed_spec(f"c{i}", "c", 2) for i in range(10)]
    clock = console.CostClock(specs[:20] + short, {s.key for s in specs[:20] + short}, now=0.0)
    for i in range(20):
        clock.record(f"a{i}", "a", 1.0)
    assert clock.eta(now=20.0) == 2.0  # 10 runs x 2 epochs x 0.1 s per epoch


def test_progress_shows_the_experiments_in_flight_and_the_analysis_steps(capsys):
    specs = [_timed_spec("a", "fc", 3), _timed_spec("b", "fc", 3), _timed_spec("c", "bias", 3)]
    with console.RunProgress() as progress:
        progress("start", {"specs": specs, "todo_keys": {"a", "b", "c"}, "done": 0, "total": 3, "todo": 3})
        rec = {"key": "a", "status": "finished", "spec": {"experiment": "fc"}, "timings": {"wall_s": 1.0}}
        progress("run", {"record": rec})
        assert progress._detail() == "experiments 0/2 done; in flight: fc 1/2"
    with console.AnalysisProgress() as analysis:
        analysis.step("comparing runs with the claims")
        analysis.report("figures", 3, 10)
    assert "analysis done in" in capsys.readouterr().out
