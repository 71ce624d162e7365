"""Per-example predictions and metrics on one split at a time (train and test are never mixed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size]
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
    probabilities (originals.md §4.4–§4.5)."""
    if not logits:
        raise ValueError("mean_logits needs at least one logits tensor")
    return torch.stack([t.float() for t in logits]).mean(0)
