"""Cross-references of a study: names used but not declared are listed at their field paths (the
study file's loader turns them into ``file:line`` errors; see tests/bad_studies for each case)."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from restudy.spec.crossref import reference_problems
from restudy.spec.study import Study
from restudy.spec.studyfile import load_study


def test_the_builtin_studies_have_no_dangling_reference():
    for sid in ("enorm", "nondeterminism"):
        assert reference_problems(load_study(sid)) == []


def test_every_problem_is_listed_at_once_with_its_path(enorm_dict):
    data = copy.deepcopy(enorm_dict)
    data["experiments"][1]["id"] = "fc"
    data["experiments"][0]["rules"] = [{"when": {"width": 1}, "set": {}}, {"when": {"method": "sgd"}, "set": {}}]
    data["claims"].append(copy.deepcopy(data["claims"][0]))
    with pytest.raises(ValidationError) as info:
        Study.model_validate(data)
    locs = {tuple(e["loc"]): e for e in info.value.errors()}
    assert ("experiments", 1, "id") in locs and "unique" in locs[("experiments", 1, "id")]["msg"]
    assert ("experiments", 0, "rules", 0, "when", "width") in locs
    bad_level = locs[("experiments", 0, "rules", 1, "when", "method")]
    assert bad_level["input"] == "sgd" and "baseline, bn, enorm, enorm_bn" in bad_level["msg"]
    assert ("claims", len(data["claims"]) - 1, "id") in locs
