"""The report files: results.json keys, Markdown sections, a self-contained HTML page, PNG figures."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from restudy.compare import compare
from restudy.display import draw
from restudy.report import write_report
from restudy.spec.study import Study
from restudy.storage.record import row

METHODS = {"baseline": {}, "enorm": {"method": "enorm"}}


def _study() -> Study:
    return Study.model_validate(
        {
            "id": "toy",
            "title": "Toy study",
            "paper": {"title": "A toy paper", "authors": ["A. B."], "venue": "ICLR", "year": 2019},
            "documents": [{"id": "orig", "kind": "original", "title": "The paper"}],
            "experiments": [
                {
                    "id": "fc",
                    "description": "plain nets",
                    "axes": {"method": METHODS, "depth": {"path": "model.hidden", "values": [1, 5]}},
                },
                {"id": "bias", "axes": {"method": METHODS}},
            ],
            "scales": {
                "paper": {"dataset": "CIFAR-10"},
                "small": {"dataset": "MNIST-1D", "deviations": ["MNIST-1D instead of CIFAR-10"]},
            },
            "tables": [
                {
                    "id": "t1",
                    "title": "Test accuracy",
                    "document": "orig",
                    "where": "Table 1",
                    "dataset": "CIFAR-10",
                    "rows": [1, 5],
                    "columns": ["baseline", "enorm"],
                    "values": {1: {"baseline": 60.0, "enorm": 62.0}, 5: {"baseline": 55.0, "enorm": 66.0}},
                    "layout": {"experiment": "fc", "row_axis": "depth", "column_axis": "method"},
                }
            ],
            "claims": [
                {
                    "id": "beats",
                    "statement": "ENorm beats the baseline",
                    "kind": "a_beats_b",
                    "a": {"experiment": "fc", "where": {"method": "enorm"}},
                    "b": {"experiment": "fc", "where": {"method": "baseline"}},
                },
                {
                    "id": "grows",
                    "statement": "The gain grows with depth",
                    "kind": "trend",
                    "select": {"experiment": "fc", "where": {"method": "enorm"}},
                    "baseline": {"experiment": "fc", "where": {"method": "baseline"}},
                    "over": "depth",
                    "direction": "increasing",
                },
                {
                    "id": "diverges",
                    "statement": "ENorm with bias diverges",
                    "kind": "threshold",
                    "metric": "diverged",
                    "select": {"experiment": "bias", "where": {"method": "enorm"}},
                    "op": ">=",
                    "value": 0.5,
                },
                {
                    "id": "table1",
                    "statement": "Table 1 holds",
                    "kind": "numeric",
                    "cells": [
                        {"table": "t1", "row": "1", "column": "baseline"},
                        {"table": "t1", "row": "5", "column": "enorm"},
                    ],
                },
            ],
        }
    )


def _record(
    exp: str, variant: dict[str, str], seed: int, acc: float, scale: str, status: str = "finished"
) -> dict[str, Any]:
    dataset = "CIFAR-10" if scale == "paper" else "MNIST-1D"
    diverged = status == "diverged"
    curves = [
        {
            "epoch": e,
            "lr": 0.1,
            "train_acc": acc * e / 3 + 3,
            "test_acc": acc * e / 3,
            "train_loss": math.nan if diverged else 2.0 / e,
            "test_loss": math.nan if diverged else 2.2 / e,
            "train_s": 0.1,
            "eval_s": 0.01,
        }
        for e in (1, 2, 3)
    ]
    metrics = (
        {}
        if status == "failed"
        else {
            "test_acc": acc,
            "train_acc": acc + 3,
            "test_loss": math.nan if diverged else 0.7,
            "train_loss": math.nan if diverged else 0.6,
            "diverged": float(diverged),
            "n_test": 1000,
            "epochs_done": 3,
        }
    )
    vid = ",".join(f"{k}={v}" for k, v in variant.items())
    return {
        "key": f"{exp}-{vid}-{seed}-{scale}",
        "spec": {"experiment": exp, "variant": variant, "seed_index": seed, "scale": scale, "dataset_label": dataset},
        "status": status,
        "reason": "NaN loss" if diverged else "",
        "metrics": metrics,
        "curves": [] if status == "failed" else curves,
        "timings": {"wall_s": 2.0 + seed, "train_s": 1.5, "eval_s": 0.2, "load_s": 0.1},
        "env": {"fingerprint": "f00"},
    }


def _records(scale: str) -> list[dict[str, Any]]:
    recs = []
    for s in range(3):
        for d in ("1", "5"):
            base = 60.0 - int(d) + 0.3 * s
            recs.append(_record("fc", {"method": "baseline", "depth": d}, s, base, scale))
            # ENorm ahead by 5.5 and 7.5 pp: clear of the test set's own noise (SD 2.2 pp at n_test=1000)
            recs.append(_record("fc", {"method": "enorm", "depth": d}, s, base + 5 + 0.5 * int(d) + 0.1 * s, scale))
        recs.append(_record("bias", {"method": "enorm"}, s, 10.0, scale, status="diverged"))
        recs.append(_record("bias", {"method": "baseline"}, s, 50.0, scale))
    recs += [
        _record("bias", {"method": "enorm"}, s, 10.0, scale, status="diverged") for s in (3, 4)
    ]  # 5/5 diverged: the exact 90% interval clears 0.5
    recs.append(_record("bias", {"method": "enorm"}, 5, 0.0, scale, status="failed"))
    return recs


def _plan_info(study: Study, scale: str) -> dict[str, Any]:
    settings = {
        "fc": {
            "method=baseline,depth=1": {
                "optimizer.lr": {"value": 0.1, "provenance": "authors", "source": "Table 1"},
                "eval_batch_size": {"value": 1024, "provenance": "assumed", "source": "restudy default"},
                "model.hidden": {"value": 1, "provenance": "paper", "source": "Sec. 2"},
            },
            "method=enorm,depth=5": {
                "optimizer.lr": {"value": 0.05, "provenance": "authors", "source": "Table 1"},
                "eval_batch_size": {"value": 1024, "provenance": "assumed", "source": "restudy default"},
                "model.hidden": {"value": 5, "provenance": "paper", "source": "Sec. 2"},
            },
        }
    }
    sc = study.scales[scale]
    return {
        "scale_description": f"{scale} runs",
        "dataset": sc.dataset,
        "deviations": list(sc.deviations),
        "settings": settings,
        "reused_env_mismatch": ["fc-method=baseline,depth=1-0-" + scale],
        "wall_s_total": 123.4,
        "workers": 2,
        "command": f"restudy run toy --scale {scale}",
    }


ENV = {
    "python": "3.11.2",
    "torch": "2.3.0",
    "cpu": "Test CPU",
    "threads": 1,
    "determinism": {"deterministic_algorithms": True},
    "memory_format": "contiguous",
    "study_git": {"repo": "/x", "commit": "abc123", "dirty": False},
    "fingerprint": "f00",
}


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    study, scale = _study(), "small"
    recs = _records(scale) + _records("paper")[:4]  # other-scale records are left out
    comp = compare(study, scale, [row(r) for r in recs])
    out = tmp_path_factory.mktemp("report")
    return write_report(out, study, scale, comp, recs, ENV, plan_info=_plan_info(study, scale)), out


def test_results_json_has_exact_keys(small_report: tuple[dict[str, Path], Path]) -> None:
    paths, _ = small_report
    data = json.loads(paths["results"].read_text())
    for key in ("study", "scale", "dataset", "env", "claims", "cells", "runs"):
        assert key in data
    assert (data["study"], data["scale"], data["dataset"]) == ("toy", "small", "MNIST-1D")
    claim = data["claims"][0]
    assert list(claim)[:4] == ["id", "statement", "verdict", "evidence"]
    assert list(data["cells"][0])[:8] == ["table", "row", "column", "reported", "mean", "sd", "n", "rel_error"]
    run = data["runs"][0]
    assert list(run)[:8] == ["id", "experiment", "variant", "seed_index", "status", "train_acc", "test_acc", "wall_s"]
    assert len(data["runs"]) == len(_records("small"))
    assert {c["id"]: c["verdict"] for c in data["claims"]} == {
        "beats": "reproduced",
        "grows": "reproduced",
        "diverges": "reproduced",
        "table1": "not_evaluated",
    }
    assert not re.search(r"\bNaN\b(?! loss)|Infinity", paths["results"].read_text())


def test_markdown_has_banner_verdicts_and_provenance(small_report: tuple[dict[str, Path], Path]) -> None:
    paths, _ = small_report
    md = paths["markdown"].read_text()
    assert "All numbers below come from small scale runs on MNIST-1D" in md
    assert "compared only at paper scale" in md
    assert md.startswith("# Toy study: ") and "on MNIST-1D, 3–6 seeds per variant, small scale" in md.splitlines()[0]
    assert "Contents: [Verdicts](#verdicts) · [Claims](#claims)" in md and '<a id="claim-beats"></a>' in md
    assert "| claim | verdict | result |" in md and "[ENorm beats the baseline](#claim-beats)" in md
    assert "🟢 reproduced" in md and "⚪ not evaluated" in md
    assert "| setting | value | provenance | source |" in md
    # restudy's own defaults in one line; assumed is a plain word, not emphasis
    assert "restudy's own defaults (the paper does not say): eval_batch_size 1024." in md
    assert "**" not in md.split('## <a id="settings"></a>')[1].split("Deviations")[0]
    assert "| optimizer.lr | by variant: 0.1, 0.05 | authors | Table 1 |" in md
    assert "MNIST-1D instead of CIFAR-10" in md
    assert "paper scale on CIFAR-10" in md and "Not comparable" in md
    assert "-0.00" not in md
    assert "fc-method=baseline,depth=1-0-small" in md  # reused run flagged
    assert "![beats](figures/claim-beats.png)" in md
    order = [
        md.index(h.replace("## ", "></a>"))
        for h in (
            "## Verdicts",
            "## Claims",
            "## Training curves",
            "## Reported vs reproduced",
            "## All groups",
            "## Settings and their provenance",
            "Deviations from the original protocol",
            "## Environment and cost",
            "## What to do next",
        )
    ]
    assert order == sorted(order)


def test_html_is_self_contained(small_report: tuple[dict[str, Path], Path]) -> None:
    paths, _ = small_report
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page
    assert "<link" not in page
    assert not re.search(r"""src=["']https?:""", page)
    assert "<style>" in page and '<nav class="toc"' in page and '<div class="scroll"><table>' in page
    assert '<a href="#claim-beats">' in page and 'id="claim-beats"' in page
    assert 'class="badge reproduced"' in page and 'class="badge not_evaluated"' in page
    assert page.count("<img ") == len([k for k in paths if ":" in k])
    # each judged claim's section gives its result once: the kind's own lines (a beats b) or the
    # result sentence (threshold, trend)
    sections = {
        m[0]: m[1] for m in re.findall(r'<section class="claim [a-z_]+" id="claim-(\w+)">(.*?)</section>', page, re.S)
    }
    assert sections["diverges"].count("<p>Result: ") == 1 and "seeds diverged" in sections["diverges"]
    assert "<p>Result: " not in sections["beats"] and "beats baseline by" in sections["beats"]


def test_figures_are_png_files(small_report: tuple[dict[str, Path], Path]) -> None:
    paths, out = small_report
    figs = sorted((out / "figures").glob("*.png"))
    names = {f.name for f in figs}
    assert {"claim-beats.png", "claim-grows.png", "claim-diverges.png", "curves-fc.png", "curves-bias.png"} <= names
    assert "claim-table1.png" not in names  # small-scale numbers are not drawn next to the paper's
    for f in figs:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_scale_report_judges_numeric_cells(tmp_path: Path) -> None:
    study = _study()
    recs = _records("paper")
    comp = compare(study, "paper", [row(r) for r in recs])
    paths = write_report(tmp_path, study, "paper", comp, recs, ENV, plan_info=_plan_info(study, "paper"))
    md = paths["markdown"].read_text()
    assert "All numbers below come from paper scale runs on CIFAR-10" in md
    assert "compared only at paper scale" not in md
    cells = json.loads(paths["results"].read_text())["cells"]
    verdicts = {(c["row"], c["column"]): c["verdict"] for c in cells}
    # Equivalence within δ = 3 binomial SDs (about 4.7 pp at n_test=1000): 3 seeds and a reported
    # value without ± (its own SE 1.5 pp) can neither show 59.3 agrees with 60.0 nor that 62.9
    # differs from 66.0; each cell says how many seeds would decide it.
    assert verdicts[("1", "baseline")] == "inconclusive"
    assert verdicts[("5", "enorm")] == "inconclusive"
    undecided = [c for c in cells if c["verdict"] == "inconclusive"]
    assert all(c["seeds_needed"] or "no seed count" in c["note"] for c in undecided)
    assert any(c["seeds_needed"] for c in undecided)
    assert (tmp_path / "figures" / "claim-table1.png").is_file()


# ------------------------------------------------------------------------------ variability

V_N, V_C = 400, 5
_V_RNG = np.random.default_rng(0)
V_LABELS = _V_RNG.integers(0, V_C, V_N)
V_SIGNAL = 2.0 * np.eye(V_C)[V_LABELS] + _V_RNG.normal(size=(V_N, V_C))
V_NOISE = {"deterministic": 0.0, "init": 1.0, "all": 1.0}


def _v_predictions(key: str, view: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Shared signal + per-run noise; the 'ensemble' view of 'all' runs has a third of it."""
    exp, seed = key.split("-")[0], int(key.split("-")[1])
    if view not in ("test", "ensemble") or (view == "ensemble" and exp != "all"):
        return None
    scale = V_NOISE[exp] / (3.0 if view == "ensemble" else 1.0)
    rng = np.random.default_rng(100 * list(V_NOISE).index(exp) + (seed if scale else 0))
    return (V_SIGNAL + scale * rng.normal(size=(V_N, V_C))).astype(np.float32), V_LABELS


def _v_study() -> Study:
    return Study.model_validate(
        {
            "id": "nondet",
            "title": "Variability toy",
            "paper": {"title": "Nondeterminism"},
            "randomness": {"kernels": "nondeterministic"},
            "documents": [{"id": "rep", "kind": "reproduction", "title": "The reproduction"}],
            "experiments": [
                {"id": "deterministic", "randomness": {"vary": [], "kernels": "deterministic"}},
                {"id": "init", "randomness": {"vary": ["init"], "kernels": "deterministic"}},
                {"id": "all"},
            ],
            "scales": {"paper": {"dataset": "CIFAR-10"}, "small": {"dataset": "digits"}},
            "claims": [
                {
                    "id": "zero",
                    "statement": "Deterministic runs are identical",
                    "kind": "variability",
                    "relation": "zero",
                    "groups": [{"experiment": "deterministic"}],
                },
                {
                    "id": "like_all",
                    "statement": "Init alone is like all sources",
                    "kind": "variability",
                    "relation": "comparable",
                    "groups": [{"experiment": "init"}],
                    "reference": {"experiment": "all"},
                },
                {
                    "id": "ens_lower",
                    "statement": "Ensembles vary less",
                    "kind": "variability",
                    "relation": "lower",
                    "groups": [{"experiment": "all", "view": "ensemble"}],
                    "reference": {"experiment": "all"},
                },
            ],
            "tables": [
                {
                    "id": "sources",
                    "title": "Variability by source",
                    "document": "rep",
                    "where": "Table 4",
                    "dataset": "CIFAR-10",
                    "unit": "",
                    "rows": ["determinism", "init", "all", "acc_ens"],
                    "columns": [
                        "sd_accuracy",
                        "disagreement",
                        "correlation",
                        "reduction_original",
                        "reduction_recalculated",
                    ],
                    "values": {
                        "init": {"sd_accuracy": {"value": 0.22, "pm": 0.02}, "disagreement": 10.7},
                        "acc_ens": {"reduction_original": 48, "reduction_recalculated": 37},
                    },
                    "layout": {
                        "reference": "all",
                        "rows": {
                            "determinism": {"experiment": "deterministic"},
                            "init": {"experiment": "init"},
                            "all": {"experiment": "all"},
                            "acc_ens": {"experiment": "all", "view": "ensemble", "label": "accelerated ensemble"},
                        },
                    },
                }
            ],
        }
    )


def _v_records(scale: str, device: str = "cpu", seeds: int = 20) -> list[dict[str, Any]]:
    recs = []
    for exp, kernels in (("deterministic", "deterministic"), ("init", "deterministic"), ("all", "nondeterministic")):
        for s in range(seeds):
            rec = _record(exp, {}, s, 60.0, scale)
            rec["key"] = f"{exp}-{s}-{scale}"
            rec["spec"]["kernels"] = kernels
            rec["env"] = {"fingerprint": "f00", "device": device, "determinism": {"kernels": kernels}}
            recs.append(rec)
    return recs


def _v_report(out: Path, scale: str, device: str = "cpu") -> dict[str, Path]:
    study = _v_study()
    recs = _v_records(scale, device)
    comp = compare(study, scale, [row(r) for r in recs], predictions=_v_predictions)
    info = {
        "scale_description": "",
        "dataset": study.scales[scale].dataset,
        "deviations": [],
        "settings": {},
        "reused_env_mismatch": [],
        "wall_s_total": 1.0,
        "workers": 1,
        "command": "",
    }
    return write_report(out, study, scale, comp, recs, ENV, plan_info=info)


@pytest.fixture(scope="module")
def v_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _v_report(tmp_path_factory.mktemp("var"), "paper")


def test_variability_markdown_has_tables_and_figures(v_report: dict[str, Path]) -> None:
    md = v_report["markdown"].read_text()
    section = md[md.index("Run-to-run variability\n") : md.index("Training curves\n")]
    assert "Variability by source (Table 4)" in section
    assert "| model set | models here | SD accuracy (%) [95% CI] | reported |" in section
    assert "0.22 ± 0.02" in section and "| accelerated ensemble (acc_ens) |" in section
    assert (
        "| model set | original paper's formula [95% CI] | reported | reproduction's "
        "recalculation [95% CI] | reported |" in section
    )
    assert "![sources](figures/var-sources.png)" in section
    assert "Reported cells: " in section and "🔴 not reproduced" in section
    assert "![like_all](figures/claim-like_all.png)" in md
    assert "r: SD accuracy (%) [" in md and "Relation comparable" in md


def test_variability_verdicts_in_results_json(v_report: dict[str, Path]) -> None:
    data = json.loads(v_report["results"].read_text())
    for key in ("study", "scale", "dataset", "env", "claims", "cells", "runs", "tables"):
        assert key in data
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    assert verdicts["zero"] == "reproduced"
    # the first look spends 0.04 of the claim's 0.05 (the rest is kept for a follow-up): with 20
    # models four of the five ratios are shown below 1 and SD accuracy is left undecided
    ens = next(c for c in data["claims"] if c["id"] == "ens_lower")
    assert (
        ens["verdict"] == "inconclusive"
        and "4/5 metrics" in ens["summary"]
        and "undecided: sd_accuracy" in ens["summary"]
    )
    assert ens["evidence"]["look"] == {
        "index": 1,
        "alpha": pytest.approx(0.04),
        "first_seed": 0,
        "seeds": 20,
        "claim_alpha": 0.05,
        "follow_up_seeds": 46,
    }
    # same noise level: never rejected (with 20 models the SDs' ratios may stay undecided)
    assert verdicts["like_all"] in ("reproduced", "inconclusive")
    rows = {(v["table"], v["row"]): v for v in data["variability"]}
    assert set(rows) == {("sources", r) for r in ("determinism", "init", "all", "acc_ens")}
    init = rows[("sources", "init")]
    assert init["n_models"] == 20
    sd = init["metrics"]["sd_accuracy"]
    assert sd["ci_low"] <= sd["value"] <= sd["ci_high"]
    assert {c["column"] for c in init["cells"]} == {"sd_accuracy", "disagreement"}
    assert rows[("sources", "determinism")]["metrics"]["disagreement"]["value"] == 0.0
    red = rows[("sources", "acc_ens")]["reductions"]
    assert set(red) == {"original", "recalculated"} and red["original"]["value"] > 0
    assert "original paper" in red["original"]["label"]


def test_variability_html_and_figures(v_report: dict[str, Path]) -> None:
    page = v_report["html"].read_text()
    assert '<h2 id="variability">Run-to-run variability</h2>' in page
    # one image per figure file (experiments of one variant each share a curves figure)
    assert page.count("<img ") == len({v_report[k] for k in v_report if ":" in k})
    assert "variability:sources" in v_report and "claim:ens_lower" in v_report
    for key in ("variability:sources", "claim:zero", "claim:like_all", "claim:ens_lower"):
        assert v_report[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_runs_say_kernels_add_no_variability(v_report: dict[str, Path], tmp_path: Path) -> None:
    md = v_report["markdown"].read_text()
    assert "On CPU, PyTorch's kernels are deterministic" in md
    assert "experiments asking for nondeterministic kernels: all" in md
    gpu = _v_report(tmp_path, "small", device="cuda")["markdown"].read_text()
    assert "PyTorch's kernels are deterministic" not in gpu
    assert "Not comparable" in gpu  # small-scale numbers are shown, not judged
    assert "Reported cells:" not in gpu


# ------------------------------------------------------------------------------ presentation


def _vrow(row: str, n_models: int, n_runs: int, *, view: str = "test", value: float = 1.0, exp: str = "all"):
    from restudy.compare.verdicts import VariabilityRow

    missing = [f"k{i}" for i in range(n_runs)] if not n_models else []
    metrics = {"sd_accuracy": {"value": value, "ci_low": value - 0.1, "ci_high": value + 0.1}} if n_models else {}
    return VariabilityRow(
        table="t",
        row=row,
        label=row,
        experiment=exp,
        view=view,
        n_runs=n_runs,
        n_models=n_models,
        missing=missing,
        nonfinite=[],
        why="" if n_models else "at least 2 models are needed",
        metrics=metrics,
    )


def test_rows_not_at_this_scale_are_one_line_and_identical_rows_merge() -> None:
    from restudy.report.variability import merged_rows, not_applicable

    rows = [
        _vrow("all_25", 20, 20),
        _vrow("all_50", 20, 20),
        _vrow("all_100", 20, 20),
        _vrow("order_25", 20, 20, value=2.0, exp="order"),
        _vrow("flip_tta", 0, 20, view="tta:flip"),
        _vrow("crop_tta", 0, 20, view="tta:crop25"),
        _vrow("cifar100", 0, 0, exp="gen"),
    ]
    merged = merged_rows(rows)
    assert [names for names, _ in merged] == [["all_25", "all_50", "all_100"], ["order_25"]]
    line = not_applicable(rows)
    assert line.count("\n") == 0 and line.startswith("Not at this scale")
    assert "flip_tta, crop_tta: these runs store no predictions for tta:flip, tta:crop25" in line
    assert "cifar100: experiment gen does not run at this scale" in line
    assert not_applicable(rows[:3]) == ""


def test_sources_are_followable_and_document_ids_expanded_once() -> None:
    from restudy.report.provenance import human_source

    notes = "originals" + ".md"  # a notes file outside the repository, which sources may still name
    docs = {"rep2022": "[Re] Nondeterminism and Instability (MLRC 2022)"}
    seen: set[str] = set()
    first = human_source(f"rep2022 §3.4; train.py ({notes} §4.2)", docs, seen)
    assert first == "rep2022 ([Re] Nondeterminism and Instability (MLRC 2022)) §3.4; train.py"
    assert human_source("rep2022 Table 4", docs, seen) == "rep2022 Table 4"
    assert human_source("scale small") == "chosen for the small scale"
    assert human_source("scales.small.rules[0]") == "a rule of the small scale (#1)"
    assert human_source("variant depth=3; base: scale small") == "variant depth=3 (base: chosen for the small scale)"
    assert notes not in human_source(f"code computes none ({notes} §4.4)")


def test_settings_are_shown_once_with_each_experiments_differences() -> None:
    from restudy.report.provenance import settings_views

    def entry(v, prov="paper", src="Sec. 2"):
        return {"value": v, "provenance": prov, "source": src}

    shared = {"optimizer": entry("sgd"), "batch_size": entry(64, "assumed", "scale small")}
    settings = {
        "a": {"-": {**shared, "epochs": entry(30, "assumed", "scale small")}},
        "b": {"-": {**shared, "epochs": entry(30, "assumed", "scale small"), "tta": entry(["flip"], "code", "x.py")}},
        "c": {"-": {**shared, "epochs": entry(6, "assumed", "scale small")}},
    }
    paper = {
        "a": {"epochs": [{"value": 200, "provenance": "paper"}]},
        "c": {"epochs": [{"value": 200, "provenance": "assumed"}]},
    }
    view = settings_views(_study(), settings, paper)
    common = {r[0]["text"]: r for r in view["common"]["rows"]}
    assert list(common) == ["batch_size", "epochs", "optimizer"]  # what most experiments use, once
    assert common["epochs"][1]["text"] == "30 (paper: 200)" and common["epochs"][1]["cls"] == "differs"
    assert common["optimizer"][1]["cls"] == ""
    by_exp = {e["experiment"]: e["table"] for e in view["experiments"]}
    assert by_exp["a"] is None
    assert [r[0]["text"] for r in by_exp["b"]["rows"]] == ["tta"]
    (epochs_c,) = by_exp["c"]["rows"]
    assert epochs_c[1]["text"] == "6" and epochs_c[1]["cls"] == ""  # the paper scale assumed it too


def test_report_ends_with_the_command_that_would_settle_an_inconclusive_claim(tmp_path: Path) -> None:
    from restudy.display.tables import duration
    from restudy.report.guide import next_steps

    study = _study()
    recs = _records("small")
    comp = compare(study, "small", [row(r) for r in recs])
    claims = [replace(c, verdict="inconclusive", seeds_needed=12) if c.id == "beats" else c for c in comp.claims]
    comp = replace(comp, claims=claims)
    info = {**_plan_info(study, "small"), "paper_data": ["cifar10: cifar-10-batches-bin/... under $RESTUDY_DATA"]}
    steps = next_steps(study, "small", comp, [row(r) for r in recs], info)
    (cmd,) = steps["commands"]
    assert cmd["command"] == "restudy run toy --scale small --seeds 12" and cmd["claims"] == ["beats"]
    # each experiment × variant's missing runs at the mean wall time of its runs, over the workers
    rows = [row(r) for r in recs]
    groups = {(r["experiment"], r["variant_id"]) for r in rows}
    walls = {g: [r["wall_s"] for r in rows if (r["experiment"], r["variant_id"]) == g] for g in groups}
    extra = sum((12 - len(w)) * sum(w) / len(w) for w in walls.values()) / info["workers"]
    assert cmd["estimate"] == duration(extra) and extra > 0
    assert "RESTUDY_DATA" in steps["paper"]["command"] and steps["paper"]["claims"] == ["table1"]
    offline = next_steps(study, "small", comp, [row(r) for r in recs], {**info, "paper_data": []})
    assert offline["paper"]["command"] == "restudy run toy --scale paper"  # reads no files: no data folder to name
    paths = write_report(tmp_path, study, "small", comp, recs, ENV, plan_info=info)
    md = paths["markdown"].read_text()
    assert md.rstrip().splitlines()[-3].startswith("- To settle beats: `restudy run toy --scale small --seeds 12`")
    assert "cifar-10-batches-bin" in md.split("What to do next\n")[1]


def test_curves_show_the_spread_over_seeds_and_no_figure_without_data(small_report) -> None:
    from restudy.report.plots import mean_curves

    paths, out = small_report
    curves = mean_curves([r for r in _records("small") if r["spec"]["experiment"] == "fc"])
    c = next(iter(curves.values()))
    assert np.all(c["test_acc:min"] <= c["test_acc"]) and np.all(c["test_acc"] <= c["test_acc:max"])
    assert np.any(c["test_acc:min"] < c["test_acc:max"])  # seeds differ: a band, not a line
    assert "claim:table1" not in paths  # not evaluated at this scale, no data: no empty figure


def test_experiments_of_one_variant_share_curve_figures_in_study_order() -> None:
    from restudy.report.plots import MAX_LINES, curve_groups

    def rec(exp: str, variant: dict, seed: int) -> dict:
        curve = [{"epoch": e, "train_acc": 50.0 + e + seed, "test_acc": 40.0 + e} for e in (1, 2)]
        return {"spec": {"experiment": exp, "variant": variant}, "curves": curve}

    singles = [f"s{i}" for i in range(MAX_LINES + 1)]
    records = [rec(e, {}, k) for e in singles for k in range(2)]
    records += [rec("sweep", {"lr": lr}, 0) for lr in ("0.1", "0.2")]
    groups = curve_groups(["sweep", *singles, "empty"], records)
    assert [g[0] for g in groups] == [["sweep"], singles[:MAX_LINES], singles[MAX_LINES:]]
    assert list(groups[1][1]) == singles[:MAX_LINES]  # one line per experiment, labelled by it
    assert len(groups[0][1]) == 2  # the sweep keeps one line per variant


def test_figures_drawn_in_processes_equal_figures_drawn_here(tmp_path: Path) -> None:
    from restudy.report.plots import MIN_PARALLEL_JOBS, run_jobs

    def job(i: int, workers: int):
        def draw_one() -> Path:
            fig, ax = draw.subplots(figsize=(2, 2))
            ax.plot([0, 1, 2], [i, i * i, 1])
            return draw.save(fig, tmp_path / f"{workers}-{i}.png", tight=False)

        return draw_one

    n = MIN_PARALLEL_JOBS + 1
    seen = []
    for workers in (1, 2):
        paths = run_jobs(
            [job(i, workers) for i in range(n)], workers, lambda done, total, w=workers: seen.append((w, done, total))
        )
        assert [p.name for p in paths] == [f"{workers}-{i}.png" for i in range(n)]  # results in job order
    assert all((tmp_path / f"1-{i}.png").read_bytes() == (tmp_path / f"2-{i}.png").read_bytes() for i in range(n))
    assert (2, n, n) in seen and (1, n, n) in seen  # progress reaches the end either way


def test_claims_not_evaluated_here_share_one_line_each_statement_once(small_report) -> None:
    paths, _ = small_report
    md = paths["markdown"].read_text()
    verdicts = md.split('<a id="verdicts"></a>')[1].split('<a id="claims"></a>')[0]
    claims = md.split('<a id="claims"></a>')[1].split("\n## ")[0]
    table_rows = [ln for ln in verdicts.splitlines() if ln.startswith("| [")]
    assert table_rows and not any("⚪" in ln for ln in table_rows)  # only claims with a verdict in the table
    line = next(ln for ln in verdicts.splitlines() if ln.startswith("⚪ not evaluated ("))
    assert "(#claim-table1)" in line  # the statement links to its anchor
    assert '<a id="claim-table1"></a>**table1**' in claims and '### <a id="claim-table1">' not in claims
    # a claim with a verdict: its statement once in the whole report (the verdicts table, linking
    # to the claim's block); the block is one item of source, evidence and figure
    assert md.count("ENorm beats the baseline") == 1 and "[ENorm beats the baseline](#claim-beats)" in verdicts
    section = claims.split('<a id="claim-beats"></a>')[1].split("### ")[0]
    assert "- Test: a beats b. · " in section and "Figure: ![beats](figures/claim-beats.png)" in section


def test_deviations_list_every_difference_from_the_paper_protocol() -> None:
    """A paper-scale run with epochs=1 (the paper: 20 or 100) and 2 seeds declares no deviation of
    its own; the report must still list both, read off what ran, never 'none'."""
    from restudy.cli.session import _plan_info
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study, parse_overrides

    study = load_study("enorm")
    paper = _plan_info(study, "paper", plan(study, "paper"), [], None, 1, "restudy run enorm --scale paper")
    assert not [d for d in paper["deviations"] if d.startswith("measured")]  # the protocol as declared
    specs = plan(study, "paper", seeds=2, overrides=parse_overrides(["epochs=1"]))
    info = _plan_info(study, "paper", specs, [], None, 1, "restudy run enorm --scale paper --seeds 2 epochs=1")
    measured = [d for d in info["deviations"] if d.startswith("measured")]
    assert "measured: command-line overrides: epochs=1" in measured
    assert any(d.startswith("measured: epochs: 1 instead of") for d in measured)
    assert any(d.startswith("measured: seeds: 2 per variant instead of") for d in measured)
    small = _plan_info(study, "small", plan(study, "small"), [], None, 1, "restudy run enorm --scale small")
    assert any("data: mnist1d instead of cifar10" in d for d in small["deviations"])


def test_markdown_writes_html_from_a_study_file_as_text(tmp_path: Path) -> None:
    """A claim statement carrying HTML is shown, never rendered: a Markdown viewer that renders
    HTML must not run a script a study file brings. The report's own anchors and folds stay."""
    d = _study().model_dump(mode="json", exclude_none=True)
    d["claims"][0]["statement"] = 'ENorm wins <script>alert(1)</script> <img src=x onerror="alert(2)">'
    study = Study.model_validate(d)
    recs = _records("small")
    comp = compare(study, "small", [row(r) for r in recs])
    md = write_report(tmp_path, study, "small", comp, recs, ENV, plan_info=_plan_info(study, "small"))[
        "markdown"
    ].read_text()
    assert "&lt;script>alert(1)&lt;/script>" in md and "&lt;img src=x" in md
    assert "<script" not in md and "<img" not in md
    assert '<a id="' in md  # the report's own anchors are kept
