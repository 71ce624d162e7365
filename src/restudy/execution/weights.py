"""Released weights: export a run's final model as safetensors with a JSON sidecar, and validate a
weights file by recomputing its test accuracy in inference only.

A run keeps its weights when setting ``save_weights`` is on (``model.safetensors`` in its folder,
sha256 in its record, written by :func:`restudy.execution.worker.save_weights`; the file's own metadata holds
the run's spec, input shape, class count, normalisation and recorded test accuracy). Only
safetensors are read: a pickle (``.pth``, ``.pt``, ``.ckpt``, ``.pkl``) is refused with the safe
conversion route, since unpickling an untrusted file runs its code.

Agreement rule of :func:`validate`: on the recorded device, thread count and torch version the
recomputed accuracy must equal the recorded one bit for bit (inference is deterministic there);
elsewhere it agrees when at most max(1, 0.1 % of the test set) predictions change (other kernels
round differently and flip only near-tied predictions; a wrong model, data or normalisation
changes far more). On other data than the run's (another data set, test-set size or
normalisation) the two numbers are shown and not judged.

Imports storage, training (build, evaluate), planning, spec and the plug-in registry (torch).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import RestudyError, UnsafeFileError
from ..spec.settings import RunSettings
from ..storage.artifacts import RUN_FILE, WEIGHTS_FILE, run_dir
from ..storage.record import validate as validate_record
from ..storage.safeio import PICKLE_SUFFIXES, atomic_write_bytes, read_json, sha256_of, write_json

FORMAT = "restudy-weights/1"
SUFFIX = ".safetensors"
CHANGED_FRACTION = 0.001
"""Predictions allowed to change in another environment, as a fraction of the test set (at least 1)."""
SAFE_ROUTE = (
    "convert it once, in a session you trust, with torch.load(path, weights_only=True) (which refuses "
    "arbitrary objects) and safetensors.torch.save_file(state_dict, 'model.safetensors')"
)
IDENTICAL, AGREES, DIFFERS, OTHER_DATA = "identical", "agrees", "differs", "other data"


def refuse_unsafe(path: Path) -> None:
    """Raise unless ``path`` names a safetensors file (a pickle is refused with the safe route)."""
    if path.suffix.lower() in PICKLE_SUFFIXES or path.suffix.lower() == ".bin":
        raise UnsafeFileError(
            f"refusing to unpickle a weights file (unpickling runs arbitrary code); {SAFE_ROUTE}",
            where=str(path),
            got=path.suffix,
            allowed=SUFFIX,
        )
    if path.suffix.lower() != SUFFIX:
        raise RestudyError("weights are read and written as safetensors only", where=str(path), allowed=SUFFIX)


def sidecar_path(weights: Path) -> Path:
    """The JSON sidecar next to a weights file: ``model.safetensors`` → ``model.json``."""
    return weights.with_suffix(".json")


def metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header (no tensor is loaded)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            (n,) = struct.unpack("<Q", head) if len(head) == 8 else (0,)
            if not 0 < n <= 100_000_000:
                raise ValueError("no safetensors header")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise RestudyError("file not found", where=str(path)) from None
    except (OSError, ValueError) as e:
        raise RestudyError(f"not a safetensors file: {e}", where=str(path)) from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


# --------------------------------------------------------------------------- export


def run_folder(run: str, out: Path | None) -> Path:
    """The folder of ``run``: a run folder (holding run.json), or a run key under ``out``."""
    given = Path(run)
    if (given / RUN_FILE).is_file():
        return given
    if out is None:
        raise RestudyError(
            "not a run folder; give the run's folder, or its key with --out RESULTS (the folder `restudy run` wrote)",
            where=run,
        )
    folder = run_dir(out, run)
    if not (folder / RUN_FILE).is_file():
        raise RestudyError(f"no run '{run}' under {out} (run keys are the folder names in {folder.parent})", where=run)
    return folder


def _load_record(folder: Path) -> dict[str, Any]:
    rec = read_json(folder / RUN_FILE)
    validate_record(rec, folder.name, where=str(folder / RUN_FILE))
    return rec


def sidecar(rec: dict[str, Any], meta: dict[str, str], sha256: str) -> dict[str, Any]:
    """What a released weights file needs to be used and checked: the model and its arguments, the
    data, its normalisation, the recorded test accuracy, where it came from."""
    spec = rec["spec"]
    s = RunSettings(dict(spec["settings"]))
    env = rec.get("env") or {}
    metrics = rec.get("metrics") or {}
    return {
        "format": FORMAT,
        "restudy": __version__,
        "sha256": sha256,
        "run": rec["key"],
        "study": spec["study"],
        "scale": spec["scale"],
        "experiment": spec["experiment"],
        "variant": spec["variant"],
        "seed_index": spec["seed_index"],
        "model": s.engine.model,
        "model_args": s.part_args("model"),
        "input_shape": json.loads(meta.get("input_shape", "null")),
        "num_classes": json.loads(meta.get("num_classes", "null")),
        "dataset": s.engine.data,
        "data_args": s.part_args("data"),
        "transforms": list(s.engine.transforms),
        "normalization": json.loads(meta.get("normalization", "null")),
        "recorded": {"status": rec["status"], "test_acc": metrics.get("test_acc"), "n_test": metrics.get("n_test")},
        "env": {**{k: env.get(k) for k in ("threads", "torch", "cpu", "gpu")}, **json.loads(meta.get("env", "{}"))},
        "spec": spec,
    }


def export(run: str, dest: Path, out: Path | None = None) -> dict[str, Any]:
    """Copies a run's kept weights to ``dest`` (safetensors) and writes the sidecar next to it.

    Args:
        run: a run folder, or a run key with ``out``.
        dest: the weights file to write (``*.safetensors``).
        out: the results folder of ``restudy run``.

    Returns:
        The sidecar (as written to :func:`sidecar_path`).

    Raises:
        RestudyError: no such run, a run without kept weights, weights not matching their recorded
            sha256, or ``dest`` not a safetensors name.
    """
    import hashlib

    refuse_unsafe(dest)
    folder = run_folder(run, out)
    rec = _load_record(folder)
    art = (rec.get("artifacts") or {}).get(WEIGHTS_FILE)
    if art is None:
        raise RestudyError(
            f"this run kept no weights ({rec['status']}); run it again with the setting save_weights=true, "
            "e.g. `restudy run STUDY save_weights=true`",
            where=str(folder),
        )
    data = (folder / WEIGHTS_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != art["sha256"]:
        raise RestudyError("the weights do not match the sha256 their run recorded", where=str(folder / WEIGHTS_FILE))
    atomic_write_bytes(dest, data)
    side = sidecar(rec, metadata(folder / WEIGHTS_FILE), art["sha256"])
    write_json(sidecar_path(dest), side)
    return side


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True)
class Validation:
    """A weights file's test accuracy recomputed in inference only, against the recorded one.

    Attributes:
        recorded, recomputed: test accuracy (%); n_test: test examples evaluated.
        changed: |recorded − recomputed| in examples.
        status: ``identical``, ``agrees``, ``differs`` or ``other data``.
        same_env: whether device, threads and torch are the recorded ones; env_diff: what differs.
        message: one sentence for the user.
    """

    run: str
    model: str
    dataset: str
    recorded: float
    recomputed: float
    n_test: int
    changed: int
    status: str
    same_env: bool
    env_diff: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (IDENTICAL, AGREES, OTHER_DATA)


def _describe(weights: Path) -> dict[str, Any]:
    """The facts of a weights file: its sidecar's, checked against the file (its sha256, and its
    run spec against the spec in the file's own metadata, which that sha256 covers), or the file's
    metadata alone. Everything here is data: nothing in it is imported or run.

    Raises:
        RestudyError: a malformed sidecar or metadata, or a sidecar that does not describe the file
            (one line naming the file and the field).
    """
    side = sidecar_path(weights)
    meta = metadata(weights)
    try:
        own = _meta_facts(meta, weights)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise RestudyError(
            f"malformed restudy metadata in the weights file ({type(e).__name__}: {e})", where=str(weights)
        ) from None
    if not side.is_file():
        if own is None:
            raise RestudyError(
                f"no sidecar ({side.name}) and no run spec in the file's metadata: export it with `restudy export`",
                where=str(weights),
            )
        return own
    d = read_json(side)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise RestudyError("not a restudy weights sidecar", where=str(side), allowed=FORMAT)
    got = sha256_of(weights)
    if got != d.get("sha256"):
        raise RestudyError(
            f"the weights are not the ones {side.name} describes (sha256 differs)",
            where=str(weights),
            got=got,
            allowed=d.get("sha256"),
        )
    if own is not None and d.get("spec") != own["spec"]:
        raise RestudyError(
            f"{side.name}'s run spec differs from the one in the weights file (which its sha256 covers)",
            where=str(side),
        )
    for key, kind in (("spec", dict), ("recorded", dict)):
        if not isinstance(d.get(key), kind):
            raise RestudyError(f"malformed sidecar: '{key}' must be a mapping", where=str(side), got=d.get(key))
    return d


def _meta_facts(meta: dict[str, str], weights: Path) -> dict[str, Any] | None:
    """The facts the file's own metadata holds (None without a run spec)."""
    if "spec" not in meta:
        return None
    spec = json.loads(meta["spec"])
    if not isinstance(spec, dict) or not isinstance(spec.get("settings"), dict):
        raise ValueError("'spec' is not a run spec (a mapping with its settings)")
    engine = RunSettings(dict(spec["settings"])).engine
    return {
        "run": spec.get("key"),
        "study": spec.get("study"),
        "model": engine.model,
        "dataset": engine.data,
        "input_shape": json.loads(meta.get("input_shape", "null")),
        "num_classes": json.loads(meta.get("num_classes", "null")),
        "normalization": json.loads(meta.get("normalization", "null")),
        "recorded": {"test_acc": json.loads(meta.get("test_acc", "null")), "n_test": None},
        "env": json.loads(meta.get("env", "{}")),
        "spec": spec,
    }


def validate(
    weights: Path,
    *,
    study_id: str | None = None,
    study_module: str | None = None,
    study_dir: str | None = None,
    data: str | None = None,
    data_args: dict[str, Any] | None = None,
    threads: int = 1,
    device: str = "cpu",
) -> Validation:
    """Rebuilds the model of a weights file, loads the weights and recomputes its test accuracy.

    Args:
        weights: the ``*.safetensors`` file (pickles are refused).
        study_id: the study it must belong to (checked against the sidecar).
        study_module, study_dir: the study's own module and the folder it is imported from (its
            models register there), from the study named on the command line: a weights file
            never names code to import (its sidecar and metadata are data).
        data: a registered data set to evaluate on instead of the run's; data_args its ``data.*``
            arguments (e.g. ``root``), on top of the run's when ``data`` is the run's own.
        threads, device: where to evaluate (the run's kernel determinism is applied).

    Returns:
        The :class:`Validation`.
    """
    import torch

    from .. import plugins
    from ..planning.runs import RunSpec
    from ..planning.seeding import apply_determinism
    from ..storage.env import capture
    from ..storage.safeio import load_tensors
    from ..training.build import build_model, load_data, memory_format
    from ..training.evaluate import metrics_from_logits, predict

    refuse_unsafe(weights)
    d = _describe(weights)
    try:
        stored = RunSpec.from_dict(dict(d["spec"]))
    except (KeyError, TypeError, ValueError) as e:
        raise RestudyError(
            f"malformed run spec in the weights' description ({type(e).__name__}: {e})", where=str(weights)
        ) from None
    if stored.study_module and stored.study_module != study_module:
        raise RestudyError(
            "the weights name another study module than the study given; restudy imports only the given study's",
            where=str(weights),
            got=stored.study_module,
            allowed=study_module or "(the study has no module)",
        )
    stored = replace(stored, study_module=study_module, study_dir=study_dir)  # never the bundle's folder
    run_data = stored.engine.data
    if study_id is not None and stored.study != study_id:
        raise RestudyError(
            "these weights come from another study", where=str(weights), got=stored.study, allowed=study_id
        )
    settings = stored.settings
    if data is not None and data != run_data:
        settings = settings.without_part_args("data")
    changes = {f"data.{k}": v for k, v in (data_args or {}).items()} | {"device": device}
    if data is not None:
        changes["data"] = data
    settings = settings.with_values(changes, "restudy validate: command line")
    spec = replace(stored, settings=settings)

    apply_determinism(spec.kernels, threads)
    plugins.load_builtins(plugins.TRAINING_KINDS)
    if study_module:
        plugins.import_study_module(study_module, study_dir)
    ds = load_data(settings, spec.seeds.get("data", 0))
    shape, classes = tuple(ds.x_test.shape[1:]), int(ds.num_classes)
    want_shape = tuple(d.get("input_shape") or shape)
    if shape != want_shape or classes != (d.get("num_classes") or classes):
        raise RestudyError(
            "the data does not fit the model: other input shape or class count",
            where="--data",
            got={"input_shape": list(shape), "num_classes": classes},
            allowed={"input_shape": list(want_shape), "num_classes": d.get("num_classes")},
        )
    model, _ = build_model(spec, shape, classes, device)
    try:
        state = load_tensors(weights)
    except Exception as e:  # safetensors' own error types: a damaged or foreign file
        raise RestudyError(f"not a readable safetensors file: {e}", where=str(weights)) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RestudyError(f"the weights do not fit model '{spec.engine.model}': {e}", where=str(weights)) from None
    with torch.no_grad():
        logits = predict(model, ds.x_test.to(device), spec.engine.eval_batch_size, memory_format(settings))
    recomputed = metrics_from_logits(logits.cpu(), ds.y_test, "test").acc
    n_test = int(ds.y_test.shape[0])

    recorded = d["recorded"].get("test_acc")
    recorded = math.nan if recorded is None else float(recorded)
    env_now = capture(threads=threads, with_packages=False)
    env_now["device"] = device
    env_then = d.get("env") or {}
    diff = [
        f"{k} {env_then.get(k)} → {env_now.get(k)}"
        for k in ("device", "threads", "torch")
        if env_then.get(k) is not None and str(env_then.get(k)) != str(env_now.get(k))
    ]
    same_data = (
        spec.engine.data == run_data
        and (d["recorded"].get("n_test") in (None, n_test))
        and (d.get("normalization") is None or _rounded(d["normalization"]) == _rounded(ds.normalization))
    )
    status, why = judge(recorded, recomputed, n_test, diff, same_data, ds.description)
    return Validation(
        run=str(d.get("run")),
        model=str(spec.engine.model),
        dataset=ds.description,
        recorded=recorded,
        recomputed=recomputed,
        n_test=n_test,
        changed=changed_predictions(recorded, recomputed, n_test),
        status=status,
        same_env=not diff,
        env_diff=diff,
        message=why,
    )


def changed_predictions(recorded: float, recomputed: float, n_test: int) -> int:
    """How many test predictions at least changed between two accuracies (%) on ``n_test`` examples."""
    return round(abs(recomputed - recorded) * n_test / 100.0) if math.isfinite(recorded) else n_test


def judge(
    recorded: float, recomputed: float, n_test: int, env_diff: list[str], same_data: bool, data: str = ""
) -> tuple[str, str]:
    """The agreement rule (module docstring): status and why."""
    if not same_data:
        return OTHER_DATA, f"evaluated on other data than the run's ({data}); the recorded value is not comparable"
    if recomputed == recorded:
        return IDENTICAL, "bit-identical to the recorded value"
    changed = changed_predictions(recorded, recomputed, n_test)
    allowed = max(1, math.floor(CHANGED_FRACTION * n_test))
    where = f"{changed} prediction(s) changed in another environment ({'; '.join(env_diff)})"
    if env_diff and changed <= allowed:
        return AGREES, f"{where}, within the {allowed} allowed"
    if env_diff:
        return DIFFERS, f"{where}; {allowed} allowed"
    return DIFFERS, f"{changed} prediction(s) changed in the recorded environment, where it must be bit-identical"


def _rounded(x: Any) -> Any:
    """Numbers to 6 significant digits, so that a normalisation read back from JSON compares equal."""
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_rounded(v) for v in x]
    return x
