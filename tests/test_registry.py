"""Registry: parts are found by name; a wrong name lists the known ones with the closest match."""

from __future__ import annotations

import json

import pytest

from restudy import plugins
from restudy.errors import RestudyError


@pytest.fixture
def scratch():
    """Registrations of the test are undone after it, so they never leak into other tests."""
    with plugins.scoped():
        yield


def test_every_kind_has_its_builtins():
    assert {"fc", "resnet14", "resnet34", "small_cnn"} <= set(plugins.names("model"))
    assert {"synthetic", "mnist1d", "digits", "cifar10", "cifar100"} <= set(plugins.names("dataset"))
    assert {"sgd", "adam"} <= set(plugins.names("optimizer"))
    assert {"none", "enorm"} <= set(plugins.names("method"))
    for kind in plugins.KINDS:
        assert isinstance(plugins.names(kind), list)


def test_unknown_name_lists_known_names_and_the_closest():
    with pytest.raises(RestudyError) as info:
        plugins.get("model", "resnet_14")
    msg = str(info.value)
    assert "unknown model 'resnet_14'" in msg
    assert "did you mean 'resnet14'" in msg
    # Every registered model, sorted (a study's module imported earlier in this process adds its own).
    allowed = msg.split("allowed: ", 1)[1].split(", ")
    assert allowed == sorted(plugins.names("model")) and {"fc", "resnet14", "resnet34", "small_cnn"} <= set(allowed)


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(RestudyError) as info:
        plugins.register("layer", "x")
    assert "got: 'layer'" in str(info.value) and "model" in str(info.value)


def test_registering_two_parts_under_one_name_is_an_error(scratch):
    @plugins.register("model", "twice")
    def first(**kw):
        return "first"

    with pytest.raises(RestudyError) as info:

        @plugins.register("model", "twice")
        def second(**kw):
            return "second"

    assert "model 'twice' is registered twice" in str(info.value)
    assert plugins.create("model", "twice") == "first"


def test_reimporting_the_same_factory_is_not_a_duplicate(scratch):
    """A module imported twice (e.g. a study module in a worker) registers the same function again."""

    def make(**kw):
        return kw

    plugins.register("model", "again")(make)
    plugins.register("model", "again")(make)
    assert plugins.create("model", "again", width=3) == {"width": 3}


def test_bad_arguments_name_the_part_and_the_arguments_given():
    with pytest.raises(RestudyError) as info:
        plugins.create("model", "fc", input_shape=(4,), num_classes=2, depth=3)
    msg = str(info.value)
    assert "bad arguments for model 'fc'" in msg and "depth" in msg


def test_a_study_module_that_cannot_be_imported_is_named():
    with pytest.raises(RestudyError) as info:
        plugins.import_study_module("no_such_package.study")
    assert "got: 'no_such_package.study'" in str(info.value)


def test_a_scoped_registration_is_undone_and_the_study_schema_follows():
    """``scoped`` restores the registry on exit; the study schema's claim kinds follow each change
    (rebuilt once per change of the registry, not per study)."""
    from typing import Literal

    from restudy.api import ClaimBase, ClaimKind, register_claim_kind
    from restudy.spec.study import json_schema, use_registered_claim_kinds

    def schema_names_it() -> bool:
        return "scoped_for_this_test" in json.dumps(json_schema())

    before = plugins.names("claim")
    generation = plugins.generation()
    with plugins.scoped():

        class Scoped(ClaimBase):
            kind: Literal["scoped_for_this_test"]

        @register_claim_kind
        class ScopedKind(ClaimKind):
            schema = Scoped

        assert "scoped_for_this_test" in plugins.names("claim") and plugins.generation() > generation
        assert schema_names_it()
    assert plugins.names("claim") == before
    assert not schema_names_it()
    built = plugins.generation()
    use_registered_claim_kinds()  # nothing changed: no rebuild
    assert plugins.generation() == built
