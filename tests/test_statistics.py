import numpy as np
import pytest

from skeleton.core.statistics import paired_bootstrap


def test_identical_models_differ_by_exactly_zero():
    correct = np.arange(50) % 3 == 0
    ci = paired_bootstrap(correct, correct)
    assert ci == {"difference": 0.0, "low": 0.0, "high": 0.0, "level": 0.95}


def test_a_model_right_on_ten_more_of_a_hundred():
    better = np.ones(100, dtype=bool)
    worse = better.copy()
    worse[:10] = False
    ci = paired_bootstrap(better, worse, level=0.95, seed=1)
    assert ci["difference"] == pytest.approx(10.0)
    # the per-sentence difference is 1 on 10 sentences: its resampled mean is Binomial(100, 0.1) / 100,
    # whose 2.5% and 97.5% points are about 5 and 16
    assert 3.0 <= ci["low"] <= 6.0 and 14.0 <= ci["high"] <= 17.0
    flipped = paired_bootstrap(worse, better, level=0.95, seed=1)
    assert flipped["difference"] == pytest.approx(-10.0) and flipped["high"] == pytest.approx(-ci["low"])


def test_a_higher_level_widens_the_interval():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.78
    narrow, wide = paired_bootstrap(a, b, level=0.5), paired_bootstrap(a, b, level=0.99)
    assert wide["low"] < narrow["low"] <= narrow["high"] < wide["high"]


def test_bad_input():
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap(np.ones(3, bool), np.ones(3, bool), level=1.0)


def test_f1_by_hand_and_its_paired_interval():
    from skeleton.core.statistics import f1_points, paired_bootstrap_f1

    labels = np.array([0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 1, 1, 1, 2, 0])
    # class 0: TP 1, predicted 2, actual 2 -> 0.5; class 1: TP 2, predicted 3, actual 2 -> 0.8; class 2: 1, 1, 2 -> 2/3
    assert f1_points(predictions, labels, "macro_f1", 3) == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)
    assert f1_points(predictions, labels, "f1", 3) == pytest.approx(80.0)
    same = paired_bootstrap_f1(predictions, predictions, labels, "macro_f1", 3)
    assert same["difference"] == same["low"] == same["high"] == 0.0
    perfect = paired_bootstrap_f1(labels, predictions, labels, "macro_f1", 3, seed=2)
    assert perfect["difference"] == pytest.approx(100 - 100 * (0.5 + 0.8 + 2 / 3) / 3)
    assert 0.0 <= perfect["low"] <= perfect["difference"] <= perfect["high"]
