"""The on-disk layout of a study's output and of each run: the only place that names its files.

::

    <out>/store.db                 SQLite index of the runs (written by the driver)
    <out>/looks.json               the looks at each claim's verdict as seeds were added (the driver)
    <out>/runs/<key>/run.json      the run record (written atomically by the worker)
    <out>/runs/<key>/test_logits.safetensors
                                   per-example test tensors (see TENSOR_* below)
    <out>/runs/<key>/model.safetensors
                                   the final model's state (setting ``save_weights``)
    <out>/runs/<key>/.claim        which driver is running it (several drivers on one folder)

Tensors in ``test_logits.safetensors``: ``logits`` (final-epoch test logits), ``labels``,
``index`` (test example ids), and optionally ``tta_<strategy>``, ``snapshot_<i>``, ``ensemble``,
``ensemble_tta_<strategy>`` and ``features`` (penultimate features for CKA). A model-set *view*
(``test``, ``tta:<s>``, ``ensemble``, ``ensemble+tta:<s>``) names one of them (:func:`view_tensor`).
"""

from __future__ import annotations

from pathlib import Path

RUNS_DIR = "runs"
RUN_FILE = "run.json"
LOGITS_FILE = "test_logits.safetensors"
WEIGHTS_FILE = "model.safetensors"
CLAIM_FILE = ".claim"
STORE_FILE = "store.db"
LOOKS_FILE = "looks.json"  # the looks at each claim's verdict (restudy.compare.looks)

TENSOR_LOGITS = "logits"
TENSOR_LABELS = "labels"
TENSOR_INDEX = "index"
TENSOR_FEATURES = "features"
TENSOR_ENSEMBLE = "ensemble"
VIEWS = ("test", "tta:<strategy>", "ensemble", "ensemble+tta:<strategy>")
VIEW_PATTERN = r"^(test|tta:[a-z0-9_+]+|ensemble|ensemble\+tta:[a-z0-9_+]+)$"


def runs_dir(root: str | Path) -> Path:
    """The folder holding one sub-folder per run."""
    return Path(root) / RUNS_DIR


def run_dir(root: str | Path, key: str) -> Path:
    """The folder of run ``key``."""
    return runs_dir(root) / key


def tta_tensor(strategy: str) -> str:
    """The tensor holding the final model's TTA logits for ``strategy``."""
    return f"tta_{strategy}"


def snapshot_tensor(i: int) -> str:
    """The tensor holding the test logits of snapshot ``i`` (0-based cycle)."""
    return f"snapshot_{i}"


def ensemble_tta_tensor(strategy: str) -> str:
    """The tensor holding the snapshot ensemble's mean TTA logits for ``strategy``."""
    return f"ensemble_tta_{strategy}"


def view_tensor(view: str) -> str:
    """The tensor of ``test_logits.safetensors`` that holds a model-set view.

    ``test`` → ``logits``; ``tta:<s>`` → ``tta_<s>``; ``ensemble`` → ``ensemble``;
    ``ensemble+tta:<s>`` → ``ensemble_tta_<s>``.

    Raises:
        ValueError: for a view outside that grammar.
    """
    if view in ("test", TENSOR_ENSEMBLE, TENSOR_FEATURES):
        return {"test": TENSOR_LOGITS}.get(view, view)
    kind, _, strategy = view.partition(":")
    if not strategy or kind not in ("tta", "ensemble+tta"):
        raise ValueError(f"unknown view {view!r}; allowed: {', '.join(VIEWS)}")
    return tta_tensor(strategy) if kind == "tta" else ensemble_tta_tensor(strategy)


def variant_id(variant: dict[str, str]) -> str:
    """A variant's id: ``"axis=level,axis=level"`` in axis order, ``"-"`` for no axes."""
    return ",".join(f"{k}={v}" for k, v in variant.items()) or "-"
