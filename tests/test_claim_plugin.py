"""A claim kind defined outside the package: registered here, used in a study file, judged by
compare, drawn and written by the report — with no engine file knowing its name. A model-set view
registers the same way."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner

from restudy.api import ClaimBase, ClaimKind, Selector, claim_kinds, register_claim_kind
from restudy.cli import app
from restudy.compare import NOT_EVALUATED, NOT_REPRODUCED, REPRODUCED
from restudy.errors import StudyError
from restudy.planning.runs import plan
from restudy.plugins import register
from restudy.spec.claim_base import ModelSet
from restudy.spec.study import json_schema
from restudy.spec.studyfile import load_study


class MedianAbove(ClaimBase):
    """The median of the metric over the selected runs is above ``value``."""

    kind: Literal["median_above"]
    select: Selector
    value: float

    def selectors(self) -> list[tuple[tuple[Any, ...], Selector]]:
        return [(("select",), self.select)]


@register_claim_kind
class MedianAboveKind(ClaimKind):
    schema = MedianAbove
    rule = "a *median above* claim holds when the median over the selected runs exceeds the value"

    @staticmethod
    def evaluate(claim: MedianAbove, ctx: Any) -> Any:
        values = [ctx.value(r, claim.metric) for r in ctx.runs(claim.select)]
        if not values:
            return ctx.result(claim, NOT_EVALUATED, "no runs selected", {})
        median = statistics.median(values)
        verdict = REPRODUCED if median > claim.value else NOT_REPRODUCED
        return ctx.result(
            claim,
            verdict,
            f"median {claim.metric} {median:.2f} vs {claim.value:g}",
            {"median": median, "value": claim.value, "n": len(values), "values": values},
        )

    @staticmethod
    def figure(claim: MedianAbove, result: Any, path: Path) -> Path | None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ev = result.evidence
        fig, ax = plt.subplots()
        ax.plot(ev["values"], "o")
        ax.axhline(ev["median"], color="tab:blue")
        ax.axhline(claim.value, color="tab:red", linestyle="--")
        fig.savefig(path)
        plt.close(fig)
        return path


STUDY = """\
id: plugin_toy
title: A study with a claim kind of its own
paper: {title: A toy paper}
claims:
  - id: median_high
    kind: median_above
    statement: The median test accuracy is above 0%
    select: {experiment: fc, where: {depth: 1}}
    value: 0
  - id: median_perfect
    kind: median_above
    statement: The median test accuracy is above 100%
    select: {experiment: fc}
    value: 100
defaults:
  model: {value: fc, provenance: assumed}
  model.width: {value: 8, provenance: assumed}
  data: {value: synthetic, provenance: assumed}
  data.n_train: {value: 128, provenance: assumed}
  data.n_test: {value: 64, provenance: assumed}
  data.dim: {value: 8, provenance: assumed}
  data.num_classes: {value: 3, provenance: assumed}
  optimizer.lr: {value: 0.1, provenance: assumed}
  epochs: {value: 1, provenance: assumed}
  batch_size: {value: 64, provenance: assumed}
experiments:
  - id: fc
    seeds: 3
    axes:
      depth: {path: model.hidden, values: [1, 2]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_the_new_kind_is_in_the_schema_and_the_allowed_kinds() -> None:
    assert "median_above" in claim_kinds()
    mapping = json_schema()["properties"]["claims"]["items"]["discriminator"]["mapping"]
    assert {"median_above", "a_beats_b", "numeric", "trend", "threshold", "variability"} <= set(mapping)


def test_its_errors_name_the_claim_field_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, STUDY.replace("select: {experiment: fc}", "select: {experiment: cf}"))
    with pytest.raises(StudyError) as e:
        load_study(path)
    assert f"{path}:13 claims[1].select.experiment: unknown experiment 'cf'" in str(e.value)
    path = _write(tmp_path, STUDY.replace("value: 100", "value: high"))
    with pytest.raises(StudyError) as e:
        load_study(path)
    assert f"{path}:14 claims[1].value:" in str(e.value) and "'high'" in str(e.value)
    path = _write(
        tmp_path,
        STUDY.replace(
            "kind: median_above\n    statement: The median test accuracy is above 100%",
            "kind: median_below\n    statement: x",
        ),
    )
    with pytest.raises(StudyError) as e:
        load_study(path)
    assert "claims[1].kind: unknown claim kind" in str(e.value) and "got: 'median_below'" in str(e.value)
    assert "'median_above'" in str(e.value) and "'a_beats_b'" in str(e.value)


def test_verdict_evidence_and_figure_reach_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app,
        ["run", str(_write(tmp_path, STUDY)), "--scale", "small", "--workers", "0", "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    claims = {c["id"]: c for c in json.loads((out / "results.json").read_text())["claims"]}
    high, perfect = claims["median_high"], claims["median_perfect"]
    assert high["kind"] == "median_above" and high["verdict"] == "reproduced"
    assert high["evidence"]["n"] == 3 and high["evidence"]["value"] == 0
    assert high["evidence"]["median"] == statistics.median(high["evidence"]["values"])
    assert perfect["verdict"] == "not_reproduced" and perfect["evidence"]["n"] == 6
    assert (out / "figures" / "claim-median_high.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "![median_high](figures/claim-median_high.png)" in md
    assert "Evidence: median " in md  # the default evidence rendering
    assert "a *median above* claim holds" in md  # the kind's rule
    html = (out / "report.html").read_text()
    assert "<em>median above</em>" in html and html.count("data:image/png;base64,") >= 2


def test_a_study_can_register_a_view() -> None:
    with pytest.raises(ValueError, match="unknown view 'last'"):
        ModelSet(experiment="fc", view="last")

    @register("view", "last")
    def last(arg: str) -> str:
        return "logits"

    assert ModelSet(experiment="fc", view="last").view == "last"


KIND_MODULE = '''
"""A study's own module: registers the claim kind ``all_finished``."""
from typing import Literal

from restudy.api import ClaimBase, ClaimKind, Selector, register_claim_kind


class AllFinished(ClaimBase):
    kind: Literal["all_finished"]
    select: Selector

    def selectors(self):
        return [(("select",), self.select)]


@register_claim_kind
class AllFinishedKind(ClaimKind):
    schema = AllFinished

    @staticmethod
    def evaluate(claim, ctx):
        runs = ctx.select(claim.select)
        done = sum(r["status"] == "finished" for r in runs)
        return ctx.result(claim, "reproduced" if runs and done == len(runs) else "not_reproduced",
                          f"{done}/{len(runs)} runs finished", {"finished": done, "runs": len(runs)})
'''


def test_a_kind_registered_by_the_study_module_is_known_when_the_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_kinds.py").write_text(KIND_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    text = STUDY.replace("paper: {title: A toy paper}\n", "paper: {title: A toy paper}\nmodule: toy_kinds\n")
    text = text.replace(
        "defaults:\n",
        "  - id: all_done\n    kind: all_finished\n    statement: Every run "
        "finishes\n    select: {experiment: fc}\ndefaults:\n",
    )
    study = load_study(_write(tmp_path, text))
    assert [c.kind for c in study.claims] == ["median_above", "median_above", "all_finished"]


def test_a_claim_may_use_any_metric_a_run_metric_declares(study_file):
    """A claim's metric is not a closed list: a registered run metric the study lists in
    run_metrics declares the names it adds, and a claim may compare them (a typo is refused at
    planning, see tests/bad_studies/claim_metric_not_recorded.yaml)."""
    from restudy import plugins

    with plugins.scoped():

        @plugins.register("run_metric", "calibration_for_this_test")
        def calibration(**_):
            return {"ece": 0.1}

        calibration.metrics = ("ece",)

        def mutate(d):
            d["defaults"]["run_metrics"] = {"value": ["calibration_for_this_test"], "provenance": "paper"}
            d.pop("coverage", None)  # it names the study's own claims, replaced here
            d["claims"] = [
                {
                    "id": "ece_lower",
                    "kind": "a_beats_b",
                    "statement": "ENorm is better calibrated",
                    "metric": "ece",
                    "a": {"experiment": "fc", "where": {"method": "enorm"}},
                    "b": {"experiment": "fc", "where": {"method": "baseline"}},
                }
            ]

        specs = plan(load_study(study_file(mutate)), "smoke")
        assert specs and all(s.engine.run_metrics == ("calibration_for_this_test",) for s in specs)
        calibration.metrics = ("calibration_error",)  # the claim's metric is no longer declared
        with pytest.raises(StudyError, match="not a metric the runs record") as info:
            plan(load_study(study_file(mutate)), "smoke")
        assert "calibration_error" in str(info.value)
