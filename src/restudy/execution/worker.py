"""Execute one run inside a worker process: prepare, build, train, evaluate, write artifacts.

``execute(spec_dict, run_dir, threads)`` never raises for a problem of the run itself: a crash
becomes a record with status ``failed`` and the error, a non-finite loss one with status
``diverged``. It writes ``run.json`` (atomically) and the final per-example test logits
(safetensors) into ``run_dir`` and returns the record as a dict. The run's parts come from
:func:`restudy.training.build.build_run`, its training from :func:`restudy.training.loop.train`.

Optional extras, each driven by a setting:

* ``perturb: one_ulp`` (Summers & Dinneen's random bit change): right after the model is built
  (and moved to its device), before the optimizer exists, one weight moves by one ULP; what changed
  is recorded in ``record.env["perturbation"]`` (see :func:`restudy.training.perturb.one_ulp_change`).
* ``tta: [strategy, ...]`` (Summers & Dinneen's test-time augmentation): the final model's TTA test
  logits are stored in ``test_logits.safetensors`` as ``tta_<strategy>``, their accuracy in
  ``record.metrics["test_acc_tta_<strategy>"]``.
* ``schedule: snapshot`` (Summers & Dinneen's accelerated ensembling): the test logits at the end of
  each cycle are stored as ``snapshot_<i>`` (i = 0-based cycle), their mean (logits averaged) as
  ``ensemble``, its accuracy as ``test_acc_ensemble``; with ``tta`` also ``ensemble_tta_<strategy>``
  (the mean over snapshots of each snapshot model's TTA logits) and ``test_acc_ensemble_tta_<strategy>``.
* ``save_weights: true``: the final model's state (parameters and buffers) as
  ``model.safetensors``, with its sha256 in the record (read by :mod:`restudy.execution.weights`).
* ``cka_examples: n``: the penultimate features of the first n test examples, as ``features``.
* ``run_metrics: [name, ...]``: per-run metrics (registry kind ``run_metric``), each a function
  ``fn(model=, x_train=, y_train=, x_test=, y_test=, settings=) -> {metric_name: float}`` called
  on the trained model (as training left it), with ``test_logits=`` too when ``fn`` takes it (the
  model's logits on the test split, already computed: a metric of them needs no inference pass);
  the values join ``record.metrics``.

The extras are computed for finished runs only; a diverged run stores the plain logits and
reports the TTA and ensemble metrics as ``None`` (run metrics are absent).
"""

from __future__ import annotations

import functools
import inspect
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RestudyError
from ..planning.runs import RunSpec
from ..spec.settings import RunSettings
from ..storage.artifacts import (
    LOGITS_FILE,
    RUN_FILE,
    TENSOR_ENSEMBLE,
    TENSOR_FEATURES,
    TENSOR_INDEX,
    TENSOR_LABELS,
    TENSOR_LOGITS,
    WEIGHTS_FILE,
    ensemble_tta_tensor,
    snapshot_tensor,
    tta_tensor,
)
from ..storage.env import host_load, load_average
from ..storage.record import RunRecord, now
from ..storage.safeio import save_tensors, write_json
from ..training.build import (
    RunParts,
    TTASetup,
    build_run,
    fit_threshold,
    prepare,
    train_eval_size,
    train_options,
)

if TYPE_CHECKING:
    import torch

    from ..data import Dataset
    from ..training.loop import TrainResult

__all__ = ["LOGITS_FILE", "execute", "penultimate_features", "save_test_tensors", "save_weights"]


def execute(spec_dict: dict[str, Any], run_dir: str, threads: int = 1) -> dict[str, Any]:
    """Run one spec; always returns (and writes) a record."""
    t_start, load = time.perf_counter(), load_average()
    spec = RunSpec.from_dict(spec_dict)
    record = RunRecord(key=spec.key, spec=spec.to_dict(), status="failed", started_at=now())
    out = Path(run_dir)
    try:
        _run(spec, record, out, threads)
    except Exception as e:  # the run failed; the study goes on
        record.status = "failed"
        record.reason = f"{type(e).__name__}: {e}"
        record.metrics = {}
        record.env.setdefault("traceback", traceback.format_exc(limit=20))
    record.timings["wall_s"] = time.perf_counter() - t_start
    record.env["host_load"] = host_load(load)
    record.finished_at = now()
    d = record.to_dict()
    write_json(out / RUN_FILE, d)
    return d


def _run(spec: RunSpec, record: RunRecord, out: Path, threads: int) -> None:
    from ..training.loop import fill_record, train

    s, e = spec.settings, spec.engine
    prep = prepare(spec, threads, "single")
    record.env, record.timings["load_s"] = prep.env, prep.load_s
    data, (x_tr, y_tr, x_te, y_te) = prep.data, prep.tensors
    parts = build_run(spec, data, prep.device)
    if parts.perturbation is not None:
        record.env["perturbation"] = parts.perturbation
    teacher = _take_input_run(spec, record, out, parts.model, data, prep.device) if spec.input_run else None

    result = train(
        parts.model,
        x_tr,
        y_tr,
        x_te,
        y_te,
        epochs=e.epochs,
        batch_size=e.batch_size,
        snapshot_epochs=parts.snapshot_epochs,
        keep_snapshot_states=bool(parts.snapshot_epochs and parts.tta.strategies),
        stop_at_fit=fit_threshold(s),
        curve_every_steps=e.curve_every_steps,
        eval_train=train_eval_size(s),
        teacher=teacher,
        distill=(e.distill_temperature, e.distill_alpha),
        **train_options(parts, s),
    )
    fill_record(record, result, int(y_te.shape[0]), int(y_tr.shape[0]), int(data.num_classes))
    if e.save_weights:
        save_weights(record, out, parts.model, data)
    if result.test_logits is not None:
        t1 = time.perf_counter()
        extra, extra_metrics, what = _extras(result, parts, x_te, y_te, s)
        record.metrics.update(extra_metrics)
        if extra:
            record.timings["extras_s"] = time.perf_counter() - t1
        if result.finished and parts.run_metrics:
            val = tuple(None if t is None else t.to(prep.device) for t in (data.x_val, data.y_val))
            record.metrics.update(_run_metrics(parts, record.metrics, prep.tensors, s, result.test_logits, val))
        if e.cka_examples:
            extra[TENSOR_FEATURES] = penultimate_features(
                parts.model, x_te[: e.cka_examples], e.eval_batch_size, parts.memory_format
            )
        save_test_tensors(record, out, result.test_logits, y_te, data, extra, what)
    record.env["dataset"] = data.description
    if data.y_val is not None:
        record.metrics["n_val"] = int(data.y_val.shape[0])


def read_input_run(spec: RunSpec, out: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The record and final weights of the run ``spec`` reads (its ``input_run``), from the folder
    beside ``out``: it must have finished, and its weights must match the sha256 its record holds.

    Raises:
        RestudyError: the input run has not run, did not finish, or its weights are missing or altered.
    """
    from ..storage.safeio import load_verified, read_json

    key = spec.input_run["key"]
    folder = out.parent / key
    if not (folder / RUN_FILE).is_file():
        raise RestudyError("the run it reads (input_run) has not run", where=str(folder), got=key)
    rec = read_json(folder / RUN_FILE)
    if not isinstance(rec, dict) or rec.get("status") != "finished":
        status = rec.get("status") if isinstance(rec, dict) else None
        reason = rec.get("reason") if isinstance(rec, dict) else None
        raise RestudyError(f"the run it reads (input_run) ended {status!r}: {reason}", where=str(folder), got=key)
    want = ((rec.get("artifacts") or {}).get(WEIGHTS_FILE) or {}).get("sha256")
    if not want:
        raise RestudyError("the run it reads (input_run) kept no weights", where=str(folder), got=key)
    return rec, load_verified(folder / WEIGHTS_FILE, want)  # read once, the bytes checked are the bytes used


def _take_input_run(
    spec: RunSpec, record: RunRecord, out: Path, model: torch.nn.Module, data: Dataset, device: str
) -> torch.nn.Module | None:
    """What the run takes from its input run: ``weights`` are loaded into ``model`` (the same
    architecture, else an error naming the mismatch); ``outputs`` returns the input run's model,
    rebuilt from its own spec and weights, in eval mode, as the teacher. Recorded in the run's env."""
    from ..training.build import build_model

    rec, state = read_input_run(spec, out)
    take = spec.input_run["take"]
    record.env["input_run"] = {
        "key": spec.input_run["key"],
        "take": take,
        "experiment": spec.input_run["experiment"],
        "variant": spec.input_run["variant"],
        "test_acc": (rec.get("metrics") or {}).get("test_acc"),
    }
    if take == "weights":
        try:
            model.load_state_dict({k: v.to(device) for k, v in state.items()})
        except RuntimeError as e:
            raise RestudyError(
                f"its input run trained another architecture, so its weights do not fit: {str(e)[:300]}",
                where=f"experiment {spec.experiment} input_run",
            ) from None
        return None
    teacher, _ = build_model(RunSpec.from_dict(rec["spec"]), tuple(data.input_shape), int(data.num_classes), device)
    teacher.load_state_dict({k: v.to(device) for k, v in state.items()})
    return teacher.eval()


def save_weights(record: RunRecord, out: Path, model: torch.nn.Module, data: Dataset) -> None:
    """Write the final model's state (parameters and buffers) as safetensors and its artifact
    entry (setting ``save_weights``). The file's metadata says what rebuilds and checks it: the
    run's spec, input shape, class count, normalisation, test accuracy and device (read by
    :mod:`restudy.execution.weights`)."""
    import json

    meta = {
        "run": record.key,
        "spec": record.spec,
        "input_shape": list(data.x_test.shape[1:]),
        "num_classes": int(data.num_classes),
        "normalization": data.normalization,
        "test_acc": record.metrics.get("test_acc"),
        "env": {
            "device": next((p.device.type for p in model.parameters()), "cpu"),  # where it ran, not what exists
            "threads": record.env.get("threads"),
            "torch": record.env.get("torch"),
        },
    }
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    sha = save_tensors(out / WEIGHTS_FILE, state, {k: json.dumps(v, default=str) for k, v in meta.items()})
    record.artifacts[WEIGHTS_FILE] = {"sha256": sha, "what": "final model state (parameters and buffers)"}


def save_test_tensors(
    record: RunRecord,
    out: Path,
    logits: torch.Tensor,
    labels: torch.Tensor,
    data: Dataset,
    extra: dict[str, torch.Tensor],
    what: list[str],
) -> None:
    """Write the run's test tensors file (final logits, labels, example index and ``extra``) and
    its artifact entry, described by ``what`` (one phrase per extra; CKA features are described
    here)."""
    what = ["final-epoch test logits, labels, example index", *what]
    if TENSOR_FEATURES in extra:
        what.append(f"penultimate features of the first {extra[TENSOR_FEATURES].shape[0]} test examples (for CKA)")
    sha = save_tensors(
        out / LOGITS_FILE, {TENSOR_LOGITS: logits, TENSOR_LABELS: labels, TENSOR_INDEX: data.idx_test, **extra}
    )
    record.artifacts[LOGITS_FILE] = {"sha256": sha, "what": "; ".join(what)}


def _run_metrics(
    parts: RunParts,
    known: dict[str, Any],
    tensors: tuple[torch.Tensor, ...],
    settings: RunSettings,
    test_logits: torch.Tensor,
    val: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
) -> dict[str, float]:
    """The values of the run's per-run metrics (setting ``run_metrics``) on the trained model
    (``test_logits``: its final logits on the test split; ``val``: the validation split's inputs
    and labels on the run's device, given to a metric that takes ``x_val``/``y_val``).

    Raises:
        RestudyError: a metric function returned something other than ``{name: number}``, or a
            name the record already has.
    """
    x_tr, y_tr, x_te, y_te = tensors
    out: dict[str, float] = {}
    for name, fn in parts.run_metrics.items():
        args: dict[str, Any] = dict(model=parts.model, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
        if _takes(fn, "test_logits"):  # metrics written before it was passed still work
            args["test_logits"] = test_logits
        if _takes(fn, "x_val") or _takes(fn, "y_val"):  # the validation split (data.val_fraction), or None
            args["x_val"], args["y_val"] = val
        values = fn(**args, settings=settings.to_dict())
        ok = isinstance(values, dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in values.items()
        )
        if not ok:
            raise RestudyError(
                "a run metric must return {metric_name: number}", where=f"run_metrics: {name}", got=repr(values)[:200]
            )
        clash = sorted(set(values) & (set(known) | set(out)))
        if clash:
            raise RestudyError(
                "a run metric must not replace a metric the run already has", where=f"run_metrics: {name}", got=clash
            )
        out.update({k: float(v) for k, v in values.items()})
    return out


def _takes(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` accepts the keyword argument ``name`` (by name or through ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def penultimate_features(
    model: torch.nn.Module, x: torch.Tensor, batch_size: int, memory_format: torch.memory_format
) -> torch.Tensor:
    """The representation the classifier reads: ``model.features(x)`` when the model has it (the
    ResNets), else the output of all but the last layer of an ``nn.Sequential`` (the MLPs).

    Which layer CKA should compare is not stated by the original (its released code computes no CKA):
    this choice is an assumption a study marks as such.
    """
    import torch

    if hasattr(model, "features") and callable(model.features):
        body = model.features
    elif isinstance(model, torch.nn.Sequential):
        body = model[:-1]
    else:
        raise RestudyError(
            "cannot find the penultimate layer: give the model a features() method",
            where="cka_examples",
            got=type(model).__name__,
        )
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            out.append(body(xb.contiguous(memory_format=memory_format) if xb.dim() == 4 else xb).flatten(1).float())
    model.train(was_training)
    return torch.cat(out).cpu()


def _extras(
    result: TrainResult, parts: RunParts, x_te: torch.Tensor, y_te: torch.Tensor, s: RunSettings
) -> tuple[dict[str, torch.Tensor], dict[str, float | None], list[str]]:
    """TTA and snapshot-ensemble tensors, their metrics and a description of what was stored."""
    from ..training.evaluate import mean_logits, metrics_from_logits

    tta, snap_epochs, model = parts.tta, parts.snapshot_epochs, parts.model
    names = [f"test_acc_{tta_tensor(n)}" for n in tta.strategies]
    if snap_epochs:
        names += [f"test_acc_{TENSOR_ENSEMBLE}", *(f"test_acc_{ensemble_tta_tensor(n)}" for n in tta.strategies)]
    metrics: dict[str, float | None] = dict.fromkeys(names)
    if not result.finished:
        return {}, metrics, []
    run_tta = functools.partial(
        _tta_all, x=x_te, tta=tta, batch_size=s.engine.eval_batch_size, memory_format=parts.memory_format
    )
    tensors: dict[str, torch.Tensor] = {tta_tensor(n): t for n, t in run_tta(model).items()}
    what = [f"TTA logits {', '.join(tensors)}"] if tensors else []
    if snap_epochs:
        # Copies: the last snapshot is the final logits' tensor, and safetensors refuses shared memory.
        tensors.update({snapshot_tensor(i): t.clone() for i, t in enumerate(result.snapshots)})
        tensors[TENSOR_ENSEMBLE] = mean_logits(result.snapshots)
        what.append(
            f"snapshot logits {snapshot_tensor(0)}..{len(result.snapshots) - 1} (epochs "
            f"{', '.join(map(str, result.snapshot_epochs))}), their mean '{TENSOR_ENSEMBLE}'"
        )
        if tta.strategies:
            final = {n: tensors[tta_tensor(n)] for n in tta.strategies}
            per_snapshot = _snapshot_tta(result, model, run_tta, final)
            for n in tta.strategies:
                tensors[ensemble_tta_tensor(n)] = mean_logits([d[n] for d in per_snapshot])
            what.append(f"{ensemble_tta_tensor('<strategy>')}: mean over snapshots of each snapshot's TTA logits")
    for key, t in tensors.items():
        if not key.startswith("snapshot_"):
            metrics[f"test_acc_{key}"] = metrics_from_logits(t, y_te, "test").acc
    return tensors, metrics, what


def _tta_all(
    model: torch.nn.Module, *, x: torch.Tensor, tta: TTASetup, batch_size: int, memory_format: torch.memory_format
) -> dict[str, torch.Tensor]:
    """TTA test logits of ``model`` for every strategy of the run."""
    from ..training.tta import tta_logits

    return {
        n: tta_logits(
            model, x, n, pad_value=tta.pad_value, batch_size=batch_size, memory_format=memory_format, pad=tta.pad
        )
        for n in tta.strategies
    }


def _snapshot_tta(
    result: TrainResult,
    model: torch.nn.Module,
    run_tta: Callable[[torch.nn.Module], dict[str, torch.Tensor]],
    final: dict[str, torch.Tensor],
) -> list[dict[str, torch.Tensor]]:
    """Each snapshot model's TTA logits (snapshot ensembles with test-time augmentation, as Summers & Dinneen).

    A snapshot taken at the last epoch is the final model: its TTA logits (``final``) are reused.
    The others are evaluated by loading their saved state_dict into ``model``; the final weights
    are put back afterwards.
    """
    final_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = []
    for epoch, state in zip(result.snapshot_epochs, result.snapshot_states):
        if epoch == result.epochs_done:
            out.append(final)
        else:
            model.load_state_dict(state)
            out.append(run_tta(model))
    model.load_state_dict(final_state)
    return out
