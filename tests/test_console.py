"""Console rendering: errors, progress and verdicts reach the user as written (no markup injection)."""

from __future__ import annotations

from types import SimpleNamespace

from rich.console import Console

from restudy import console


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
