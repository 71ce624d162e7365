"""Execute one run inside a worker process: seed, build, train, evaluate, write artifacts.

``execute(spec_dict, run_dir, threads)`` never raises for a problem of the run itself: a crash
becomes a record with status ``failed`` and the error, a non-finite loss one with status
``diverged``. It writes ``run.json`` (atomically) and the final per-example test logits
(safetensors) into ``run_dir`` and returns the record as a dict.

Optional extras, each driven by a setting:

* ``perturb: one_ulp`` (originals.md §4.3): right after the model is built (and moved to its
  device), before the optimizer exists, one weight moves by one ULP; what changed is recorded in
  ``record.env["perturbation"]`` (see :func:`restudy.perturb.one_ulp_change`).
* ``tta: [strategy, ...]`` (originals.md §4.6): the final model's TTA test logits are stored in
  ``test_logits.safetensors`` as ``tta_<strategy>``, their accuracy in
  ``record.metrics["test_acc_tta_<strategy>"]``.
* ``schedule: snapshot`` (originals.md §4.5): the test logits at the end of each cycle are stored
  as ``snapshot_<i>`` (i = 0-based cycle), their mean (logits averaged) as ``ensemble``, its
  accuracy as ``test_acc_ensemble``; with ``tta`` also ``ensemble_tta_<strategy>`` (the mean over
  snapshots of each snapshot model's TTA logits) and ``test_acc_ensemble_tta_<strategy>``.

The extras are computed for finished runs only; a diverged run stores the plain logits and
reports the extras' metrics as ``None``.
"""

from __future__ import annotations

import functools
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from . import registry
from .artifacts import LOGITS_FILE, RUN_FILE
from .errors import RestudyError
from .plan import RunSpec
from .record import RunRecord
from .safeio import save_tensors, write_json
from .settings import part_args

if TYPE_CHECKING:
    import torch

    from .data import Dataset
    from .train import TrainResult



def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _args(settings: dict[str, Any], prefix: str) -> dict[str, Any]:
    return part_args(settings, prefix)


@functools.lru_cache(maxsize=4)
def _dataset(name: str, args_items: tuple[tuple[str, Any], ...]):
    """Datasets are cached per worker process: many runs share one in-memory copy."""
    from .data import load_dataset

    return load_dataset(name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in args_items})


def _freeze(v: Any) -> Any:
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def _device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def execute(spec_dict: dict[str, Any], run_dir: str, threads: int = 1) -> dict[str, Any]:
    """Run one spec; always returns (and writes) a record."""
    t_start = time.perf_counter()
    spec = RunSpec.from_dict(spec_dict)
    record = RunRecord(key=spec.key, spec=spec.to_dict(), status="failed", started_at=_now())
    out = Path(run_dir)
    try:
        _run(spec, record, out, threads)
    except Exception as e:  # the run failed; the study goes on
        record.status = "failed"
        record.reason = f"{type(e).__name__}: {e}"
        record.metrics = {}
        record.env.setdefault("traceback", traceback.format_exc(limit=20))
    record.timings["wall_s"] = time.perf_counter() - t_start
    record.finished_at = _now()
    d = record.to_dict()
    write_json(out / RUN_FILE, d)
    return d


def prepare(spec: RunSpec, threads: int, execution: str) -> tuple[dict[str, Any], str, Any, tuple, float]:
    """What every run needs before its model: determinism flags and threads applied, the
    environment captured, registries loaded (the study's module too), the data on its device.

    Returns:
        (environment, device, dataset, (x_train, y_train, x_test, y_test) on the device, load seconds).
    """
    from . import env as env_mod
    from .seeding import apply_determinism

    s = spec.settings
    flags = apply_determinism(spec.kernels, threads)
    env = env_mod.capture(threads=threads, determinism=flags, memory_format=s["memory_format"],
                          with_packages=False, execution=execution)
    registry.load_builtins()
    if spec.study_module:
        registry.import_study_module(spec.study_module, spec.study_dir)
    device = _device(s["device"])
    t0 = time.perf_counter()
    data = _dataset(s["data"], tuple(sorted((k, _freeze(v)) for k, v in _args(s, "data").items())))
    tensors = (data.x_train.to(device), data.y_train.to(device), data.x_test.to(device), data.y_test.to(device))
    return env, device, data, tensors, time.perf_counter() - t0


def _run(spec: RunSpec, record: RunRecord, out: Path, threads: int) -> None:
    import torch

    from .batches import make_augment
    from .optim import param_groups, snapshot_epochs
    from .seeding import generator, scoped_seed
    from .train import train

    s = spec.settings
    record.env, device, data, (x_tr, y_tr, x_te, y_te), record.timings["load_s"] = \
        prepare(spec, threads, "single")

    tta = _tta_setup(s, data)
    with scoped_seed(spec.seeds["init"]):
        model = registry.create("model", s["model"], input_shape=tuple(data.input_shape),
                                num_classes=data.num_classes, **_args(s, "model"))
    memory_format = torch.channels_last if s["memory_format"] == "channels_last" else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format) if x_tr.dim() == 4 else model.to(device)
    perturbation = _perturb(model, spec)
    if perturbation is not None:
        record.env["perturbation"] = perturbation

    opt_args = _args(s, "optimizer")
    groups = param_groups(model, opt_args.pop("lr_mult_bias_bn", 1.0))
    optimizer = registry.create("optimizer", s["optimizer"], params=groups, **opt_args)
    steps_per_epoch = -(-x_tr.shape[0] // s["batch_size"])
    schedule = registry.create("schedule", s["schedule"], lr=s["optimizer.lr"], epochs=s["epochs"],
                               steps_per_epoch=steps_per_epoch, **_args(s, "schedule"))
    snap_epochs = snapshot_epochs(s["epochs"], s.get("schedule.cycles", 5)) if s["schedule"] == "snapshot" else []
    hook = registry.create("method", s["method"], model=model, optimizer=optimizer, **_args(s, "method"))
    gen_device = "cuda" if device == "cuda" else "cpu"
    order = generator(spec.seeds["order"], gen_device)
    augment = make_augment(s["augment"], generator(spec.seeds["augment"], gen_device), s.get("augment.pad", 0))
    torch.manual_seed(spec.seeds["dropout"])  # the only global draws left in training are dropout's

    result = train(model, x_tr, y_tr, x_te, y_te, optimizer=optimizer, schedule=schedule,
                   epochs=s["epochs"], batch_size=s["batch_size"], order=order,
                   hooks=[hook] if hook is not None else [], augment=augment,
                   eval_batch_size=s["eval_batch_size"], label_smoothing=s["label_smoothing"],
                   memory_format=memory_format, snapshot_epochs=snap_epochs,
                   keep_snapshot_states=bool(snap_epochs and tta.strategies))
    record.status = result.status
    record.reason = result.reason
    record.curves = result.curves
    record.timings.update(train_s=result.train_wall_s, eval_s=result.eval_wall_s)
    record.metrics = result.final_metrics(int(y_te.shape[0]), int(y_tr.shape[0]))
    if result.test_logits is not None:
        t1 = time.perf_counter()
        extra, extra_metrics, what = _extras(result, model, x_te, y_te, tta, snap_epochs, s, memory_format)
        record.metrics.update(extra_metrics)
        if extra:
            record.timings["extras_s"] = time.perf_counter() - t1
        if s.get("cka_examples", 0):
            extra["features"] = penultimate_features(model, x_te[:s["cka_examples"]], s["eval_batch_size"],
                                                     memory_format)
            what.append(f"penultimate features of the first {s['cka_examples']} test examples (for CKA)")
        sha = save_tensors(out / LOGITS_FILE, {"logits": result.test_logits, "labels": y_te,
                                               "index": data.idx_test, **extra})
        record.artifacts[LOGITS_FILE] = {"sha256": sha, "what": "; ".join(
            ["final-epoch test logits, labels, example index", *what])}
    record.env["dataset"] = data.description


def penultimate_features(model: "torch.nn.Module", x: "torch.Tensor", batch_size: int,
                         memory_format: "torch.memory_format") -> "torch.Tensor":
    """The representation the classifier reads: ``model.features(x)`` when the model has it (the
    ResNets), else the output of all but the last layer of an ``nn.Sequential`` (the MLPs).

    Which layer CKA should compare is not stated by the original (originals.md §4.4 item 6): this
    choice is an assumption a study marks as such.
    """
    import torch

    if hasattr(model, "features") and callable(model.features):
        body = model.features
    elif isinstance(model, torch.nn.Sequential):
        body = model[:-1]
    else:
        raise RestudyError("cannot find the penultimate layer: give the model a features() method",
                           where="cka_examples", got=type(model).__name__)
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            out.append(body(xb.contiguous(memory_format=memory_format) if xb.dim() == 4 else xb).flatten(1).float())
    model.train(was_training)
    return torch.cat(out).cpu()


@dataclass(frozen=True)
class _TTA:
    """The run's test-time augmentation: strategy names, crop pad and per-channel pad value."""

    strategies: tuple[str, ...] = ()
    pad: int = 4
    pad_value: tuple[float, ...] = ()


def _tta_setup(s: dict[str, Any], data: "Dataset") -> _TTA:
    """Validate the ``tta`` settings against the data before any training (fail fast).

    The pad value is the normalised raw 0 per channel, from ``data.normalization``
    (originals.md §4.6; see :func:`restudy.tta.pad_value_from_normalization`).

    Raises:
        RestudyError: a strategy needs a stride that ``tta.pad`` does not allow, or the inputs are
            flattened images (views of a flattened image are not defined).
    """
    from .tta import parse_strategy, pad_value_from_normalization

    names = tuple(s.get("tta", ()))
    if not names:
        return _TTA()
    if s.get("data.flatten"):
        raise RestudyError("test-time augmentation needs unflattened inputs", where="tta",
                           got={"data.flatten": True, "tta": list(names)})
    pad = int(s.get("tta.pad", 4))
    for name in names:
        parse_strategy(name).offsets(pad)
    shape = tuple(data.input_shape)
    channels = shape[0] if len(shape) >= 2 else 1
    return _TTA(strategies=names, pad=pad,
                pad_value=tuple(pad_value_from_normalization(data.normalization, channels)))


def _perturb(model: "torch.nn.Module", spec: RunSpec) -> dict[str, Any] | None:
    """Apply the ``perturb`` setting to the fresh model; what changed, or None (originals.md §4.3)."""
    s = spec.settings
    if s.get("perturb", "none") == "none":
        return None
    from .perturb import one_ulp_change
    from .seeding import generator

    # A CPU generator: the drawn index and direction do not depend on the device.
    return one_ulp_change(model, generator(spec.seeds["perturb"], "cpu"), s.get("perturb.param", "first"))


def _extras(result: "TrainResult", model: "torch.nn.Module", x_te: "torch.Tensor", y_te: "torch.Tensor",
            tta: _TTA, snap_epochs: list[int], s: dict[str, Any], memory_format: "torch.memory_format"
            ) -> tuple[dict[str, "torch.Tensor"], dict[str, float | None], list[str]]:
    """TTA and snapshot-ensemble tensors, their metrics and a description of what was stored."""
    from .evaluate import mean_logits, metrics_from_logits

    names = [f"test_acc_tta_{n}" for n in tta.strategies]
    if snap_epochs:
        names += ["test_acc_ensemble", *(f"test_acc_ensemble_tta_{n}" for n in tta.strategies)]
    metrics: dict[str, float | None] = dict.fromkeys(names)
    if result.status != "finished":
        return {}, metrics, []
    run_tta = functools.partial(_tta_all, x=x_te, tta=tta, batch_size=s["eval_batch_size"],
                                memory_format=memory_format)
    tensors: dict[str, "torch.Tensor"] = {f"tta_{n}": t for n, t in run_tta(model).items()}
    what = [f"TTA logits {', '.join(tensors)}"] if tensors else []
    if snap_epochs:
        # Copies: the last snapshot is the final logits' tensor, and safetensors refuses shared memory.
        tensors.update({f"snapshot_{i}": t.clone() for i, t in enumerate(result.snapshots)})
        tensors["ensemble"] = mean_logits(result.snapshots)
        what.append(f"snapshot logits snapshot_0..{len(result.snapshots) - 1} (epochs "
                    f"{', '.join(map(str, result.snapshot_epochs))}), their mean 'ensemble'")
        if tta.strategies:
            final = {n: tensors[f"tta_{n}"] for n in tta.strategies}
            per_snapshot = _snapshot_tta(result, model, run_tta, final)
            for n in tta.strategies:
                tensors[f"ensemble_tta_{n}"] = mean_logits([d[n] for d in per_snapshot])
            what.append("ensemble_tta_<strategy>: mean over snapshots of each snapshot's TTA logits")
    for key, t in tensors.items():
        if key.startswith(("tta_", "ensemble")):
            metrics[f"test_acc_{key}"] = metrics_from_logits(t, y_te, "test").acc
    return tensors, metrics, what


def _tta_all(model: "torch.nn.Module", *, x: "torch.Tensor", tta: _TTA, batch_size: int,
             memory_format: "torch.memory_format") -> dict[str, "torch.Tensor"]:
    """TTA test logits of ``model`` for every strategy of the run."""
    from .tta import tta_logits

    return {n: tta_logits(model, x, n, pad_value=tta.pad_value, batch_size=batch_size,
                          memory_format=memory_format, pad=tta.pad) for n in tta.strategies}


def _snapshot_tta(result: "TrainResult", model: "torch.nn.Module",
                  run_tta: Callable[["torch.nn.Module"], dict[str, "torch.Tensor"]],
                  final: dict[str, "torch.Tensor"]) -> list[dict[str, "torch.Tensor"]]:
    """Each snapshot model's TTA logits (originals.md §4.5 + §4.6).

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
