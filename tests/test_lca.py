"""Linguistic Correlation Analysis: the weight-mass ranking worked by hand, and planted features
recovered by the probe."""

import numpy as np

from skeleton.method.lca import grid_search, lca_scores, weight_mass_ranking


def test_weight_mass_ranking_by_hand():
    # class 0 puts its mass on neuron 2 (60%) then 0 (30%); class 1 on neuron 1 (90%); neuron 3 has none
    weights = np.array([[3.0, 0.0, -6.0, 0.0, 1.0], [0.0, 9.0, 0.0, 0.0, -1.0]])
    # at 10%: class 0 needs neuron 2, class 1 neuron 1; at 61%: class 0 adds 0; at 91%: class 1 adds 4
    assert weight_mass_ranking(weights, step=1.0) == [2, 1, 0, 4, 3]


def _planted(count: int, seed: int):
    """Twenty noise neurons; the label is the sign of neuron 3 plus neuron 7."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 20))
    y = (x[:, 3] + x[:, 7] > 0).astype(int)
    return x, y


def test_a_probe_on_planted_features_recovers_them():
    train, validation = _planted(400, 0), _planted(200, 1)
    scores, best = lca_scores(train, validation, grid=(1e-3, 1e-2))
    assert set(np.argsort(-scores)[:2]) == {3, 7}
    assert best.top_accuracy > best.bottom_accuracy and best.accuracy > 0.9


def test_the_grid_scores_every_pair():
    calls = []
    best, rows = grid_search(
        _planted(300, 2), _planted(150, 3), grid=(1e-3, 1e-1), share=0.1, advance=lambda: calls.append(1)
    )
    assert len(calls) == 5  # the unregularised probe, then each of the four pairs
    assert len(rows) == 4 and best.score == max(r.score for r in rows)
    for r in rows:
        expected = 0.5 * (r.top_accuracy - r.bottom_accuracy) - 0.5 * (r.unregularised_accuracy - r.accuracy)
        assert r.score == expected
    # on planted features the top tenth (neurons 3 and 7) predicts far better than the bottom tenth
    assert best.top_accuracy > 0.85 and best.bottom_accuracy < 0.7
