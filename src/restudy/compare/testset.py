"""The finite test set's own noise: what more seeds cannot average out.

Every run of a study is evaluated on the same test examples. Seeds average out the noise of
training, not the luck of which examples the test set happens to hold, so a mean test accuracy
(or a difference of two) estimates the population's with a variance that stays whatever the
number of seeds (:func:`restudy.stats.summary.test_set_variance`,
:func:`restudy.stats.summary.difference_test_set_variance`). Claims on a test accuracy add it to
the seeds' variance: two seeds each ahead by one test example do not make a difference, and no
seed count is suggested for a difference the test set cannot resolve. A difference smaller than
one test example (100/n_test pp) never counts as one side beating the other.

Train accuracies and losses get no such term: a claim about them is about the training set itself
(e.g. "every randomization is fit").

Imports stats and the sibling module select (numpy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..stats.summary import difference_test_set_variance, test_set_variance
from .select import Row, metric_value, n_test_of

Correct = Callable[[Row], "np.ndarray | None"]
"""A run's per-example correctness on the test set (bool [n_test]), or None when not stored."""


def is_test_accuracy(metric: str) -> bool:
    """Whether ``metric`` is an accuracy (%) on the test set: ``test_acc``, ``test_acc_best``,
    ``test_acc_tta_<s>``, ``test_acc_ensemble``, ``test_acc_top5``, ..."""
    return metric == "test_acc" or metric.startswith("test_acc_")


def one_example(runs: Sequence[Row]) -> float | None:
    """One test example in percentage points (100/n_test), or None when n_test is unknown."""
    n = n_test_of(runs)
    return 100.0 / n if n else None


def level_variance(runs: Sequence[Row], metric: str) -> float:
    """The test set's variance (pp²) of the runs' mean ``metric``; 0 for other metrics."""
    n = n_test_of(runs)
    if not n or not is_test_accuracy(metric):
        return 0.0
    return test_set_variance([metric_value(r, metric) for r in runs], n)


def difference_variance(pairs: Sequence[tuple[Row, Row]], metric: str, correct: Correct | None = None) -> float:
    """The test set's variance (pp²) of the mean paired difference a − b of ``metric``; 0 for
    metrics that are not test accuracies. With ``correct`` (the runs' stored predictions) and the
    final ``test_acc``, the measured share of examples on which the paired runs disagree in
    correctness bounds it (McNemar); otherwise the independent-errors value does."""
    if not pairs or not is_test_accuracy(metric):
        return 0.0
    runs = [r for pair in pairs for r in pair]
    n = n_test_of(runs)
    if not n:
        return 0.0
    a = [metric_value(x, metric) for x, _ in pairs]
    b = [metric_value(y, metric) for _, y in pairs]
    q = _disagreement(pairs, correct) if correct is not None and metric == "test_acc" else None
    return difference_test_set_variance(a, b, n, q)


def _disagreement(pairs: Sequence[tuple[Row, Row]], correct: Correct) -> float | None:
    """The mean over pairs of the share of test examples exactly one of the two runs gets right;
    None when a pair's predictions are missing or of unequal size."""
    shares = []
    for x, y in pairs:
        cx, cy = correct(x), correct(y)
        if cx is None or cy is None or cx.shape != cy.shape or not cx.size:
            return None
        shares.append(float(np.mean(cx != cy)))
    return float(np.mean(shares)) if shares else None


def below_one_example(difference: float, runs: Sequence[Row], metric: str) -> float | None:
    """One test example (pp) when ``difference`` of a test accuracy is smaller than it, else None."""
    if not is_test_accuracy(metric) or not math.isfinite(difference):
        return None
    one = one_example(runs)
    return one if one is not None and abs(difference) < one else None
