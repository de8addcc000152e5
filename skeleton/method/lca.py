"""Linguistic Correlation Analysis (Durrani et al., NeuroX; sections 2.1 to 2.3 of its paper).

1. A linear probe (logistic regression) with elastic-net regularisation, mean cross-entropy plus
   lambda1 * |w|_1 + lambda2 * |w|_2^2 (NeuroX's loss), is trained on neurons' activations.
2. lambda1 and lambda2 come from a small grid, each pair scored on validation by
   S = alpha (A_top - A_bottom) - beta (A_all - A_lambda): the accuracy of probes retrained on the
   top and on the bottom ``share`` of neurons of the pair's ranking, and how much the pair's own
   accuracy loses against the unregularised probe's (alpha = beta = 0.5).
3. Neurons are ranked by weight mass: for a growing percentage p of each class's total |weight|,
   the top neurons of each class that reach p% of it, in order of discovery.

The probe is scikit-learn's LogisticRegression (saga). Its objective, C * sum of losses +
r |w|_1 + (1 - r) / 2 |w|_2^2, equals NeuroX's times C * n when C = 1 / (n (lambda1 + 2 lambda2))
and r = lambda1 / (lambda1 + 2 lambda2).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

GRID = (1e-5, 1e-4, 1e-3)  # lambda values tried for L1 and for L2 (the paper's small grid)


def train_probe(features: np.ndarray, labels: np.ndarray, l1: float, l2: float, seed: int = 0, max_iter: int = 200):
    """An elastic-net logistic-regression probe; ``l1 = l2 = 0`` is the unregularised probe."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    total = l1 + 2 * l2
    regularised = total > 0
    probe = LogisticRegression(
        solver="saga",
        l1_ratio=l1 / total if regularised else 0.0,
        C=1.0 / (len(labels) * total) if regularised else np.inf,
        max_iter=max_iter,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # saga's tolerance; the grid judges the result
        probe.fit(features, labels)
    return probe


def class_weights(probe) -> np.ndarray:
    """(classes, neurons) weights; a binary probe's one row stands for both classes."""
    return np.asarray(probe.coef_)


def weight_mass_ranking(weights: np.ndarray, step: float = 1.0) -> list[int]:
    """Every neuron, most salient first (Algorithm 3).

    Args:
        weights: (classes, neurons) probe weights.
        step: the percentage of each class's weight mass added per round.
    """
    magnitudes = np.abs(weights)
    orders = [np.argsort(-row, kind="stable") for row in magnitudes]
    cumulative = [np.cumsum(row[order]) for row, order in zip(magnitudes, orders, strict=True)]
    ranking: list[int] = []
    seen: set[int] = set()
    percentage = step
    while percentage <= 100.0 + 1e-9:
        for row, order, mass in zip(magnitudes, orders, cumulative, strict=True):
            total = mass[-1]
            if total <= 0:
                continue
            # the fewest top neurons whose weights reach this share of the class's mass
            count = int(np.searchsorted(mass, percentage / 100.0 * total - 1e-12)) + 1
            for neuron in order[: min(count, len(order))]:
                if row[neuron] > 0 and int(neuron) not in seen:
                    seen.add(int(neuron))
                    ranking.append(int(neuron))
        percentage += step
    # neurons the probe gave no weight come last, in index order
    ranking.extend(i for i in range(weights.shape[1]) if i not in seen)
    return ranking


@dataclass
class GridPoint:
    l1: float
    l2: float
    accuracy: float  # the pair's probe on validation, all neurons
    top_accuracy: float  # retrained on the top share of its ranking
    bottom_accuracy: float  # retrained on the bottom share
    unregularised_accuracy: float  # the probe without regularisation, all neurons
    score: float


def grid_search(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    grid: tuple[float, ...] = GRID,
    share: float = 0.2,
    alpha: float = 0.5,
    beta: float = 0.5,
    seed: int = 0,
    advance=None,
) -> tuple[GridPoint, list[GridPoint]]:
    """(the best lambda pair, every pair's row) by the paper's score on validation (Algorithm 2).

    ``advance``, when given, is called after each pair (and after the unregularised probe).
    """
    (x, y), (xv, yv) = train, validation
    unregularised = train_probe(x, y, 0.0, 0.0, seed).score(xv, yv)
    if advance is not None:
        advance()
    keep = max(1, int(round(share * x.shape[1])))
    rows = []
    for l1 in grid:
        for l2 in grid:
            probe = train_probe(x, y, l1, l2, seed)
            ranking = weight_mass_ranking(class_weights(probe))
            top, bottom = ranking[:keep], ranking[-keep:]
            top_accuracy = train_probe(x[:, top], y, l1, l2, seed).score(xv[:, top], yv)
            bottom_accuracy = train_probe(x[:, bottom], y, l1, l2, seed).score(xv[:, bottom], yv)
            accuracy = probe.score(xv, yv)
            score = alpha * (top_accuracy - bottom_accuracy) - beta * (unregularised - accuracy)
            rows.append(GridPoint(l1, l2, accuracy, top_accuracy, bottom_accuracy, unregularised, score))
            if advance is not None:
                advance()
    return max(rows, key=lambda r: r.score), rows


def lca_scores(
    train, validation, grid: tuple[float, ...] = GRID, seed: int = 0, advance=None
) -> tuple[np.ndarray, GridPoint]:
    """(neurons,) scores from the ranking of the best grid point's probe (first = highest), and that point.

    Activations are standardised with the training split's mean and deviation first, so that a
    weight's size says how much the probe relies on a neuron, whatever the neuron's scale.
    """
    mean, deviation = train[0].mean(0), train[0].std(0) + 1e-6
    train = ((train[0] - mean) / deviation, train[1])
    validation = ((validation[0] - mean) / deviation, validation[1])
    best, _ = grid_search(train, validation, grid, seed=seed, advance=advance)
    ranking = weight_mass_ranking(class_weights(train_probe(*train, best.l1, best.l2, seed)))
    scores = np.empty(len(ranking))
    scores[ranking] = np.arange(len(ranking), 0, -1, dtype=np.float64)
    return scores, best


__all__ = ["GRID", "GridPoint", "class_weights", "grid_search", "lca_scores", "train_probe", "weight_mass_ranking"]
