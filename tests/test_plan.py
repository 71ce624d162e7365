"""Planning: runs of a study at a scale, settings resolved in a documented order with provenance,
every settings error with file:line, run keys stable and typed run specs."""

from __future__ import annotations

import pytest

import restudy.planning.runs as plan_mod
from restudy.errors import StudyError
from restudy.planning.runs import RunSpec, plan, resolve_settings, variants
from restudy.spec.study import Study
from restudy.spec.studyfile import BUILTIN_DIR as STUDIES
from restudy.spec.studyfile import load_study, parse_overrides


@pytest.fixture(scope="module")
def enorm():
    return load_study("enorm")


def _spec(specs, experiment="fc", method="baseline", depth="1", seed_index=0):
    return next(
        s
        for s in specs
        if s.experiment == experiment and s.variant == {"method": method, "depth": depth} and s.seed_index == seed_index
    )


def test_plans_are_stable_and_keys_unique(enorm):
    a, b = plan(enorm, "smoke"), plan(load_study("enorm"), "smoke")
    assert [s.key for s in a] == [s.key for s in b]
    assert len({s.key for s in a}) == len(a) == 24
    assert [(s.experiment, s.seed_index) for s in a][:2] == [("fc", 0), ("fc", 1)]


def test_later_sources_win_and_provenance_says_which(enorm):
    spec = _spec(plan(enorm, "smoke", overrides=parse_overrides(["fc:batch_size=32"])), method="enorm", depth="9")
    assert spec.settings.values["epochs"] == 2 and spec.settings.provenance["epochs"]["source"] == "scale smoke"
    assert spec.settings.values["batch_size"] == 32
    assert spec.settings.provenance["batch_size"] == {"provenance": "assumed", "source": "command-line override"}
    assert (
        spec.settings.values["optimizer.lr"] == 0.05
        and spec.settings.provenance["optimizer.lr"]["provenance"] == "authors"
    )
    assert (
        spec.settings.values["model.hidden"] == 9
        and spec.settings.provenance["model.hidden"]["provenance"] == "reproduction"
    )
    assert spec.settings.values["method"] == "enorm" and spec.settings.values["method.c"] == 1.2
    assert spec.settings.provenance["label_smoothing"] == {"provenance": "assumed", "source": "restudy default"}


def test_an_engine_default_the_study_leaves_unset_is_assumed_with_the_defaults_reason(enorm):
    from restudy.spec.settings import SETTINGS

    spec = plan(enorm, "smoke")[0]
    unset = [n for n, e in spec.settings.provenance.items() if e["source"].startswith("restudy default")]
    assert unset, "the smoke study leaves some engine defaults unset"
    for name in unset:
        reason = SETTINGS[name].reason
        assert spec.settings.provenance[name]["provenance"] == "assumed"
        assert spec.settings.provenance[name]["source"] == (
            f"restudy default: {reason}" if reason else "restudy default"
        )
    assert any(SETTINGS[n].reason for n in unset)


def test_switching_a_part_drops_the_previous_parts_arguments(enorm):
    spec = _spec(plan(enorm, "smoke"))
    assert spec.settings.values["data"] == "synthetic"
    assert not spec.settings.has("data.flatten") and not spec.settings.has("data.mean")  # cifar10's
    assert spec.settings.values["data.n_train"] == 400


def test_settings_that_do_not_apply_are_not_in_the_spec(enorm):
    spec = _spec(plan(enorm, "smoke"))
    assert spec.settings.values["optimizer"] == "sgd" and spec.settings.has("optimizer.momentum")
    assert not spec.settings.has("optimizer.betas") and not spec.settings.has("tta.pad")
    adam = _spec(plan(enorm, "smoke", overrides=parse_overrides(["optimizer=adam"])))
    assert adam.settings.has("optimizer.betas") and not adam.settings.has("optimizer.momentum")


def test_a_setting_added_later_is_out_of_the_key_at_its_default_so_stored_runs_are_found(enorm):
    from restudy.spec.settings import SETTINGS

    later = [n for n, d in SETTINGS.items() if not d.keyed_at_default]
    assert {"eval_train", "save_weights", "precision", "compile", "tf32"} <= set(later)
    base = _spec(plan(enorm, "smoke"))
    assert not set(later) & set(base.settings.values)  # at their defaults: not in the run, not in its key
    at_default = _spec(plan(enorm, "smoke", overrides=parse_overrides(["eval_train=all", "save_weights=false"])))
    assert at_default.key == base.key
    changed = _spec(plan(enorm, "smoke", overrides=parse_overrides(["eval_train=none"])))
    assert changed.settings.values["eval_train"] == "none" and changed.key != base.key
    assert changed.engine.eval_train == "none" and base.engine.eval_train == "all"  # the typed view still answers


def test_typed_spec_and_round_trip(enorm):
    spec = _spec(plan(enorm, "smoke"))
    assert spec.engine.batch_size == spec.settings.values["batch_size"] == 64
    assert spec.engine.schedule == "linear" and spec.engine.method == "none"
    again = RunSpec.from_dict(spec.to_dict())
    assert again == spec and again.engine == spec.engine


def test_the_study_folder_travels_with_the_spec_but_not_in_its_key(tmp_path):
    builtin = load_study("rethinking-generalization")  # a study with its own module
    (tmp_path / "study.yaml").write_text((STUDIES / "rethinking_generalization" / "study.yaml").read_text())
    here = plan(builtin, "smoke")
    copy = plan(load_study(tmp_path / "study.yaml"), "smoke")
    assert here[0].study_dir != copy[0].study_dir
    assert [s.key for s in here] == [s.key for s in copy]


def test_settings_are_checked_once_per_study(enorm, monkeypatch):
    st = load_study("enorm")
    calls = []
    real = plan_mod.check
    monkeypatch.setattr(plan_mod, "check", lambda name, value: calls.append(name) or real(name, value))
    plan(st, "smoke")
    first = len(calls)
    assert first >= len(st.defaults)
    plan(st, "small")
    plan(st, "paper", overrides=parse_overrides(["epochs=3"]))
    assert len(calls) == first + 1  # only the command-line override is new


def test_a_bad_setting_at_another_scale_is_found_at_any_scale(study_file):
    def mutate(d):
        d["scales"]["small"]["settings"]["batch_size"] = -4

    path = study_file(mutate)
    with pytest.raises(StudyError) as e:
        plan(load_study(path), "smoke")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "batch_size: -4" in text)
    assert f"{path}:{line} scales.small.settings.batch_size: must be an integer in [1, 10000000); got: -4" in str(
        e.value
    )
    assert e.value.path == ("scales", "small", "settings", "batch_size")


@pytest.mark.parametrize(
    "override,words",
    [
        ("optimizer.lr=-0.1", ["command line: optimizer.lr=-0.1", "must be a number in (0, inf)", "got: -0.1"]),
        ("fc:epochs=0", ["command line: fc:epochs=0", "[1, 100000)"]),
        ("optimiser=adam", ["command line: optimiser=adam", "unknown setting 'optimiser'", "did you mean 'optimizer'"]),
        ("cnn:epochs=3", ["command line: cnn:epochs=3", "unknown experiment", "fc, fc_bias"]),
        ("data=cifar11", ["command line: data=cifar11", "unknown dataset 'cifar11'", "did you mean 'cifar10'"]),
    ],
)
def test_command_line_override_errors_quote_the_override(enorm, override, words):
    with pytest.raises(StudyError) as e:
        plan(enorm, "smoke", overrides=parse_overrides([override]))
    for w in words:
        assert w in str(e.value), str(e.value)


def test_scale_and_seeds_are_checked(enorm):
    with pytest.raises(StudyError, match="--scale.*smoke, small, paper.*'huge'"):
        plan(enorm, "huge")
    with pytest.raises(StudyError, match="--seeds"):
        plan(enorm, "smoke", seeds=0)
    assert len(plan(enorm, "smoke", seeds=1)) == 12


def test_a_study_built_in_code_plans_and_names_field_paths(enorm):
    data = enorm.model_dump()
    data["defaults"]["epochs"] = {"value": 0, "provenance": "paper", "source": ""}
    st = Study.model_validate(data)
    with pytest.raises(StudyError, match=r"^defaults\.epochs: must be an integer"):
        plan(st, "smoke")
    assert variants(enorm, "fc", "smoke")[0] == {"method": "baseline", "depth": "1"}
    assert resolve_settings(enorm, "fc", {"method": "bn", "depth": "9"}, "smoke")["model.norm"].value == "bn"
