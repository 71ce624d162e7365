"""The built-in study "Rethinking generalization" (Zhang et al., ICLR 2017) and the engine features
it needs: data transforms (the randomization tests), the ``data`` seed stream, stopping when the
training set is fit, per-run labels in a stack; the paper's models and preprocessing; its claim
kinds; the smoke study end to end with a report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from restudy import plugins
from restudy.cli import app
from restudy.data import Dataset
from restudy.errors import RestudyError
from restudy.execution.executor import any_stackable
from restudy.execution.stacked import execute_stack, stackable
from restudy.execution.worker import execute
from restudy.planning.runs import plan
from restudy.spec.studyfile import builtin_studies, load_study, parse_overrides
from restudy.training.build import load_data

plugins.import_study_module("restudy.studies.rethinking_generalization")

from restudy.studies.rethinking_generalization import models, preprocess, transforms  # noqa: E402

STUDY = "rethinking-generalization"


def _images(n: int, c: int = 3, h: int = 4, w: int = 4, classes: int = 10, n_test: int = 50) -> Dataset:
    """Images whose pixel value encodes (image, channel, position): a permutation is readable."""

    def x(m: int, offset: int) -> torch.Tensor:
        pos = torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)
        chan = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1) * 1000
        img = (torch.arange(m, dtype=torch.float32) + offset).view(m, 1, 1, 1) * 10000  # exact in float32
        return (pos + chan + img).contiguous()

    g = torch.Generator().manual_seed(0)
    return Dataset(
        name="toy",
        x_train=x(n, 0),
        y_train=torch.randint(0, classes, (n,), generator=g),
        x_test=x(n_test, n),
        y_test=torch.randint(0, classes, (n_test,), generator=g),
        num_classes=classes,
        idx_train=torch.arange(n),
        idx_test=torch.arange(n_test),
        description="toy images",
        normalization={"kind": "none"},
    )


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_label_corruption_changes_about_0_9_p_of_the_train_labels_and_no_test_label(p):
    data = _images(20000, h=2, w=2)
    out = transforms.corrupt_labels(data, _gen(), p)
    changed = (out.y_train != data.y_train).float().mean().item()
    expected = 0.9 * p
    sd = math.sqrt(max(expected * (1 - expected), 1e-12) / 20000)
    assert abs(changed - expected) <= 4 * sd + 1e-12, (changed, expected)
    assert torch.equal(out.y_test, data.y_test) and torch.equal(out.x_train, data.x_train)
    assert f"p={p:g}" in out.description and "changed" in out.description


def test_corrupted_sets_are_nested_and_seeded():
    data = _images(5000, h=2, w=2)
    low, high = (transforms.corrupt_labels(data, _gen(7), p).y_train != data.y_train for p in (0.3, 0.6))
    assert not (low & ~high).any()  # same seed: what p = 0.3 corrupts, p = 0.6 corrupts too
    a = transforms.random_labels(data, _gen(7)).y_train
    assert torch.equal(a, transforms.random_labels(data, _gen(7)).y_train)
    assert not torch.equal(a, transforms.random_labels(data, _gen(8)).y_train)
    counts = torch.bincount(a, minlength=10).float() / 5000
    assert counts.min() > 0.07 and counts.max() < 0.13  # uniform classes
    with pytest.raises(RestudyError, match="transform.p"):
        transforms.corrupt_labels(data, _gen(), 1.5)


def _perms(x: torch.Tensor) -> torch.Tensor:
    """The position permutation of each image and channel of a ``_images`` tensor: [N, C, P]."""
    return (x.reshape(x.shape[0], x.shape[1], -1) % 1000).long()


def test_shuffled_pixels_use_one_permutation_for_every_train_and_test_image():
    data = _images(30)
    out = transforms.shuffled_pixels(data, _gen())
    p_train, p_test = _perms(out.x_train), _perms(out.x_test)
    first = p_train[0, 0]
    assert sorted(first.tolist()) == list(range(16)) and not torch.equal(first, torch.arange(16))
    assert (p_train == first).all() and (p_test == first).all()  # every image, every channel, both splits
    # Only positions move: each image keeps its own values (image and channel codes unchanged).
    assert torch.equal(torch.sort(out.x_train.flatten(1))[0], torch.sort(data.x_train.flatten(1))[0])
    assert torch.equal(out.y_train, data.y_train) and torch.equal(out.y_test, data.y_test)
    assert transforms.shuffled_pixels.seeded_inputs


def test_random_pixels_use_a_permutation_per_image_with_channels_kept_together():
    data = _images(200)
    out = transforms.random_pixels(data, _gen())
    perms = _perms(out.x_train)
    assert (perms == perms[:, :1]).all()  # the channels of a pixel move together
    distinct = {tuple(perm.tolist()) for perm in perms[:, 0]}
    assert len(distinct) == 200  # a different permutation for each image (16! choices)
    assert all(sorted(q) == list(range(16)) for q in distinct)
    assert len({tuple(q.tolist()) for q in _perms(out.x_test)[:, 0]}) == 50
    assert torch.equal(torch.sort(out.x_train.flatten(1))[0], torch.sort(data.x_train.flatten(1))[0])
    assert torch.equal(out.y_test, data.y_test)


def test_gaussian_inputs_match_the_per_channel_moments_of_the_train_inputs():
    g = _gen(3)
    base = _images(4000, h=4, w=4)
    x = torch.randn(4000, 3, 4, 4, generator=g) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1)
    x = x + torch.tensor([0.0, -1.0, 3.0]).view(1, 3, 1, 1)
    data = Dataset(**{**base.__dict__, "x_train": x})
    out = transforms.gaussian(data, _gen())
    mean, std = transforms.channel_moments(out.x_train)
    want_mean, want_std = transforms.channel_moments(x)
    assert torch.allclose(mean, want_mean, atol=0.05) and torch.allclose(std, want_std, rtol=0.03)
    assert not torch.equal(out.x_train[:, 0], x[:, 0]) and out.x_test.shape == data.x_test.shape
    flat = out.x_train[:, 0].flatten()
    centred = (flat - flat.mean()) / flat.std()
    assert abs(float((centred**3).mean())) < 0.1 and abs(float((centred**4).mean()) - 3) < 0.2  # Gaussian shape
    assert torch.equal(out.y_train, data.y_train) and torch.equal(out.y_test, data.y_test)


def test_transforms_are_applied_once_per_run_from_the_data_stream():
    specs = plan(load_study(STUDY), "smoke", experiments=["table1"])
    rl = [s for s in specs if s.variant == {"model": "mlp1", "regime": "random_labels"}]
    plain = [s for s in specs if s.variant == {"model": "mlp1", "regime": "plain"}][0]
    a, b = (load_data(s.settings, s.seeds["data"]) for s in rl)
    clean = load_data(plain.settings, plain.seeds["data"])
    assert rl[0].seeds["data"] != rl[1].seeds["data"]
    assert not torch.equal(a.y_train, b.y_train)  # each seed its own random labels
    assert load_data(rl[0].settings, rl[0].seeds["data"]) is a  # cached per process
    assert torch.equal(a.y_test, clean.y_test) and torch.equal(a.x_train, clean.x_train)
    assert "transform: train labels corrupted with p=1" in a.description
    bad = plain.settings.with_values({"transform.p": 0.5}, "test")
    with pytest.raises(RestudyError, match="transform arguments without transforms"):
        load_data(bad)
    typo = rl[0].settings.with_values({"transform.q": 0.5}, "test")
    with pytest.raises(RestudyError, match="no listed transform takes"):
        load_data(typo, 1)


# --------------------------------------------------------------------------- models, preprocessing


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_papers():
    shape = (3, 28, 28)
    assert _count(models.small_inception(shape, 10)) == 1_649_402
    assert _count(models.small_inception(shape, 10, bn=False)) == 1_649_402
    assert _count(models.small_alexnet(shape, 10)) == 1_387_786
    mlp = {
        h: plugins.create("model", "fc", input_shape=shape, num_classes=10, hidden=h, width=512, bias=True)
        for h in (0, 2)
    }
    assert _count(mlp[0]) == 1_209_866  # MLP 1x512
    assert _count(mlp[2]) == 1_735_178  # MLP 3x512
    x = torch.randn(2, *shape)
    for m in (models.small_inception(shape, 10), models.small_alexnet(shape, 10)):
        assert m(x).shape == (2, 10)
    assert models.small_inception((1, 8, 8), 10, width=0.25)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert models.small_alexnet((1, 8, 8), 10, width=0.25)(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(RestudyError, match="image inputs"):
        models.small_inception((64,), 10)


def test_inception_batchnorm_everywhere_nowhere_or_in_the_two_downsample_modules_only():
    shape = (3, 28, 28)

    def bns(m: torch.nn.Module) -> list[str]:
        return [name for name, x in m.named_modules() if isinstance(x, torch.nn.BatchNorm2d)]

    assert len(bns(models.small_inception(shape, 10))) == 1 + 2 * 8 + 2  # stem, 8 Inception modules, 2 downsamples
    assert bns(models.small_inception(shape, 10, bn=False)) == []
    down = bns(models.small_inception(shape, 10, bn="downsample"))
    assert len(down) == 2 and all(".conv." in n for n in down)  # the stride-2 convs of the downsample modules
    assert _count(models.small_inception(shape, 10, bn="downsample")) == 1_649_402  # BN adds no parameters
    with pytest.raises(RestudyError, match="downsample"):
        models.small_inception(shape, 10, bn="some")


def test_center_crop_and_per_image_whitening():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    c = preprocess.center_crop(x, 28)
    assert c.shape == (2, 3, 28, 28) and torch.equal(c, x[:, :, 2:30, 2:30])
    w = preprocess.whiten(torch.rand(5, 3, 28, 28, generator=_gen()))
    flat = w.flatten(1).double()
    assert torch.allclose(flat.mean(1), torch.zeros(5, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(flat.std(1, correction=0), torch.ones(5, dtype=torch.float64), atol=1e-5)
    const = preprocess.whiten(torch.full((1, 3, 28, 28), 0.5))
    assert torch.equal(const, torch.zeros_like(const))  # std floored at 1/sqrt(n): no division by zero


# --------------------------------------------------------------------------- stopping when fit, stacks


def _fit_specs():
    over = parse_overrides(["epochs=200", "optimizer.lr=0.1", "schedule.gamma=1.0", "model.width=128"])
    specs = plan(load_study(STUDY), "smoke", overrides=over, experiments=["corruption"], seeds=3)
    return [s for s in specs if s.variant["p"] == "1.0"]


def test_runs_stop_when_the_training_set_is_fit_and_a_stack_of_own_labels_matches_them(tmp_path):
    specs = _fit_specs()
    assert all(stackable(s) for s in specs) and len({s.seeds["data"] for s in specs}) == 3
    alone = [execute(s.to_dict(), str(tmp_path / "one" / s.key), 1) for s in specs]
    stacked = execute_stack([s.to_dict() for s in specs], [str(tmp_path / "stack" / s.key) for s in specs], 1)
    for one, st in zip(alone, stacked):
        m = one["metrics"]
        assert one["status"] == "finished" and m["train_acc"] == 100.0
        assert m["fit_epoch"] == m["epochs_done"] == len(one["curves"]) < 200  # stopped at the fit
        assert m["fit_step"] == m["fit_epoch"] * math.ceil(m["n_train"] / 50)
        assert m["n_classes"] == st["metrics"]["n_classes"] == 10  # chance, for the did-not-learn check
        assert all(c["train_acc"] < 100.0 for c in one["curves"][:-1])
        # The stack trains each model on its own labels: the first epoch agrees to float32 rounding
        # (tests/test_stacked.py); at lr 0.1 rounding grows over training, so the epoch at which
        # the set is fit may differ by a few epochs, and each stacked model stops at its own fit.
        first_one, first_st = one["curves"][0], st["curves"][0]
        assert first_st["train_acc"] == first_one["train_acc"]
        assert abs(first_st["train_loss"] - first_one["train_loss"]) <= 1e-5 * first_one["train_loss"]
        sm = st["metrics"]
        assert sm["train_acc"] == 100.0 and sm["fit_epoch"] == sm["epochs_done"] == len(st["curves"])
        assert abs(sm["fit_step"] - m["fit_step"]) <= 0.25 * m["fit_step"]
        assert st["env"]["execution"] == "stacked" and st["env"]["dataset"] == one["env"]["dataset"]
    assert len({r["env"]["dataset"] for r in alone}) == 3  # each run's own random labels


def test_seeded_inputs_are_not_stacked_and_label_transforms_are():
    specs = plan(load_study(STUDY), "smoke", experiments=["randomization"])
    why = {s.variant["test"]: stackable(s) for s in specs}
    assert why["true_labels"] and why["random_labels"]
    for name in ("shuffled_pixels", "random_pixels", "gaussian"):
        assert not why[name] and "inputs depend on the seed" in why[name].reason


def test_without_stop_at_fit_the_metrics_are_unchanged(tmp_path):
    spec = plan(load_study("enorm"), "smoke", seeds=1, experiments=["fc"])[0]
    rec = execute(spec.to_dict(), str(tmp_path / spec.key), 1)
    assert "fit_step" not in rec["metrics"] and "data" in spec.seeds


# --------------------------------------------------------------------------- the study


def test_the_study_id_has_a_dash_and_plans_at_every_scale():
    assert builtin_studies()[STUDY].parent.name == "rethinking_generalization"
    study = load_study(STUDY)
    assert study.id == STUDY
    runs = {scale: plan(study, scale) for scale in ("smoke", "small", "paper")}
    assert len(runs["smoke"]) < len(runs["small"])
    # the paper runs them all but m3_longer, whose pair (seed_regularizers) trains 100 epochs at small scale only
    assert {s.experiment for s in runs["paper"]} == {e.id for e in study.experiments} - {"m3_longer"}
    small = [s for s in runs["small"] if s.experiment == "corruption"]
    assert {s.variant["p"] for s in small} == {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}
    # the sweep's MLPs train stacked: every point has enough seeds for the automatic choice
    assert all(stackable(s) for s in small) and {s.seed_index for s in small} == set(range(8))
    assert any_stackable(small) and len(small) == 2 * 6 * 8


def test_smoke_study_end_to_end_with_a_report(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(
        app, ["run", STUDY, "--scale", "smoke", "--workers", "0", "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    kinds = {c["kind"] for c in res["claims"]}
    assert {"chance_level", "fit_slowdown", "modest_effect", "threshold", "trend", "numeric", "step_loss"} <= kinds
    # Smoke checks the pipeline only: no claim gets a verdict (or a figure) from it.
    assert all(c["verdict"] == "not_evaluated" and "smoke" in c["summary"] for c in res["claims"])
    assert all(r["status"] in ("finished", "diverged") for r in res["runs"])
    md = (out / "report.md").read_text()
    assert "a *chance level* claim holds" in md and "scikit-learn digits" in md
    # Table 1 was reported on CIFAR-10: its digits runs are set beside it, not measured against it
    t1 = md.split('<a id="table-t1_test"></a>', 1)[1].split("\n### ", 1)[0]
    assert "Not comparable: these runs are smoke scale on scikit-learn digits" in t1
    assert "| cell | reproduced mean ± SD (n) | CI | reported |\n" in t1
    assert "rel. error" not in t1 and "🔴" not in t1 and "MSD" not in t1 and "Side by side only" in t1


def _random_label_rows(accs: list[float]) -> list[dict]:
    """Finished Table 1 runs of MLP 1x512 on random labels with these test accuracies (10,000 test
    examples), one per seed."""
    return [
        {
            "key": f"r{i}",
            "experiment": "table1",
            "variant": {"model": "mlp1", "regime": "random_labels"},
            "variant_id": "model=mlp1,regime=random_labels",
            "seed_index": i,
            "status": "finished",
            "metrics": {"n_test": 10000, "test_acc": a},
        }
        for i, a in enumerate(accs)
    ]


@pytest.mark.parametrize("claim_id", ["fit_slowdown_small_factor", "random_labels_test_at_chance"])
def test_the_study_claim_kinds_draw_their_figure_from_the_evidence(tmp_path, claim_id):
    from restudy.api import claim_kind

    if claim_id == "fit_slowdown_small_factor":
        steps = {0: (100, 110, 90), 1: (400, 420, 390)}
        values = {("mlp1", str(float(p)), i): {"fit_step": s} for p, row in steps.items() for i, s in enumerate(row)}
        rows = _rows(values)
    else:
        rows = _random_label_rows([10.1, 9.9, 10.0, 10.2, 9.8])
    res = _evaluate(claim_id, rows)
    claim = next(c for c in load_study(STUDY).claims if c.id == claim_id)
    path = claim_kind(claim.kind).figure(claim, res, tmp_path / "claim.png")
    assert path is not None and path.stat().st_size > 1000


# --------------------------------------------------------------------------- claim kinds on known runs


def _rows(values: dict[tuple[str, str, int], dict]) -> list[dict]:
    """Run rows of the corruption experiment: (model, p, seed index) -> metrics."""
    return [
        {
            "key": f"{m}-{p}-{i}",
            "experiment": "corruption",
            "variant": {"model": m, "p": p},
            "variant_id": f"model={m},p={p}",
            "seed_index": i,
            "status": "finished",
            "metrics": {"n_test": 450, **metrics},
        }
        for (m, p, i), metrics in values.items()
    ]


def _evaluate(claim_id: str, rows: list[dict]):
    from restudy.api import EvaluationContext, claim_kind

    study = load_study(STUDY)
    claim = next(c for c in study.claims if c.id == claim_id)
    ctx = EvaluationContext(study=study, scale="small", dataset="toy", rows=rows)
    return claim_kind(claim.kind).evaluate(claim, ctx)


def test_fit_slowdown_is_the_paired_ratio_and_never_fit_runs_leave_it_open():
    steps = {0: (100, 110, 90), 1: (400, 420, 390)}  # p -> steps to fit per seed: about x4
    values = {("mlp1", str(float(p)), i): {"fit_step": s} for p, row in steps.items() for i, s in enumerate(row)}
    res = _evaluate("fit_slowdown_small_factor", _rows(values))
    g = res.evidence["groups"][0]
    ratios = [400 / 100, 420 / 110, 390 / 90]
    assert res.verdict == "reproduced" and g["pairs"] == 3
    assert g["factor"] == pytest.approx(math.exp(sum(map(math.log, ratios)) / 3))
    assert 1 < g["ci_low"] < g["factor"] < g["ci_high"] <= 10
    values[("mlp1", "1.0", 2)] = {"fit_step": None}  # one run never fit: its time is only a lower bound
    assert _evaluate("fit_slowdown_small_factor", _rows(values)).verdict == "inconclusive"
    slow = {k: {"fit_step": v["fit_step"] * (50 if k[1] == "1.0" else 1)} for k, v in values.items() if k[2] < 2}
    slow[("mlp1", "0.0", 2)], slow[("mlp1", "1.0", 2)] = {"fit_step": 100}, {"fit_step": 5500}
    assert _evaluate("fit_slowdown_small_factor", _rows(slow)).verdict == "not_reproduced"  # ~x50


def test_chance_level_needs_the_ci_inside_the_binomial_band():
    rows = _random_label_rows

    at_chance = _evaluate("random_labels_test_at_chance", rows([10.1, 9.9, 10.0, 10.2, 9.8]))
    g = at_chance.evidence["groups"][0]
    assert at_chance.verdict == "reproduced" and g["floor_sd"] == pytest.approx(0.3)  # 100·√(0.09/10⁴)
    assert g["band"] == pytest.approx([9.4, 10.6])
    assert _evaluate("random_labels_test_at_chance", rows([30.0, 31.0, 29.0])).verdict == "not_reproduced"
    undecided = _evaluate("random_labels_test_at_chance", rows([9.0, 11.5, 10.0]))
    assert undecided.verdict == "inconclusive"
    # mean 10.17, SD 1.26: the 90 % CI fits in the ±0.6 band around chance only with many seeds
    n = undecided.seeds_needed
    assert n is not None and n > 3 and undecided.evidence["seeds_needed"] == n
    assert f"about {n} seeds" in undecided.summary
    more = rows([9.0, 11.5, 10.0] * (n // 3 + 1))  # at least that many seeds, spread as observed
    assert _evaluate("random_labels_test_at_chance", more).verdict == "reproduced"


def test_fig_1a_the_training_loss_per_step_is_drawn_from_a_smoke_run(tmp_path):
    from restudy.api import claim_kind
    from restudy.storage.record import row

    study = load_study(STUDY)
    specs = plan(study, "smoke", experiments=["randomization"])
    assert {s.settings.values["curve_every_steps"] for s in specs} == {2}
    records = [execute(s.to_dict(), str(tmp_path / s.key), 1) for s in specs]
    steps = records[0]["metrics"]["epochs_done"] * math.ceil(200 / 50)  # 200 train images, batch 50
    assert all([p["step"] for p in r["step_curve"]] == list(range(2, steps + 1, 2)) for r in records)
    res = _evaluate("randomizations_loss_falls", [row(r) for r in records])
    groups = {g["label"] for g in res.evidence["groups"]}
    assert groups == {
        f"test={t}" for t in ("true_labels", "random_labels", "shuffled_pixels", "random_pixels", "gaussian")
    }
    claim = next(c for c in study.claims if c.id == "randomizations_loss_falls")
    path = claim_kind(claim.kind).figure(claim, res, tmp_path / "fig1a.png")
    assert path is not None and path.stat().st_size > 1000


def test_step_loss_needs_the_ci_of_the_final_loss_below_max_loss_and_a_step_curve():
    def rows(finals: list[float], curve: bool = True) -> list[dict]:
        return [
            {
                "key": f"r{i}",
                "experiment": "randomization",
                "variant": {"test": "true_labels"},
                "variant_id": "test=true_labels",
                "seed_index": i,
                "status": "finished",
                "metrics": {},
                "step_curve": [{"step": 10, "loss": 2.3, "n": 10}, {"step": 20, "loss": f, "n": 10}] if curve else [],
            }
            for i, f in enumerate(finals)
        ]

    assert _evaluate("randomizations_loss_falls", rows([0.01, 0.02, 0.015])).verdict == "reproduced"
    assert _evaluate("randomizations_loss_falls", rows([1.0, 1.1, 0.9])).verdict == "not_reproduced"
    assert _evaluate("randomizations_loss_falls", rows([0.01, 0.9, 0.4])).verdict == "inconclusive"
    res = _evaluate("randomizations_loss_falls", rows([0.01, 0.02], curve=False))
    assert res.verdict == "not_evaluated" and "no step curve" in res.summary
    g = _evaluate("randomizations_loss_falls", rows([0.01, 0.02, 0.015])).evidence["groups"][0]
    assert g["steps"] == [10, 20] and g["mean_loss"] == pytest.approx([2.3, 0.015])


def test_a_step_loss_claim_with_max_loss_not_above_zero_is_a_problem():
    claim = next(c for c in load_study(STUDY).claims if c.id == "randomizations_loss_falls")
    assert claim.problems(None) == []
    for bad in (0.0, -1.0, float("nan")):
        assert claim.model_copy(update={"max_loss": bad}).problems(None)[0][0] == ("max_loss",)


def test_the_paper_path_reads_cifar10_binary_files_crops_whitens_and_trains(tmp_path):
    """The paper scale end to end on fake files in CIFAR-10's real binary layout (checked by md5):
    28×28 centre crops, per-image whitening, Small Inception with random crops and weight decay,
    and MLP 1x512 on random labels, as Table 1 runs them (tiny subsets, one epoch)."""
    from restudy.data import cifar as cifar_mod
    from test_data import fake_md5s, write_fake_cifar

    write_fake_cifar(tmp_path, cifar_mod.CIFAR10)
    md5 = json.dumps(fake_md5s(tmp_path, cifar_mod.CIFAR10))
    common = [f"data.root={tmp_path}", f"data.md5={md5}", "data.n_train=40", "data.n_test=6", "epochs=1"]
    study = load_study(STUDY)

    def one(extra: list[str], **variant: str) -> dict:
        # only the variant that runs: model.width=0.1 suits the Inception, not the MLPs' integer widths
        only = {k: [v] for k, v in variant.items()}
        specs = plan(
            study, "paper", seeds=1, experiments=["table1"], overrides=parse_overrides(common + extra), only=only
        )
        spec = next(s for s in specs if s.variant == variant)
        assert spec.settings.values["data"] == "cifar10_zhang" and spec.settings.values["data.crop"] == 28
        return execute(spec.to_dict(), str(tmp_path / "runs" / spec.key), 1)

    inception = one(["model.width=0.1"], model="inception", regime="crop_wd")
    mlp = one([], model="mlp1", regime="random_labels")
    for rec in (inception, mlp):
        assert rec["status"] == "finished", rec.get("reason")
        assert 0.0 <= rec["metrics"]["test_acc"] <= 100.0
        assert "28" in rec["env"]["dataset"] and "whiten" in rec["env"]["dataset"]
    assert mlp["spec"]["settings"]["transforms"] == ["random_labels"]
    assert inception["spec"]["settings"]["augment"] == "crop"
    assert inception["spec"]["settings"]["model"] == "small_inception"


def test_modest_effect_averages_the_networks_of_a_seed_and_counts_seeds():
    def rows(diff: dict[tuple[str, int], float]) -> list[dict]:
        out = []
        for (m, i), d in diff.items():
            for regime, acc in (("plain", 80.0), ("crop_wd", 80.0 + d)):
                out.append(
                    {
                        "key": f"{m}-{regime}-{i}",
                        "experiment": "table1",
                        "variant": {"model": m, "regime": regime},
                        "variant_id": f"model={m},regime={regime}",
                        "seed_index": i,
                        "status": "finished",
                        "metrics": {"n_test": 10**7, "test_acc": acc},  # a test set without noise of its own
                    }
                )
        return out

    # three networks of one seed are not three replicates: too few seeds to judge
    one = _evaluate("regularizers_modest", rows({(m, 0): 1.0 for m in ("inception", "mlp1", "mlp3")}))
    assert one.verdict == "not_evaluated" and "1 seed(s) with pairs (3 pairs)" in one.summary
    diffs = {(m, i): 1.0 + 0.5 * i + (0.3 if m == "mlp1" else 0.0) for m in ("inception", "mlp1") for i in range(3)}
    res = _evaluate("regularizers_modest", rows(diffs))
    assert res.verdict == "reproduced" and res.evidence["n"] == 3 and len(res.evidence["diffs"]) == 6
    assert res.evidence["seed_means"] == pytest.approx([1.15, 1.65, 2.15])  # pooled: the networks averaged
    # each network is a cell of its own (quantifier every): n counts that network's seeds
    assert [(c["cell"], c["n"], c["passed"]) for c in res.evidence["cells"]] == [
        ("model inception", 3, True),
        ("model mlp1", 3, True),
    ]
    assert "model mlp1: 1.80 pp" in res.summary and "n=3 seeds" in res.summary


def test_a_modest_effect_between_two_models_at_chance_is_no_evidence():
    """Both arms at chance (train accuracy 10 %) differ by nothing: that is not a modest effect of
    the regularizers, it is two failed optimisations. Such cells give no verdict."""

    def rows(train_acc: float) -> list[dict]:
        return [
            {
                "key": f"{m}-{regime}-{i}",
                "experiment": "table1",
                "variant": {"model": m, "regime": regime},
                "variant_id": f"model={m},regime={regime}",
                "seed_index": i,
                "status": "finished",
                "metrics": {
                    "n_test": 10**7,
                    "test_acc": 10.0 + 0.01 * i,
                    "train_acc": train_acc,
                    "n_train": 1000,
                    "n_classes": 10,
                },
            }
            for m in ("inception", "mlp1")
            for regime in ("plain", "crop_wd")
            for i in range(4)
        ]

    stuck = _evaluate("regularizers_modest", rows(10.2))
    assert stuck.verdict == "inconclusive" and "did not learn" in stuck.summary
    learned = _evaluate("regularizers_modest", rows(99.0))
    assert learned.verdict == "reproduced"
