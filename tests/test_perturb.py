"""The one-bit change (Summers & Dinneen's random bit change): one scalar, one ULP, seeded; the worker
applies and records it."""

from __future__ import annotations

import pytest
import torch

from restudy import plugins
from restudy.errors import RestudyError, StudyError
from restudy.execution.worker import LOGITS_FILE, execute
from restudy.planning.runs import plan
from restudy.planning.seeding import derive_seed, generator
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.safeio import load_tensors
from restudy.training.perturb import bits, one_ulp_change, select_parameter


def _model(memory_format: torch.memory_format = torch.contiguous_format) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(3)
        model = plugins.create("model", "small_cnn", input_shape=(3, 32, 32), num_classes=10)
    return model.to(memory_format=memory_format)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_exactly_one_element_moves_by_one_ulp(memory_format):
    model = _model(memory_format)
    before = _state(model)
    info = one_ulp_change(model, generator(11))
    after = _state(model)
    assert info["param"] == "0.weight"  # the stem conv, like conv1.weight
    for name in before:
        if name != info["param"]:
            assert torch.equal(before[name], after[name])
    old, new = before[info["param"]], after[info["param"]]
    diff = (old != new).nonzero().tolist()
    assert diff == [info["index_nd"]]
    assert old.flatten()[info["index"]].item() == info["old"]
    assert new.flatten()[info["index"]].item() == info["new"]
    step = new.view(torch.int32).flatten()[info["index"]] - old.view(torch.int32).flatten()[info["index"]]
    assert abs(int(step)) == 1
    assert (info["new"] > info["old"]) == (info["direction"] == "up")
    assert info["old_bits"] == bits(old.flatten()[info["index"]]) and info["new_bits"] != info["old_bits"]
    assert int(info["new_bits"], 16) - int(info["old_bits"], 16) == int(step)


def test_the_change_is_deterministic_given_the_seed():
    a, b = _model(), _model()
    ia, ib = one_ulp_change(a, generator(5)), one_ulp_change(b, generator(5))
    assert ia == ib
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_different_seeds_pick_different_indices_and_both_directions():
    seeds = [derive_seed(2021, "perturb", i) for i in range(30)]
    infos = [one_ulp_change(_model(), generator(seed)) for seed in seeds]
    assert len({i["index"] for i in infos}) >= 20  # 30 draws of 216: about 28 distinct
    assert {i["direction"] for i in infos} == {"up", "down"}
    assert all(0 <= i["index"] < 3 * 8 * 9 for i in infos)


def test_the_global_rng_is_untouched():
    model = _model()
    state = torch.get_rng_state()
    one_ulp_change(model, generator(1))
    assert torch.equal(state, torch.get_rng_state())


def test_parameter_selection():
    model = _model()
    assert select_parameter(model)[0] == "0.weight"
    assert select_parameter(model, "3.weight")[0] == "3.weight"
    assert one_ulp_change(model, generator(0), param="6.weight")["param"] == "6.weight"
    with pytest.raises(RestudyError, match="perturb.param"):
        select_parameter(model, "conv1.weight")


def _spec(*overrides: str):
    specs = plan(load_study("enorm"), "smoke", overrides=parse_overrides(list(overrides)))
    return next(
        s
        for s in specs
        if s.experiment == "fc" and s.variant == {"method": "baseline", "depth": "1"} and s.seed_index == 0
    )


def test_perturb_settings_in_the_plan():
    assert _spec().settings.values["perturb"] == "none" and not _spec().settings.has("perturb.param")
    spec = _spec("perturb=one_ulp")
    assert spec.settings.values["perturb.param"] == "first" and "perturb" in spec.seeds
    with pytest.raises(StudyError, match="one_ulp"):
        _spec("perturb=two_ulp")


def test_the_one_change_alone_changes_the_final_logits(tmp_path):
    runs = {}
    for name, extra in (("plain", ()), ("a", ("perturb=one_ulp",)), ("b", ("perturb=one_ulp",))):
        rec = execute(_spec(*extra).to_dict(), str(tmp_path / name), threads=1)
        assert rec["status"] == "finished", rec["reason"]
        runs[name] = (rec, load_tensors(tmp_path / name / LOGITS_FILE)["logits"])
    assert "perturbation" not in runs["plain"][0]["env"]
    info = runs["a"][0]["env"]["perturbation"]
    assert info == runs["b"][0]["env"]["perturbation"] and info["param"] == "1.weight"
    assert torch.equal(runs["a"][1], runs["b"][1])  # deterministic otherwise
    assert not torch.equal(runs["plain"][1], runs["a"][1])  # one ULP alone changes the result
