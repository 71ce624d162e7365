"""Released weights: a run keeps them with save_weights, `restudy export` writes safetensors and a
sidecar, `restudy validate` recomputes the test accuracy in inference only (bit-identical on the
same CPU and threads), and pickles are refused with the safe conversion route."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from restudy.cli import app
from restudy.errors import RestudyError, UnsafeFileError
from restudy.execution.stacked import stackable
from restudy.execution.weights import export, validate
from restudy.execution.worker import execute
from restudy.planning.runs import plan
from restudy.spec.studyfile import load_study, parse_overrides
from restudy.storage.artifacts import WEIGHTS_FILE
from restudy.storage.safeio import sha256_of

ENORM_MODULE = load_study("enorm").module  # the given study's module: the only one validate imports

runner = CliRunner()


def _spec(save: bool = True):
    overrides = parse_overrides(["save_weights=true"]) if save else []
    specs = plan(load_study("enorm"), "smoke", overrides=overrides)
    return next(s for s in specs if s.experiment == "fc" and s.variant.get("method") == "enorm" and s.seed_index == 0)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results")
    spec = _spec()
    folder = out / "runs" / spec.key
    rec = execute(spec.to_dict(), str(folder), threads=1)
    assert rec["status"] == "finished"
    return folder


def test_save_weights_keeps_the_final_model_with_its_sha256_and_changes_nothing_when_off(run_folder: Path) -> None:
    rec = json.loads((run_folder / "run.json").read_text())
    assert rec["artifacts"][WEIGHTS_FILE]["sha256"]
    assert (run_folder / WEIGHTS_FILE).is_file()
    off = _spec(save=False)
    assert not off.settings.has("save_weights")  # listed (and in the key) only when on
    assert _spec().settings.values["save_weights"] is True
    assert not stackable(_spec())


def test_export_then_validate_is_bit_identical_on_the_same_cpu_and_threads(run_folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "released.safetensors"
    side = export(run_folder.name, dest, run_folder.parent.parent)
    assert dest.read_bytes() == (run_folder / WEIGHTS_FILE).read_bytes()
    on_disk = json.loads((tmp_path / "released.json").read_text())
    assert on_disk == json.loads(json.dumps(side))
    rec = json.loads((run_folder / "run.json").read_text())
    assert side["recorded"]["test_acc"] == rec["metrics"]["test_acc"]
    assert side["model"] == rec["spec"]["settings"]["model"] and side["normalization"]
    assert side["input_shape"] and side["num_classes"] and side["restudy"]
    v = validate(dest, study_id="enorm", study_module=ENORM_MODULE, threads=1, device="cpu")
    assert v.status == "identical" and v.recomputed == v.recorded == rec["metrics"]["test_acc"]
    # without the sidecar the file's own metadata is enough
    (tmp_path / "released.json").unlink()
    assert validate(dest, study_id="enorm", study_module=ENORM_MODULE).status == "identical"


def test_validate_notices_other_weights(run_folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "w.safetensors"
    export(str(run_folder), dest)  # a run folder works without --out
    from safetensors.torch import load_file, save_file

    state = load_file(str(dest))
    name = next(k for k, t in state.items() if t.is_floating_point() and t.dim() == 2)
    state[name] = torch.zeros_like(state[name])
    save_file(state, str(dest))
    with pytest.raises(RestudyError, match="not the ones w.json describes"):
        validate(dest, study_id="enorm", study_module=ENORM_MODULE)
    side = json.loads((tmp_path / "w.json").read_text())
    side["sha256"] = sha256_of(dest)  # a sidecar released with other weights
    (tmp_path / "w.json").write_text(json.dumps(side))
    v = validate(dest, study_id="enorm", study_module=ENORM_MODULE)
    assert v.status == "differs" and not v.ok and v.changed > 0
    with pytest.raises(RestudyError, match="another study"):
        validate(dest, study_id="nondeterminism")


def test_other_data_is_shown_not_judged(run_folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "w.safetensors"
    export(str(run_folder), dest)
    v = validate(dest, study_id="enorm", study_module=ENORM_MODULE, data_args={"n_test": 100})
    assert v.status == "other data" and v.ok and v.n_test == 100


def test_pickles_are_refused_naming_the_safe_conversion(tmp_path: Path) -> None:
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"not even read")
    with pytest.raises(UnsafeFileError, match=r"torch\.load\(path, weights_only=True\)"):
        validate(bad)
    with pytest.raises(UnsafeFileError):
        export("x", bad, tmp_path)


def test_export_of_a_run_without_weights_says_how_to_keep_them(tmp_path: Path) -> None:
    spec = _spec(save=False)
    folder = tmp_path / "runs" / spec.key
    execute(spec.to_dict(), str(folder), threads=1)
    with pytest.raises(RestudyError, match="save_weights=true"):
        export(spec.key, tmp_path / "w.safetensors", tmp_path)
    with pytest.raises(RestudyError, match="--out"):
        export("nokey", tmp_path / "w.safetensors")


def test_cli_export_and_validate(run_folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cli.safetensors"
    r = runner.invoke(app, ["export", run_folder.name, "--out", str(run_folder.parent.parent), "--weights", str(dest)])
    assert r.exit_code == 0, r.output
    assert "recorded test accuracy" in r.output
    r = runner.invoke(app, ["validate", "enorm", "--weights", str(dest)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "identical" in r.output and "recomputed (inference)" in r.output
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"x")
    r = runner.invoke(app, ["validate", "enorm", "--weights", str(pth)], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "weights_only=True" in r.output


def test_the_agreement_rule() -> None:
    from restudy.execution.weights import judge

    assert judge(93.0, 93.0, 10000, [], True)[0] == "identical"
    assert judge(93.0, 93.01, 10000, [], True)[0] == "differs"  # one prediction in the recorded environment
    other = ["device cuda → cpu"]
    assert judge(93.0, 93.01, 10000, other, True)[0] == "agrees"  # 1 of at most 10 changes
    assert judge(93.0, 93.10, 10000, other, True)[0] == "agrees"  # 10
    assert judge(93.0, 93.11, 10000, other, True)[0] == "differs"  # 11
    assert judge(93.0, 93.5, 200, other, True)[0] == "agrees"  # 1 example of 200: at least one may change
    assert judge(93.0, 80.0, 10000, [], False)[0] == "other data"


def test_a_weights_bundle_never_names_code_to_run(run_folder: Path, tmp_path: Path) -> None:
    """A crafted sidecar naming a module (and the folder to import it from) is refused before any
    import: the module would have written a file."""
    dest = tmp_path / "w.safetensors"
    export(str(run_folder), dest)
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "evilmod.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').write('x')\n")
    side = json.loads(dest.with_suffix(".json").read_text())
    side["spec"] = {**side["spec"], "study_module": "evilmod", "study_dir": str(evil)}
    dest.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(RestudyError, match="differs from the one in the weights file"):
        validate(dest, study_id="enorm", study_module=ENORM_MODULE)
    assert not (tmp_path / "pwned").exists()
    # the same spec in both places (a file re-made with crafted metadata) still imports nothing
    dest.with_suffix(".json").unlink()
    from safetensors.torch import load_file, save_file

    from restudy.execution.weights import metadata

    meta = metadata(dest)
    meta["spec"] = json.dumps({**json.loads(meta["spec"]), "study_module": "evilmod", "study_dir": str(evil)})
    save_file(load_file(str(dest)), str(dest), metadata=meta)
    with pytest.raises(RestudyError, match="another study module"):
        validate(dest, study_id="enorm", study_module=ENORM_MODULE)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("spec", ["{}", "not json", "[1, 2]", '{"settings": 3}'])
def test_malformed_weights_metadata_is_a_one_line_error(run_folder: Path, tmp_path: Path, spec: str) -> None:
    from safetensors.torch import load_file, save_file

    from restudy.execution.weights import metadata

    dest = tmp_path / "w.safetensors"
    export(str(run_folder), dest)
    dest.with_suffix(".json").unlink()
    meta = {**metadata(dest), "spec": spec}
    save_file(load_file(str(dest)), str(dest), metadata=meta)
    with pytest.raises(RestudyError) as err:
        validate(dest, study_id="enorm", study_module=ENORM_MODULE)
    assert "malformed" in str(err.value) and str(dest) in str(err.value)
