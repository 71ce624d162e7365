"""Engine settings: each declared once with type, default, constraint, when it applies and help; every
constrained setting refuses invalid values with a message naming it, the value and the file line."""

from __future__ import annotations

import math

import pytest

from restudy import plugins
from restudy.errors import StudyError
from restudy.planning.runs import plan
from restudy.spec.constraints import Number, PartName, PartNames
from restudy.spec.settings import (
    DECLARATIONS,
    SETTINGS,
    check,
    declaration_row,
    part_args,
    relevant,
    typed,
    value,
)
from restudy.spec.studyfile import load_study


def test_every_setting_is_declared_once_with_type_default_and_help():
    names = [d.name for d in DECLARATIONS]
    assert len(names) == len(set(names))
    for d in DECLARATIONS:
        assert d.type_name and d.help and d.constraint.describe(), d.name
        if not d.required:
            assert check(d.name, d.default) is None, f"{d.name}'s default {d.default!r} breaks its own constraint"
        if d.applies_when is not None:
            assert d.applies_when.on in SETTINGS, d.name
    always = {d.name for d in DECLARATIONS if d.required and d.applies_when is None}
    assert always == {"model", "data", "optimizer.lr", "epochs", "batch_size"}
    # Required where they apply: a decay factor and its epochs have no default a paper could leave unstated.
    where = {d.name for d in DECLARATIONS if d.required and d.applies_when is not None}
    assert where == {"schedule.gamma", "schedule.milestones", "schedule.step_size"}


def test_run_metrics_is_a_list_of_registered_names_defaulting_to_none():
    decl = SETTINGS["run_metrics"]
    assert decl.default == [] and isinstance(decl.constraint, PartNames) and decl.constraint.kind == "run_metric"
    assert "per-run metrics" in decl.help


def test_part_names_come_from_the_registry_not_a_second_list():
    for name, kind in [
        ("model", "model"),
        ("data", "dataset"),
        ("method", "method"),
        ("optimizer", "optimizer"),
        ("schedule", "schedule"),
        ("augment", "augment"),
    ]:
        assert SETTINGS[name].constraint == PartName(kind)
    assert check("optimizer", "sgd_for_this_test") is not None

    with plugins.scoped():  # other tests list the registered optimizers

        @plugins.register("optimizer", "sgd_for_this_test")
        def _opt(params, lr):  # pragma: no cover - never built
            raise AssertionError

        assert check("optimizer", "sgd_for_this_test") is None
    assert check("optimizer", "sgd_for_this_test") is not None
    message, allowed = check("optimizer", "sdg")
    assert "unknown optimizer 'sdg'" in message and "did you mean 'sgd'" in message and "sgd" in allowed


def _invalid_cases():
    for d in DECLARATIONS:
        c = d.constraint
        if isinstance(c, (PartName, PartNames)) and not plugins.names(c.kind):
            continue  # nothing of this kind registered yet: names are checked when one is
        for bad in c.invalid():
            yield pytest.param(d.name, bad, id=f"{d.name}={bad!r}")


@pytest.mark.parametrize("name,bad", list(_invalid_cases()))
def test_every_constrained_setting_refuses_an_invalid_value_naming_it(study_file, name, bad):
    # In the style of scikit-learn's check_param_validation: invalid values generated from each
    # declared constraint must be refused, at plan time, with file:line, field, value and rule.
    assert check(name, bad) is not None

    def mutate(d):
        d["defaults"][name] = {"value": bad, "provenance": "assumed"}

    path = study_file(mutate)
    st = load_study(path)
    with pytest.raises(StudyError) as e:
        plan(st, "smoke")
    msg = str(e.value)
    lines = path.read_text().splitlines()
    start = lines.index("defaults:")
    line = next(i for i, text in enumerate(lines[start:], start + 1) if text.startswith(f"  {name}:"))
    assert f"{path}:{line} defaults.{name}:" in msg, msg
    assert f"got: {bad!r}" in msg, msg


@pytest.mark.parametrize("name", [d.name for d in DECLARATIONS if isinstance(d.constraint, Number)])
def test_non_finite_numbers_are_refused(name):
    for bad in (math.nan, math.inf, -math.inf):
        problem = check(name, bad)
        assert problem is not None and SETTINGS[name].constraint.describe() in problem[0]


def test_unknown_setting_suggests_the_closest_and_lists_all():
    message, allowed = check("optimizer.learning_rate", 0.1)
    assert "unknown setting 'optimizer.learning_rate'" in message and "did you mean 'optimizer.lr'" in message
    assert "optimizer.lr" in allowed and "model.*" in allowed
    assert check("model.any_argument", {"nested": 1}) is None  # part arguments go to the part
    assert "model.NAME" in check("model.a.b", 1)[0]


def test_settings_that_do_not_apply_are_dropped_and_read_back_as_their_default():
    assert relevant("optimizer.momentum", {"optimizer": "sgd"})
    assert not relevant("optimizer.momentum", {"optimizer": "adam"})
    assert not relevant("tta.pad", {"tta": []}) and relevant("tta.pad", {"tta": ["flip"]})
    assert value({"augment": "none"}, "augment.pad") == SETTINGS["augment.pad"].default == 4
    with pytest.raises(KeyError):
        value({}, "no_such_setting")


def test_typed_view_has_an_attribute_per_setting():
    spec = plan(load_study("enorm"), "smoke")[0]
    engine = spec.engine
    assert engine == typed(spec.settings.values)
    assert (
        engine.optimizer_lr == spec.settings.values["optimizer.lr"] and engine.epochs == spec.settings.values["epochs"]
    )
    assert engine.augment_pad == 4 and not spec.settings.has("augment.pad")  # default where it does not apply
    assert engine.tta == () and engine.run_metrics == ()
    with pytest.raises(AttributeError):
        engine.epochs = 3


def test_part_args_are_the_prefixed_settings():
    s = {"model": "fc", "model.width": 8, "data.n_train": 3, "modelish": 1}
    assert part_args(s, "model") == {"width": 8} and part_args(s, "data") == {"n_train": 3}


def test_declaration_rows_give_every_column():
    row = declaration_row(SETTINGS["optimizer.momentum"])
    assert row["name"] == "optimizer.momentum" and row["type"] == "number" and row["default"] == "0.0"
    assert row["constraint"] == "[0, 1)" and row["applies when"] == "optimizer is sgd or rmsprop" and row["help"]
    assert declaration_row(SETTINGS["epochs"])["default"] == "(required)"
