"""Study files: valid ones load; invalid ones give errors naming file:line, field, value, allowed values."""

from __future__ import annotations

from collections import Counter

import pytest

from restudy.errors import StudyError
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides


def test_builtin_enorm_loads_and_plans_every_scale():
    st = load_study("enorm")
    assert st.id == "enorm" and len(st.claims) >= 5
    counts = {sc: Counter(s.experiment for s in plan(st, sc)) for sc in ("paper", "small", "smoke")}
    # the main grid: 4 methods x 10 depths x 5 seeds + 2 methods x 10 depths x 5 seeds (with bias)
    assert (counts["paper"]["fc"], counts["paper"]["fc_bias"]) == (200, 100)
    assert (counts["small"]["fc"], counts["small"]["fc_bias"]) == (4 * 5 * 5, 2 * 5 * 5)
    assert (counts["smoke"]["fc"], counts["smoke"]["fc_bias"]) == (4 * 2 * 2, 2 * 2 * 2)
    # the side experiments of single findings (batch 8, softmax output, fixed point, c, lr) run fewer
    assert sum(counts["paper"].values()) == 410 and sum(counts["small"].values()) == 195
    assert "fc_c" not in counts["small"] and "fc_enorm_bn_lr" not in counts["small"]  # paper scale only
    assert sum(counts["smoke"].values()) == 24  # smoke runs the main grid only


def _set(path, value):
    def mutate(d):
        node = d
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value

    return mutate


def _delete(path):
    def mutate(d):
        node = d
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]

    return mutate


BAD = [
    # (mutation, words that must appear in the message)
    (_set(["randomness", "streams"], "shared"), ["randomness.streams", "paired", "independent", "shared"]),
    (_set(["randomness", "vary"], ["init", "weather"]), ["randomness.vary", "weather", "order"]),
    (_set(["randomness", "kernels"], "fast"), ["randomness.kernels", "deterministic"]),
    (_set(["seed"], -1), ["seed", "-1"]),
    (_set(["idd"], "x"), ["idd", "unknown field"]),
    (_delete(["paper"]), ["paper", "required"]),
    (_set(["experiments", 0, "seeds"], 0), ["experiments[0].seeds", "greater than or equal to 1"]),
    (_set(["experiments", 0, "id"], "1fc"), ["experiments[0].id", "must start with a letter"]),
    (_set(["experiments", 0, "sedes"], 3), ["experiments[0].sedes", "unknown field"]),
    (
        _set(["defaults", "optimizer.lr"], {"value": 0.1, "provenance": "guess"}),
        ["defaults.optimizer.lr.provenance", "paper", "code", "authors", "assumed", "guess"],
    ),
    (
        _set(["defaults", "optimizer.lr"], 0.1),
        ["defaults.optimizer.lr", "needs its value and where it comes from", "provenance"],
    ),
    (_set(["defaults", "epochs"], {"value": 60}), ["defaults.epochs.provenance", "required"]),
    (_set(["claims", 0, "kind"], "better"), ["claims[0]", "numeric", "a_beats_b", "trend", "threshold"]),
    # claims[0].metric: any name at load time; planning checks it against the recorded metrics
    # (tests/bad_studies/claim_metric_not_recorded.yaml)
    (_set(["claims", 0, "metric"], "accu racy"), ["claims[0]", "metric", "accu racy"]),
    (_set(["claims", 0, "alpha"], 0.9), ["claims[0]", "alpha", "less than 0.5"]),
    (_set(["claims", 0, "a"], {"experiment": "nope"}), ["claims[0].a.experiment", "unknown experiment", "nope"]),
    (
        _set(["claims", 0, "a"], {"experiment": "fc", "where": {"width": 3}}),
        ["claims[0].a.where.width", "no axis", "width", "depth", "method"],
    ),
    (_set(["claims", 4, "op"], ">"), ["claims[4]", "op", ">=", "<="]),
    (_set(["claims", 1, "over"], "epochs"), ["claims[1].over", "epochs"]),
    (_set(["claims", 1, "direction"], "up"), ["direction", "increasing", "decreasing"]),
    (_set(["tables", 0, "document"], "nature"), ["tables[0].document", "nature", "original", "rep2019"]),
    (_set(["tables", 0, "kind"], "figure"), ["tables[0].kind", "result", "hyperparameter"]),
    (_set(["tables", 0, "values", 1], {"resnet": 0.1}), ["column", "resnet"]),
    (_set(["experiments", 0, "axes", "depth"], {"path": "model.hidden"}), ["experiments[0].axes.depth", "values"]),
    (_set(["experiments", 0, "axes", "method"], {}), ["experiments[0].axes.method", "at least one level"]),
    (_set(["scales", "huge"], {}), ["scales.huge", "smoke", "small", "paper"]),
    (_set(["scales", "small", "seeds"], 0), ["scales.small.seeds", "greater than or equal to 1"]),
    (_set(["scales", "small", "experiments"], {"cnn": {}}), ["scales.small.experiments", "cnn", "fc"]),
    (_set(["documents", 0, "kind"], "blog"), ["documents[0].kind", "original", "reproduction"]),
    (_set(["experiments", 1, "rules", 0, "when"], "always"), ["experiments[1].rules[0].when", "valid dictionary"]),
    # Rules, axis levels and scales take a value with its provenance, or a bare value.
    (
        _set(["experiments", 0, "rules", 0, "set", "optimizer.lr"], {"value": 0.05}),
        ["experiments[0].rules[0].set.optimizer.lr.provenance", "required"],
    ),
    (
        _set(["scales", "small", "settings", "epochs"], {"value": 3, "provenance": "guessed"}),
        ["scales.small.settings.epochs.provenance", "paper", "assumed", "guessed"],
    ),
    (
        _set(["experiments", 0, "axes", "method", "bn"], {"model.norm": {"value": "bn", "provenance": "x"}}),
        ["experiments[0].axes.method.levels.bn.model.norm.provenance", "'x'"],
    ),
]


@pytest.mark.parametrize("mutate,words", BAD, ids=[" ".join(w[:2]) for _, w in BAD])
def test_invalid_study_names_field_value_and_allowed(study_file, mutate, words):
    path = study_file(mutate)
    with pytest.raises(StudyError) as e:
        load_study(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, f"{w!r} missing from:\n{msg}"
    assert "Traceback" not in msg


def test_error_points_at_the_line(study_file):
    path = study_file(_set(["randomness", "kernels"], "fast"))
    lines = path.read_text().splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if "kernels:" in line)
    with pytest.raises(StudyError) as e:
        load_study(path)
    assert f"{path}:{line_no}" in str(e.value)


@pytest.mark.parametrize(
    "setting,value,words",
    [
        ("optimizer.lr", -0.1, ["optimizer.lr", "(0, inf)", "-0.1"]),
        ("optimizer", "lamb", ["optimizer", "sgd", "adam", "adamw", "rmsprop", "lamb"]),
        ("schedule", "polynomial", ["schedule", "constant", "linear", "cosine", "multistep", "onecycle"]),
        ("epochs", 2.5, ["epochs", "integer"]),
        ("batch_size", 0, ["batch_size", "[1,"]),
        ("optimizer.momentum", 1.5, ["optimizer.momentum", "[0, 1)"]),
        ("learning_rate", 0.1, ["unknown setting", "learning_rate"]),
        ("optimizer.nesterov", "yes", ["optimizer.nesterov", "true or false"]),
    ],
)
def test_invalid_setting_values_fail_at_plan_time(study_file, setting, value, words):
    def mutate(d):
        d["defaults"][setting] = {"value": value, "provenance": "assumed"}

    st = load_study(study_file(mutate))
    with pytest.raises(StudyError) as e:
        plan(st, "smoke")
    for w in words:
        assert w in str(e.value), f"{w!r} missing from {e.value}"


def test_overrides_parse_and_validate():
    st = load_study("enorm")
    ov = parse_overrides(["epochs=3", "fc:optimizer.lr=0.02", "data.n_train=100"])
    assert ov == [(None, "epochs", 3), ("fc", "optimizer.lr", 0.02), (None, "data.n_train", 100)]
    specs = plan(st, "smoke", overrides=ov)
    fc = [s for s in specs if s.experiment == "fc"]
    assert all(s.settings.values["epochs"] == 3 and s.settings.values["optimizer.lr"] == 0.02 for s in fc)
    assert all(s.settings.provenance["optimizer.lr"]["source"] == "command-line override" for s in fc)
    with pytest.raises(StudyError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(StudyError, match="unknown setting 'epoch'.*did you mean 'epochs'"):
        plan(st, "smoke", overrides=parse_overrides(["epoch=3"]))
    with pytest.raises(StudyError, match="unknown experiment"):
        plan(st, "smoke", overrides=parse_overrides(["cnn:epochs=3"]))


def test_unknown_study_suggests_builtins():
    with pytest.raises(StudyError, match="did you mean 'enorm'"):
        load_study("enrom")


@pytest.mark.parametrize("scale", ["smoke", "small"])
def test_every_builtin_scales_data_label_gives_the_sizes_its_runs_load(scale):
    """A report's title names the data from the scale's ``dataset`` label: its "N train / M test"
    must be what the runs of that scale actually load."""
    import re

    from restudy.spec.studyfile import builtin_studies
    from restudy.training.build import data_key, load_data

    checked = 0
    for sid in builtin_studies():
        st = load_study(sid)
        label = st.scales[scale].dataset
        sizes = re.search(r"([\d,]+) train / ([\d,]+) test", label)
        if not sizes:
            continue
        want = tuple(int(g.replace(",", "")) for g in sizes.groups())
        seen = {}
        for spec in plan(st, scale, seeds=1):
            key = data_key(spec.settings)
            if key not in seen:
                data = load_data(spec.settings.with_values({"transforms": []}, "test"))
                seen[key] = (int(data.x_train.shape[0]), int(data.x_test.shape[0]))
        assert set(seen.values()) == {want}, (sid, label, seen)
        checked += 1
    assert checked >= 3


def test_a_reported_value_keeps_the_digits_the_study_file_prints(study_file):
    """`99.90` written in YAML is not 99.9: its last printed digit sets the rounding slack (0.005,
    not 0.05), quoted or not; a float written as its own shortest form stays a plain float."""

    def mutate(d):
        d["tables"] = [
            {
                "id": "t",
                "title": "Printed digits",
                "document": d["documents"][0]["id"],
                "kind": "hyperparameter",
                "rows": ["a"],
                "columns": ["x", "y", "z"],
                "values": {"a": {"x": 99.90, "y": 0.5, "z": "8.00"}},
            }
        ]

    path = study_file(mutate)
    path.write_text(path.read_text().replace("x: 99.9", "x: 99.90"))
    values = load_study(path).table("t").values["a"]
    assert (values["x"].text, values["x"].rounding()) == ("99.90", pytest.approx(0.005))
    assert (values["y"].text, values["z"].text, values["z"].rounding()) == ("0.5", "8.00", pytest.approx(0.005))


@pytest.mark.parametrize("field", ["url", "code"])
def test_a_papers_address_must_be_a_web_address(study_file, field):
    """The report links it: a javascript: address would run in the reader's browser."""
    path = study_file(_set(("paper", field), "javascript:alert(4)"))
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert f"paper.{field}" in str(err.value) and "http:// or https://" in str(err.value)
