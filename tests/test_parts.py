"""Parts describe their arguments: a study's unknown or ill-typed part argument, and a part the
engine cannot call, are errors at plan time naming the setting, its line, the value and what the
part takes; `restudy show --settings` lists every argument with its type, default and help."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from restudy import plugins
from restudy.cli import app
from restudy.errors import StudyError
from restudy.planning.runs import plan
from restudy.spec import parts
from restudy.spec.studyfile import load_study


def _plan_with(study_file, change) -> None:
    def mutate(d):
        change(d)

    plan(load_study(study_file(mutate)), "smoke")


def test_an_unknown_part_argument_names_the_setting_its_line_and_what_the_part_takes(study_file):
    def typo(d):
        d["defaults"]["model.widht"] = {"value": 64, "provenance": "assumed"}

    with pytest.raises(StudyError) as err:
        _plan_with(study_file, typo)
    text = str(err.value)
    assert "model.widht" in text and "takes no argument 'widht'" in text and "did you mean 'width'" in text
    assert "restudy.models.fc.fc" in text  # where the part's code is
    assert "width: int = 500" in text and "hidden: int = 1" in text  # the arguments it takes
    assert "study.yaml:" in text  # the file and line that set it


def test_a_value_of_the_wrong_type_names_the_declared_type(study_file):
    def bad(d):
        d["defaults"]["model.init"] = {"value": 2, "provenance": "assumed"}

    with pytest.raises(StudyError) as err:
        _plan_with(study_file, bad)
    assert "model.init" in str(err.value) and "takes init as str" in str(err.value) and "got: 2" in str(err.value)


def test_a_part_the_engine_cannot_call_names_its_import_path(study_file):
    with plugins.scoped():

        @plugins.register("model", "no_classes")
        def no_classes(input_shape, width: int = 8):
            """A model that forgot num_classes."""

        def use(d):
            d["defaults"]["model"] = {"value": "no_classes", "provenance": "assumed"}
            for k in [k for k in d["defaults"] if k.startswith("model.")]:
                del d["defaults"][k]
            for exp in d["experiments"]:
                for k in [k for k in exp.get("settings", {}) if k.startswith("model.")]:
                    del exp["settings"][k]

        with pytest.raises(StudyError) as err:
            _plan_with(study_file, use)
    text = str(err.value)
    assert "no_classes" in text and "must accept num_classes" in text and "test_parts" in text


def test_arguments_come_from_the_signature_and_the_docstring():
    with plugins.scoped():

        @plugins.register("model", "documented")
        def documented(input_shape, num_classes, width: int = 8, mode: str = "a", mean: float = 0.0, std=1.0):
            """A model.

            Args:
                width: units per layer,
                    on two lines.
                mode (str): "a" or "b".
                mean, std: the input's normalisation.

            Returns:
                The model.
            """

        args = {a.name: a for a in parts.arguments("model", "documented")}
        assert list(args) == ["width", "mode", "mean", "std"]  # not input_shape, num_classes
        assert args["width"].help == "units per layer, on two lines." and args["width"].type == "int"
        assert args["mode"].help == '"a" or "b".' and args["std"].help == "the input's normalisation."
        assert args["std"].type == "" and args["std"].default == 1.0
        assert parts.argument_problem("model", "documented", "width", 3) is None
        assert parts.argument_problem("model", "documented", "mean", 1) is None  # an int is a float
        assert parts.argument_problem("model", "documented", "width", 2.5) is not None
        assert parts.argument_problem("model", "documented", "std", "anything") is None  # no annotation


def test_every_built_in_part_can_be_called_and_documents_its_arguments():
    for kind in ("dataset", "model", "method", "transform", "augment", "run_metric"):
        for name in plugins.names(kind):
            assert parts.signature_problem(kind, name) is None, (kind, name)
            for a in parts.arguments(kind, name):
                if kind != "run_metric":
                    assert a.help, f"{kind} {name}: argument {a.name} has no help in its docstring"


def test_show_settings_lists_the_arguments_of_the_studys_parts(monkeypatch):
    from restudy.cli.console import console

    monkeypatch.setattr(console, "_width", 400)
    r = CliRunner().invoke(app, ["show", "enorm", "--settings"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert "Part arguments" in r.output
    line = next(x for x in r.output.splitlines() if "model.hidden" in x and "restudy.models.fc.fc" in x)
    assert "int" in line and "width→width linear layers" in line
    assert "data.num_samples" in r.output and "method.c" in r.output
    assert "resnet34" not in r.output.split("Part arguments")[1]  # only the parts this study names
