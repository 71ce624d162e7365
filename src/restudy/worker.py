"""Execute one run inside a worker process: seed, build, train, evaluate, write artifacts.

``execute(spec_dict, run_dir, threads)`` never raises for a problem of the run itself: a crash
becomes a record with status ``failed`` and the error, a non-finite loss one with status
``diverged``. It writes ``run.json`` (atomically) and the final per-example test logits
(safetensors) into ``run_dir`` and returns the record as a dict.
"""

from __future__ import annotations

import functools
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import registry
from .plan import RunSpec
from .record import RunRecord
from .safeio import save_tensors, write_json

LOGITS_FILE = "test_logits.safetensors"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _args(settings: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) + 1:]: v for k, v in settings.items() if k.startswith(prefix + ".")}


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
    write_json(out / "run.json", d)
    return d


def _run(spec: RunSpec, record: RunRecord, out: Path, threads: int) -> None:
    import torch

    from . import env as env_mod
    from .batches import make_augment
    from .seeding import apply_determinism, generator, scoped_seed
    from .train import train

    s = spec.settings
    flags = apply_determinism(spec.kernels, threads)
    record.env = env_mod.capture(threads=threads, determinism=flags, memory_format=s["memory_format"],
                                 with_packages=False)
    registry.load_builtins()
    if spec.study_module:
        registry.import_study_module(spec.study_module)
    device = _device(s["device"])

    t0 = time.perf_counter()
    data = _dataset(s["data"], tuple(sorted((k, _freeze(v)) for k, v in _args(s, "data").items())))
    x_tr, y_tr = data.x_train.to(device), data.y_train.to(device)
    x_te, y_te = data.x_test.to(device), data.y_test.to(device)
    record.timings["load_s"] = time.perf_counter() - t0

    with scoped_seed(spec.seeds["init"]):
        model = registry.create("model", s["model"], input_shape=tuple(data.input_shape),
                                num_classes=data.num_classes, **_args(s, "model"))
    memory_format = torch.channels_last if s["memory_format"] == "channels_last" else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format) if x_tr.dim() == 4 else model.to(device)

    opt_args = _args(s, "optimizer")
    optimizer = registry.create("optimizer", s["optimizer"], params=model.parameters(), **opt_args)
    steps_per_epoch = -(-x_tr.shape[0] // s["batch_size"])
    schedule = registry.create("schedule", s["schedule"], lr=s["optimizer.lr"], epochs=s["epochs"],
                               steps_per_epoch=steps_per_epoch, **_args(s, "schedule"))
    hook = registry.create("method", s["method"], model=model, optimizer=optimizer, **_args(s, "method"))
    gen_device = "cuda" if device == "cuda" else "cpu"
    order = generator(spec.seeds["order"], gen_device)
    augment = make_augment(s["augment"], generator(spec.seeds["augment"], gen_device), s.get("augment.pad", 0))
    torch.manual_seed(spec.seeds["dropout"])  # the only global draws left in training are dropout's

    result = train(model, x_tr, y_tr, x_te, y_te, optimizer=optimizer, schedule=schedule,
                   epochs=s["epochs"], batch_size=s["batch_size"], order=order,
                   hooks=[hook] if hook is not None else [], augment=augment,
                   eval_batch_size=s["eval_batch_size"], label_smoothing=s["label_smoothing"],
                   memory_format=memory_format)
    record.status = result.status
    record.reason = result.reason
    record.curves = result.curves
    record.timings.update(train_s=result.train_wall_s, eval_s=result.eval_wall_s)
    last = result.curves[-1] if result.curves else {}
    record.metrics = {
        "test_acc": last.get("test_acc"), "train_acc": last.get("train_acc"),
        "test_loss": last.get("test_loss"), "train_loss": last.get("train_loss"),
        "diverged": 1.0 if result.status == "diverged" else 0.0,
        "epochs_done": result.epochs_done, "n_test": int(y_te.shape[0]), "n_train": int(y_tr.shape[0]),
    }
    if result.test_logits is not None:
        sha = save_tensors(out / LOGITS_FILE, {"logits": result.test_logits, "labels": y_te,
                                               "index": data.idx_test})
        record.artifacts[LOGITS_FILE] = {"sha256": sha, "what": "final-epoch test logits, labels, example index"}
    record.env["dataset"] = data.description
