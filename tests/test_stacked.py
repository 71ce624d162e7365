"""Many models at once: a stack of K fc nets trains each one as a run of its own would.

Tolerances (measured on the project machine, torch 2.13 CPU, 1 thread). Batched and single
matmuls round differently, so float32 results differ by rounding, then by however much training
amplifies it. Over the ``CASES`` below (smoke data, 3-4 epochs) the global relative difference of
the final test logits, ‖stacked − looped‖ / ‖looped‖, was 1.6e-7 to 7.2e-7, curve losses agreed to
2.3e-7 relative and every accuracy was equal; BatchNorm with Adam at depth 9 reached 1.6e-6.
``RTOL = 1e-5`` leaves about 10x headroom for other CPUs' kernels. In float64 the parameters agree
to 1e-13 (``test_float64_stacking_is_exact``), in a setting where float32 rounding grows to 2e-5 to
4e-5 (up to 0.8 at lr 0.1 without momentum): the algorithm is the same, only rounding differs.
Chaotic settings amplify rounding far beyond any such tolerance: the small scale's depth-9 baseline
(20 epochs) ends 0.1-6 accuracy points apart between stacked and looped runs, about as far apart as
two looped runs with 1 and 2 threads, so such settings are not compared here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from restudy import plugins
from restudy.errors import RestudyError
from restudy.execution.executor import InlineExecutor, LocalExecutor, StackedExecutor, choose_executor
from restudy.execution.runner import run_study
from restudy.execution.stacked import (
    STACK_FLOP_LIMIT,
    StackedMLP,
    build_stack,
    execute_stack,
    stackable,
    step_flops,
)
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import RunSpec, plan
from restudy.planning.seeding import scoped_seed
from restudy.spec.settings import RunSettings
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.safeio import load_tensors
from restudy.training.build import build_model, load_data, optimizer_and_schedule, steps_per_epoch, streams
from restudy.training.loop import train
from restudy.training.loop_stacked import train_stacked

RTOL = 1e-5  # float32: global relative difference of logits, losses and parameters
RTOL_FLOAT64 = 1e-12  # float64 parameters: the stacked and the looped algorithm are the same
RTOL_FLOAT32_CAST = 1e-7  # float64 runs' logits, which evaluation returns in float32
DIGITS = ["data=digits", "data.n_train=400", "data.n_test=200"]


def _specs(experiment: str = "fc", method: str = "baseline", depth: str = "1", overrides=(), seeds: int = 4):
    """``seeds`` runs of one smoke-scale variant of the ENorm study."""
    specs = plan(
        load_study("enorm"), "smoke", seeds=seeds, overrides=parse_overrides(list(overrides)), experiments=[experiment]
    )
    return [s for s in specs if s.variant == {"method": method, "depth": depth}]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Global relative difference ‖a − b‖ / ‖b‖."""
    return ((a - b).norm() / b.norm()).item()


def _data(spec):
    return load_data(spec.settings)


def _close(a: float, b: float, rtol: float) -> bool:
    """Equal within ``rtol`` (relative), or both NaN."""
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= rtol * max(abs(b), 1e-12)


def _assert_same_run(stacked: dict, looped: dict, stacked_dir, looped_dir) -> None:
    """Two records of one spec agree: status, curves (accuracies within one example, losses within
    RTOL) and final test logits (RTOL)."""
    assert (stacked["key"], stacked["status"], stacked["reason"]) == (looped["key"], looped["status"], looped["reason"])
    assert len(stacked["curves"]) == len(looped["curves"])
    n_train, n_test = looped["metrics"]["n_train"], looped["metrics"]["n_test"]
    for rs, rl in zip(stacked["curves"], looped["curves"]):
        assert set(rs) == set(rl) and rs["epoch"] == rl["epoch"] and rs["lr"] == rl["lr"]
        assert abs(rs["train_acc"] - rl["train_acc"]) <= 100 / n_train + 1e-9
        assert abs(rs["test_acc"] - rl["test_acc"]) <= 100 / n_test + 1e-9
        for key in ("train_loss_running", "train_loss", "test_loss"):
            assert _close(rs[key], rl[key], RTOL), (key, rs[key], rl[key])
    assert stacked["metrics"]["epochs_done"] == looped["metrics"]["epochs_done"]
    ls, ll = load_tensors(stacked_dir / LOGITS_FILE), load_tensors(looped_dir / LOGITS_FILE)
    assert torch.equal(ls["labels"], ll["labels"]) and torch.equal(ls["index"], ll["index"])
    assert _rel(ls["logits"], ll["logits"]) <= RTOL


CASES = {
    "sgd-momentum-no-bias": ("fc", "baseline", "1", ["epochs=4", "optimizer.momentum=0.9"]),
    "sgd-nesterov-bias-deep-cosine": (
        "fc_bias",
        "baseline",
        "9",
        ["epochs=4", "optimizer.momentum=0.9", "optimizer.nesterov=true", "schedule=cosine"],
    ),
    "adam-no-bias-deep": ("fc", "baseline", "9", ["epochs=4", "optimizer=adam", "optimizer.lr=0.001"]),
    "adam-bias-weight-decay": (
        "fc_bias",
        "baseline",
        "1",
        ["epochs=4", "optimizer=adam", "optimizer.lr=0.003", "optimizer.weight_decay=0.0005"],
    ),
    "batchnorm-sgd-momentum": ("fc", "bn", "1", ["epochs=4", "optimizer.momentum=0.9"]),
    "augmented-images-bias": (
        "fc_bias",
        "baseline",
        "1",
        [*DIGITS, "epochs=3", "augment=flip_crop", "augment.pad=1", "optimizer.momentum=0.9"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_stack_equals_its_runs_one_by_one(tmp_path, case):
    experiment, method, depth, overrides = CASES[case]
    specs = _specs(experiment, method, depth, overrides)
    assert len(specs) == 4
    for source in ("init", "order", "augment"):  # every stream differs from model to model
        assert len({s.seeds[source] for s in specs}) == 4
    looped = [execute(s.to_dict(), str(tmp_path / "loop" / s.key), 1) for s in specs]
    stacked = execute_stack([s.to_dict() for s in specs], [str(tmp_path / "stack" / s.key) for s in specs], 1)
    for rs, rl in zip(stacked, looped):
        _assert_same_run(rs, rl, tmp_path / "stack" / rs["key"], tmp_path / "loop" / rl["key"])
        assert rs["env"]["execution"] == "stacked" and rs["env"]["stack_size"] == 4
        # Stacked and one-by-one results agree only to rounding: the execution mode is part of
        # the environment fingerprint, so a resumed study never mixes them unflagged.
        assert rs["env"]["fingerprint"] != rl["env"]["fingerprint"]
        assert rs["timings"]["stack_wall_s"] >= rs["timings"]["wall_s"] > 0
    finals = [load_tensors(tmp_path / "stack" / r["key"] / LOGITS_FILE)["logits"] for r in stacked]
    assert all(_rel(finals[0], other) > 1e-3 for other in finals[1:])  # four different models


def _reference_and_stack(specs, dtype: torch.dtype, tweak=None):
    """Each spec trained alone by ``train()`` and all of them by ``train_stacked()``, built the way
    the runs build them (``restudy.training.build``), in ``dtype``; ``tweak(k, model)`` may change model k
    before training."""
    s, data = specs[0].settings, _data(specs[0])
    e = s.engine
    x, y, xt, yt = data.x_train.to(dtype), data.y_train, data.x_test.to(dtype), data.y_test
    steps = steps_per_epoch(s, x.shape[0])

    def model(k):
        m = build_model(specs[k], tuple(data.input_shape), data.num_classes)[0].to(dtype)
        if tweak is not None:
            tweak(k, m)
        return m

    def setup(m):
        optimizer, schedule = optimizer_and_schedule(m, s, steps)
        return dict(
            optimizer=optimizer,
            schedule=schedule,
            epochs=e.epochs,
            batch_size=e.batch_size,
            label_smoothing=e.label_smoothing,
        )

    ks = range(len(specs))
    alone = []
    for k in ks:
        m = model(k)
        order, augment = streams(specs[k], "cpu")
        alone.append((m, train(m, x, y, xt, yt, order=order, augment=augment, **setup(m))))
    stack = StackedMLP.from_models([model(k) for k in ks])
    orders, augments = zip(*(streams(specs[k], "cpu") for k in ks))
    results = train_stacked(stack, x, y, xt, yt, orders=orders, augments=augments, **setup(stack))
    return alone, stack, results


def _param_rel(module: torch.nn.Module, stack: StackedMLP, k: int) -> float:
    linears = [m for m in module if isinstance(m, torch.nn.Linear)]
    return max(_rel(w, lin.weight) for lin, w in zip(linears, stack.linear_weights(k)))


@pytest.mark.parametrize(
    "optimizer", [["optimizer.momentum=0.9", "optimizer.weight_decay=0.001"], ["optimizer=adam", "optimizer.lr=0.001"]]
)
def test_float64_stacking_is_exact(optimizer):
    """Without float32 rounding a setting that amplifies it (BatchNorm, depth 9, augmentation)
    agrees to float64 rounding: same initialization, batches, gradients and updates."""
    specs = _specs("fc", "bn", "9", [*DIGITS, "epochs=3", "augment=flip", *optimizer])
    alone, stack, results = _reference_and_stack(specs, torch.float64)
    for k, ((module, ref), got) in enumerate(zip(alone, results)):
        assert got.status == ref.status == "finished" and got.steps == ref.steps
        assert _param_rel(module, stack, k) <= RTOL_FLOAT64
        assert _rel(got.test_logits.double(), ref.test_logits.double()) <= RTOL_FLOAT32_CAST
        bn = [m for m in module if isinstance(m, torch.nn.BatchNorm1d)]
        assert all(_rel(s.running_var[k], m.running_var) <= RTOL_FLOAT64 for s, m in zip(stack.norms, bn))


def test_a_diverging_model_ends_alone_and_the_others_match_their_runs():
    specs = _specs("fc_bias", "baseline", "1", ["epochs=4", "optimizer.momentum=0.9"])

    def blow_up_model_1(k, module):
        if k == 1:  # one huge weight: the loss overflows to NaN at the 6th step of the first epoch
            with torch.no_grad():
                module[1].weight[0, 0] = 1e12

    alone, stack, results = _reference_and_stack(specs, torch.float32, blow_up_model_1)
    ref, got = alone[1][1], results[1]
    assert ref.status == got.status == "diverged"
    assert got.reason == ref.reason == "non-finite loss (nan) at epoch 0, step 5"
    assert (got.steps, got.epochs_done, len(got.curves)) == (ref.steps, ref.epochs_done, 1)
    for key in ref.curves[0]:
        if key not in ("train_s", "eval_s"):
            assert _close(got.curves[0][key], ref.curves[0][key], RTOL), key
    assert torch.equal(got.test_logits.isnan(), ref.test_logits.isnan())
    assert torch.isfinite(torch.cat([p.detach().flatten() for p in stack.parameters()])).all()  # inert slice
    for k in (0, 2, 3):
        module, ref = alone[k]
        assert results[k].status == ref.status == "finished" and len(results[k].curves) == 4
        assert _param_rel(module, stack, k) <= RTOL
        assert _rel(results[k].test_logits, ref.test_logits) <= RTOL


def test_a_failing_stack_fails_every_run_with_the_error(tmp_path):
    # an argument the model's factory refuses (planning refuses it too: set here behind its back)
    specs = [
        RunSpec.from_dict({**d, "settings": {**d["settings"], "model.colour": 1}})
        for d in (s.to_dict() for s in _specs())
    ]
    records = execute_stack([s.to_dict() for s in specs], [str(tmp_path / s.key) for s in specs], 1)
    assert [r["key"] for r in records] == [s.key for s in specs]
    for r in records:
        assert r["status"] == "failed" and "colour" in r["reason"] and r["metrics"] == {}
        assert (tmp_path / r["key"] / "run.json").exists()


def test_runs_with_different_settings_never_share_a_stack(tmp_path):
    specs = _specs(depth="1") + _specs(depth="9")
    records = execute_stack([s.to_dict() for s in specs], [str(tmp_path / s.key) for s in specs], 1)
    assert all(r["status"] == "failed" and "same settings" in r["reason"] for r in records)


def test_what_may_be_stacked():
    tiny = _specs()[0]
    assert stackable(tiny) and stackable(tiny).flops < STACK_FLOP_LIMIT
    assert stackable(_specs(method="bn")[0])
    enorm = stackable(_specs(method="enorm")[0])
    assert not enorm and "enorm" in enorm.reason
    big = stackable(_specs(overrides=["model.width=2048"])[0])
    assert not big and "FLOP" in big.reason and big.flops > STACK_FLOP_LIMIT
    # 2·3·batch·Σ in·out for 20 → 16 → 16 → 4 at batch 64
    assert step_flops(64, [20, 16, 16, 4]) == 6 * 64 * (20 * 16 + 16 * 16 + 16 * 4)


def test_choose_executor():
    tiny, enorm = _specs(), _specs(method="enorm")
    assert isinstance(choose_executor(tiny), StackedExecutor)
    mixed = choose_executor(tiny + enorm)  # one group is not stackable:
    assert isinstance(mixed, StackedExecutor)  # it runs one by one, the other stacked
    tasks = mixed.tasks([(s, None) for s in tiny + enorm])
    assert sorted(len(t) for t in tasks if len(t) > 1) and all(
        len(t) == 1 for t in tasks if t[0][0].settings.values["method"] == "enorm"
    )
    assert type(choose_executor(_specs(overrides=["model.width=2048"]))) is LocalExecutor  # too big
    assert type(choose_executor(_specs(seeds=2))) is LocalExecutor  # too few seeds to gain
    assert isinstance(choose_executor(tiny + enorm, "stacked"), StackedExecutor)
    assert type(choose_executor(tiny, "pool")) is LocalExecutor
    assert isinstance(choose_executor(tiny, "inline"), InlineExecutor)
    with pytest.raises(RestudyError, match="execution mode"):
        choose_executor(tiny, "gpu")


def test_stacked_executor_cuts_groups_into_stacks(tmp_path):
    eight, enorm = _specs(seeds=8), _specs(method="enorm")
    pending = [(s, tmp_path / s.key) for s in eight + enorm]
    sizes = [len(t) for t in StackedExecutor(max_stack=3, workers=2).tasks(pending)]
    assert sizes == [3, 3, 2, 1, 1, 1, 1]
    # One group alone is cut in two so that both workers train a stack.
    assert [len(t) for t in StackedExecutor(workers=2).tasks(pending[:8])] == [4, 4]


def test_run_study_stacks_what_it_can_and_pools_the_rest(tmp_path):
    study = load_study("enorm")
    out = run_study(study, "smoke", tmp_path, seeds=4, workers=2, execution="stacked")
    assert len(out.records) == len(out.specs) == 48
    assert all(r["status"] == "finished" for r in out.records)
    for r in out.records:
        stacked = r["spec"]["variant"]["method"] in ("baseline", "bn")  # enorm hooks are per model
        assert (r["env"].get("execution") == "stacked") == stacked
        assert r["env"].get("stack_size") == (4 if stacked else None)
    one = next(r for r in out.records if r["env"].get("execution") == "stacked")
    looped = execute(copy.deepcopy(one["spec"]), str(tmp_path / "looped"), 1)
    _assert_same_run(one, looped, tmp_path / "runs" / one["key"], tmp_path / "looped")
    assert run_study(study, "smoke", tmp_path, seeds=4, workers=2, execution="stacked").executed == []


def test_build_stack_keeps_each_models_initialization():
    specs = _specs("fc_bias", depth="9")
    data = _data(specs[0])
    stack = build_stack(specs, data).model
    for k, spec in enumerate(specs):
        with scoped_seed(spec.seeds["init"]):
            module = plugins.create(
                "model",
                "fc",
                input_shape=tuple(data.input_shape),
                num_classes=data.num_classes,
                **spec.settings.part_args("model"),
            )
        assert _param_rel(module, stack, k) == 0.0
        assert all(float(b[k].detach().abs().max()) == 0.0 for b in stack.biases)


def test_cli_rejects_an_unknown_execution_mode():
    from typer.testing import CliRunner

    from restudy.cli import app

    r = CliRunner().invoke(app, ["run", "enorm", "--scale", "smoke", "--execution", "gpu"])
    assert r.exit_code == 2 and "execution" in r.output


def test_stacked_one_ulp_runs_and_cka_features_match_the_single_run_path(tmp_path):
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study
    from restudy.storage.safeio import load_tensors

    specs = [s for s in plan(load_study("nondeterminism"), "smoke") if s.experiment == "onebit"]
    assert specs and all(stackable(s, (1, 8, 8), 10) for s in specs)
    looped = [execute(s.to_dict(), str(tmp_path / "loop" / s.key), 1) for s in specs]
    stacked = execute_stack([s.to_dict() for s in specs], [str(tmp_path / "stack" / s.key) for s in specs], 1)
    for rs, rl in zip(stacked, looped):
        assert rs["env"]["perturbation"] == rl["env"]["perturbation"]  # the same weight, the same ulp
        fs = load_tensors(tmp_path / "stack" / rs["key"] / "test_logits.safetensors")["features"]
        fl = load_tensors(tmp_path / "loop" / rl["key"] / "test_logits.safetensors")["features"]
        assert fs.shape == fl.shape
        assert torch.allclose(fs, fl, rtol=1e-4, atol=1e-5)


def test_tta_snapshot_and_lr_groups_are_not_stacked():
    from restudy.planning.runs import plan
    from restudy.spec.studyfile import load_study

    specs = plan(load_study("nondeterminism"), "smoke")
    by_exp = {s.experiment: s for s in specs}
    assert "test-time augmentation" in stackable(by_exp["all"], (1, 8, 8), 10).reason
    assert not stackable(by_exp["snapshot"], (1, 8, 8), 10)
    snap = by_exp["snapshot"].to_dict()
    snap["settings"] = {k: v for k, v in snap["settings"].items() if not k.startswith("tta")}
    from restudy.planning.runs import RunSpec

    assert "snapshot" in stackable(RunSpec.from_dict(snap), (1, 8, 8), 10).reason
    paper = {s.experiment: s for s in plan(load_study("nondeterminism"), "paper", seeds=1)}
    assert not stackable(paper["init"], (3, 32, 32), 10)


def test_every_unsupported_setting_is_declared_in_one_place():
    from restudy.execution.stacked import NOT_STACKED, structural_reason
    from restudy.planning.runs import RunSpec

    base = _specs()[0]
    assert structural_reason(base) == ""
    unsupported = {
        "data": "imagenet",
        "model": "small_cnn",
        "model.norm": "ln",
        "method": "enorm",
        "tta": ["flip"],
        "eval_train": "subset",
        "schedule": "snapshot",
        "optimizer.lr_mult_bias_bn": 0.5,
        "run_metrics": ["weight_norm"],
        "transforms": ["shuffled_pixels"],  # inputs that differ from seed to seed
        "save_weights": True,
        "precision": "bf16",
        "compile": "default",
        "data.val_fraction": 0.1,
    }
    plugins.import_study_module("restudy.studies.rethinking_generalization")  # registers the transform
    why = {name: text for name, _, _, text in NOT_STACKED}
    assert set(unsupported) == set(why) | {"model.norm"}  # model.norm: the fc factory's own stackable()
    for name, value in unsupported.items():
        d = base.to_dict()
        d["settings"] = {**d["settings"], name: value}
        reason = structural_reason(RunSpec.from_dict(d))
        assert reason.startswith(name) and why.get(name, "is stacked") in reason, (name, reason)


def test_fc_sizes_come_from_the_model_factory_defaults():
    import inspect

    from restudy.execution.stacked import layer_sizes
    from restudy.models.fc import fc

    defaults = inspect.signature(fc).parameters
    width, hidden = defaults["width"].default, defaults["hidden"].default
    assert layer_sizes(RunSettings({"model": "fc"}), (20,), 4) == [20] + [width] * (hidden + 1) + [4]
    sized = RunSettings({"model": "fc", "model.width": 8, "model.hidden": 2})
    assert layer_sizes(sized, (2, 5), 3) == [10, 8, 8, 8, 3]
