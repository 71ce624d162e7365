"""The training recipes papers use (step and multistep decay, warm-up, one-cycle, AdamW, RMSprop) give
the learning rates and updates of their PyTorch namesakes on the same steps, built from a study's
settings as a run builds them."""

from __future__ import annotations

import pytest
import torch

from restudy.errors import StudyError
from restudy.planning.runs import RunSpec, plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.training.build import optimizer_and_schedule

SPE, EPOCHS = 7, 9  # steps per epoch, epochs: a partial last batch and several decays


def _settings(*overrides: str):
    args = parse_overrides([f"epochs={EPOCHS}", *overrides])
    specs: list[RunSpec] = plan(load_study("enorm"), "smoke", seeds=1, overrides=args)
    return specs[0].settings


def _ours(*overrides: str) -> tuple[torch.optim.Optimizer, list[float]]:
    """The optimizer and the lr of each of the run's steps, as the training loop sets them."""
    model = torch.nn.Linear(3, 2)
    opt, schedule = optimizer_and_schedule(model, _settings(*overrides), SPE)
    return opt, [schedule(step, step // SPE) for step in range(EPOCHS * SPE)]


def _torch(make, per: str, lr: float = 0.1) -> list[float]:
    """The lr PyTorch's scheduler gives each step, stepped per epoch or per step."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make(opt)
    out = []
    for step in range(EPOCHS * SPE):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if per == "step" or (step + 1) % SPE == 0:
            sched.step()
    return out


S = torch.optim.lr_scheduler
CASES = {
    "step": (
        ["schedule=step", "schedule.step_size=3", "schedule.gamma=0.5"],
        lambda o: S.StepLR(o, step_size=3, gamma=0.5),
        "epoch",
    ),
    "multistep": (
        ["schedule=multistep", "schedule.milestones=[2, 5]", "schedule.gamma=0.1"],
        lambda o: S.MultiStepLR(o, milestones=[2, 5], gamma=0.1),
        "epoch",
    ),
    "exponential": (
        ["schedule=exponential", "schedule.gamma=0.8"],
        lambda o: S.ExponentialLR(o, gamma=0.8),
        "epoch",
    ),
    "onecycle": (
        ["schedule=onecycle"],
        lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=EPOCHS * SPE, cycle_momentum=False),
        "step",
    ),
    "onecycle, own phases": (
        ["schedule=onecycle", "schedule.pct_start=0.5", "schedule.div_factor=10", "schedule.final_div_factor=100"],
        lambda o: S.OneCycleLR(
            o,
            max_lr=0.1,
            total_steps=EPOCHS * SPE,
            pct_start=0.5,
            div_factor=10,
            final_div_factor=100,
            cycle_momentum=False,
        ),
        "step",
    ),
    # Warm-up over 2 epochs from a quarter of the lr, then ÷10 after epochs 4 and 7 (Goyal et al.'s
    # recipe, shortened): LinearLR chained with MultiStepLR, both stepped per step.
    "warm-up + multistep": (
        [
            "schedule=multistep",
            "schedule.milestones=[4, 7]",
            "schedule.gamma=0.1",
            "schedule.warmup_epochs=2",
            "schedule.warmup_start_factor=0.25",
        ],
        lambda o: S.ChainedScheduler(
            [
                S.LinearLR(o, start_factor=0.25, total_iters=2 * SPE),
                S.MultiStepLR(o, milestones=[4 * SPE, 7 * SPE], gamma=0.1),
            ]
        ),
        "step",
    ),
    "warm-up + constant": (
        ["schedule=constant", "schedule.warmup_epochs=2", "schedule.warmup_start_factor=0.1"],
        lambda o: S.LinearLR(o, start_factor=0.1, total_iters=2 * SPE),
        "step",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_schedule_gives_pytorchs_learning_rate_at_every_step(case):
    overrides, make, per = CASES[case]
    opt, ours = _ours("optimizer.lr=0.1", *overrides)
    ref = _torch(make, per)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(ref[0])  # the optimizer starts at step 0's lr
    assert len(set(round(x, 12) for x in ours)) > 2  # the schedule moves: the case tests something


def test_a_warmup_of_fractional_epochs_ramps_over_its_steps():
    """1.5 epochs of 7 steps: the factor rises over 10.5 steps (LinearLR takes whole steps only)."""
    _, lrs = _ours("optimizer.lr=0.1", "schedule=constant", "schedule.warmup_epochs=1.5")
    warm = 1.5 * SPE
    assert lrs[:11] == pytest.approx([0.1 * s / warm for s in range(11)])
    assert lrs[11:] == pytest.approx([0.1] * (len(lrs) - 11))


def test_a_warmup_does_not_change_the_cosine_protocol():
    """Cosine and snapshot keep their own warm-up (Summers & Dinneen's ``train.py``), unchanged."""
    _, plain = _ours("optimizer.lr=0.1", "schedule=cosine", "schedule.warmup_epochs=2")
    from restudy.training.optim import cosine

    ref = cosine(lr=0.1, epochs=EPOCHS, steps_per_epoch=SPE, warmup_epochs=2)
    assert plain == [ref(s, s // SPE) for s in range(EPOCHS * SPE)]


def _train(opt: torch.optim.Optimizer, model: torch.nn.Module) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, generator=g), torch.randint(0, 2, (64,), generator=g)
    for i in range(0, 64, 16):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i : i + 16]), y[i : i + 16]).backward()
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize(
    ("overrides", "reference"),
    [
        (
            ["optimizer=adamw", "optimizer.weight_decay=0.05", "optimizer.betas=[0.8, 0.99]", "optimizer.eps=1e-6"],
            lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
        ),
        (
            [
                "optimizer=rmsprop",
                "optimizer.alpha=0.9",
                "optimizer.momentum=0.5",
                "optimizer.centered=true",
                "optimizer.weight_decay=0.001",
            ],
            lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.001),
        ),
    ],
    ids=["adamw", "rmsprop"],
)
def test_adamw_and_rmsprop_update_the_weights_as_pytorch_does(overrides, reference):
    torch.manual_seed(0)
    ours_model = torch.nn.Linear(3, 2)
    ref_model = torch.nn.Linear(3, 2)
    ref_model.load_state_dict(ours_model.state_dict())
    opt, _ = optimizer_and_schedule(ours_model, _settings("optimizer.lr=0.01", *overrides), SPE)
    a, b = _train(opt, ours_model), _train(reference(ref_model.parameters()), ref_model)
    assert torch.equal(a, b)  # the same arithmetic: bit-identical
    torch.manual_seed(0)
    start = torch.cat([p.detach().flatten() for p in torch.nn.Linear(3, 2).parameters()])
    assert not torch.equal(a, start)  # it trained


def test_adamws_weight_decay_is_decoupled():
    """AdamW shrinks the weights by lr·wd at every step on top of Adam's update; Adam with the same
    weight_decay adds wd·w to the gradient instead, so the two differ (Loshchilov & Hutter, 2019)."""
    outs = []
    for name in ("adam", "adamw"):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt, _ = optimizer_and_schedule(
            model, _settings("optimizer.lr=0.01", f"optimizer={name}", "optimizer.weight_decay=0.1"), SPE
        )
        outs.append(_train(opt, model))
    assert not torch.allclose(outs[0], outs[1])


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        (["schedule=multistep", "schedule.gamma=0.1"], "schedule.milestones", "applies when schedule is multistep"),
        (["schedule=step", "schedule.gamma=0.1"], "schedule.step_size", "applies when schedule is step"),
        (["schedule=multistep", "schedule.milestones=[3]"], "schedule.gamma", "is not set"),
    ],
)
def test_a_recipe_missing_its_setting_names_it(overrides, field, says):
    with pytest.raises(StudyError) as err:
        _settings(*overrides)
    assert field in str(err.value) and says in str(err.value)


@pytest.mark.parametrize("bad", ["[5, 2]", "[]", "[0, 3]", "[1.5]", "4"])
def test_bad_milestones_are_refused_with_the_allowed_form(bad):
    with pytest.raises(StudyError) as err:
        _settings("schedule=multistep", "schedule.gamma=0.1", f"schedule.milestones={bad}")
    assert "schedule.milestones" in str(err.value) and "strictly increasing" in str(err.value)


def test_settings_that_do_not_apply_stay_out_of_a_run():
    """A multistep run lists its milestones; a constant one lists no recipe settings, so runs stored
    before these settings existed keep their keys."""
    multi = _settings("schedule=multistep", "schedule.gamma=0.1", "schedule.milestones=[3]").values
    assert multi["schedule.milestones"] == [3] and "schedule.pct_start" not in multi
    plain = _settings().values
    assert not any(k in plain for k in ("schedule.warmup_epochs", "schedule.warmup_start_factor", "schedule.gamma"))
    assert "optimizer.alpha" not in plain and "optimizer.centered" not in plain
