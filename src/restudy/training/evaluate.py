"""Per-example predictions and metrics on one split at a time (train and test are never mixed), and
the built-in per-run metric ``top5`` (top-5 test accuracy, as ImageNet tables report it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..plugins import register


@dataclass(frozen=True)
class SplitEval:
    split: str  # "train" or "test"
    acc: float  # top-1 accuracy, %
    loss: float  # mean cross-entropy (nan when the network outputs non-finite values)
    n: int


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    x: torch.Tensor,
    batch_size: int = 1024,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """Logits for every row of ``x`` (eval mode; the caller's mode is restored)."""
    was_training = model.training
    model.eval()
    out = []
    # a streamed split decodes the next batch while this one runs; a tensor is sliced
    feed = (
        x.eval_batches(batch_size)
        if hasattr(x, "eval_batches")
        else (x[i : i + batch_size] for i in range(0, x.shape[0], batch_size))
    )
    for xb in feed:
        if xb.dim() == 4:
            xb = xb.contiguous(memory_format=memory_format)
        out.append(model(xb).float())
    model.train(was_training)
    return torch.cat(out)


def metrics_from_logits(logits: torch.Tensor, y: torch.Tensor, split: str) -> SplitEval:
    loss = F.cross_entropy(logits, y).item() if torch.isfinite(logits).all() else float("nan")
    acc = (logits.argmax(1) == y).float().mean().item() * 100.0
    return SplitEval(split=split, acc=acc, loss=loss, n=int(y.shape[0]))


def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    split: str,
    batch_size: int = 1024,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[SplitEval, torch.Tensor]:
    logits = predict(model, x, batch_size, memory_format)
    return metrics_from_logits(logits, y, split), logits


def mean_logits(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Element-wise mean of several models' logits: an ensemble by averaging logits, not
    probabilities (as Summers & Dinneen's ``evaluate.py`` ensembles)."""
    if not logits:
        raise ValueError("mean_logits needs at least one logits tensor")
    return torch.stack([t.float() for t in logits]).mean(0)


def top_k_accuracy(logits: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """Share (%) of examples whose label is among the ``k`` largest logits (all of them when there
    are at most ``k`` classes)."""
    k = min(k, logits.shape[1])
    return (logits.topk(k, dim=1).indices == y[:, None]).any(1).float().mean().item() * 100.0


@register("run_metric", "top5")
def top5(
    *,
    model: torch.nn.Module,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    settings: dict,
    test_logits: torch.Tensor | None = None,
    **_: object,
) -> dict[str, float]:
    """``test_acc_top5``: top-5 accuracy (%) of the trained model on the test split (the run's final
    ``test_acc`` is its top-1). Read from the final test logits when given (an ImageNet test pass
    decodes 50,000 images), else from one more inference pass."""
    logits = test_logits
    if logits is None:
        logits = predict(model, x_test, int(settings.get("eval_batch_size", 1024)))
    return {"test_acc_top5": top_k_accuracy(logits, y_test.to(logits.device), 5)}


top5.metrics = ("test_acc_top5",)  # type: ignore[attr-defined]  # the names it adds to a run's metrics
