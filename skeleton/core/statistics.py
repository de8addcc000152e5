"""Paired bootstrap confidence intervals for accuracy differences on the same sentences.

With 2,000 validation sentences one accuracy point is 20 sentences, within sampling noise, so every
difference the reports state (a search trial against the prompt-tuned model, Skeleton against
prompt-tuned, int8 against fp32) carries an interval: resample the sentences with replacement, the
same resample for both models (they are paired: the same sentence is easy or hard for both), and
take percentiles of the resampled differences.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RESAMPLES = 2000


def paired_bootstrap(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Confidence interval of accuracy(a) - accuracy(b), in points.

    Args:
        correct_a, correct_b: (sentences,) booleans, whether each model got each sentence right.
        level: two-sided confidence level, e.g. 0.95.
        resamples: bootstrap resamples.
        seed: seeds the resampling (reports are reproducible).

    Returns:
        ``difference`` (the observed one), ``low`` and ``high`` (the interval), ``level``.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two equal-length, non-empty vectors, got shapes {a.shape} and {b.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    delta = a - b  # (sentences,)
    for start in range(0, resamples, 200):  # chunks keep the index matrix small on large test sets
        count = min(200, resamples - start)
        indices = rng.integers(0, len(delta), size=(count, len(delta)))  # (count, sentences)
        differences[start : start + count] = delta[indices].mean(1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return {
        "difference": 100.0 * float(delta.mean()),
        "low": 100.0 * float(low),
        "high": 100.0 * float(high),
        "level": level,
    }


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_labels: int) -> np.ndarray:
    """(true, predicted) counts of integer ``labels`` and ``predictions``."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    counts = np.bincount(labels * num_labels + predictions, minlength=num_labels * num_labels)
    return counts.reshape(num_labels, num_labels)  # (true, predicted)


def class_f1(confusion: np.ndarray) -> np.ndarray:
    """Each class's F1 (0 to 1) from a (true, predicted) confusion matrix; 0 for a class never predicted
    nor present."""
    true_positive = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(0) + confusion.sum(1)  # predicted + actual: F1 = 2 TP / (predicted + actual)
    return np.divide(2 * true_positive, denominator, out=np.zeros(len(confusion)), where=denominator > 0)


def f1_points(predictions: np.ndarray, labels: np.ndarray, metric: str, num_labels: int) -> float:
    """``f1`` (of label 1) or ``macro_f1`` (the mean over the classes), in points, from a confusion matrix."""
    f1 = class_f1(confusion_matrix(predictions, labels, num_labels))
    return 100.0 * float(f1[1] if metric == "f1" else f1.mean())


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    rows: int,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile interval of one model's ``statistic`` (a function of row indices, e.g. the accuracy of
    those rows): the rows resampled with replacement ``resamples`` times.

    Returns:
        ``value`` (the statistic over every row), ``low`` and ``high`` (the interval), ``level``.
    """
    if rows < 1:
        raise ValueError("need at least one row")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, rows, size=rows)) for _ in range(resamples)])
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return {"value": float(statistic(np.arange(rows))), "low": float(low), "high": float(high), "level": level}


def paired_bootstrap_f1(
    predictions_a: np.ndarray,
    predictions_b: np.ndarray,
    labels: np.ndarray,
    metric: str,
    num_labels: int,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, float]:
    """Confidence interval of f1(a) - f1(b) (``metric``: ``f1`` or ``macro_f1``), in points: the rows
    resampled as in :func:`paired_bootstrap`, the same resample for both models."""
    a, b, y = (np.asarray(x, dtype=np.int64) for x in (predictions_a, predictions_b, labels))
    if not (a.shape == b.shape == y.shape) or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need three equal-length, non-empty vectors, got shapes {a.shape}, {b.shape}, {y.shape}")
    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    for index in range(resamples):
        rows = rng.integers(0, len(y), size=len(y))
        differences[index] = f1_points(a[rows], y[rows], metric, num_labels) - f1_points(
            b[rows], y[rows], metric, num_labels
        )
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    observed = f1_points(a, y, metric, num_labels) - f1_points(b, y, metric, num_labels)
    return {"difference": observed, "low": float(low), "high": float(high), "level": level}
