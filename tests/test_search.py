import numpy as np
import pytest

from skeleton.method.search import SearchConfig, Trial, binary_search


def test_grid_is_in_005_steps():
    grid = SearchConfig().grid()
    assert grid[0] == 0.05 and grid[-1] == 0.95 and len(grid) == 19


@pytest.mark.parametrize("cliff", [0.05, 0.1, 0.25, 0.4, 0.45, 0.5, 0.6, 0.75, 0.95, 1.0])
def test_finds_the_smallest_ratio_within_the_margin(cliff):
    """Synthetic curve: accuracy is 90 at or above `cliff`, 60 below it."""
    calls = []

    def evaluate(ratio):
        calls.append(ratio)
        return (90.0 if ratio >= cliff - 1e-9 else 60.0), 0.0, {}

    result = binary_search(evaluate, teacher_accuracy=90.5, config=SearchConfig(margin=1.0))
    assert result.value == pytest.approx(cliff)
    assert len(calls) <= 5 and len(result.trials) == len(calls)
    assert len(set(calls)) == len(calls)


def test_smooth_curve_respects_the_margin():
    # accuracy falls linearly as neurons go: 80 at ratio 1.0, 70 at ratio 0.0
    result = binary_search(lambda r: (70 + 10 * r, 0.0, {}), 80.0, SearchConfig(margin=2.0))
    # 70 + 10r >= 78 <=> r >= 0.8
    assert result.value == pytest.approx(0.8)
    assert all(t.accepted == (t.validation_accuracy >= 78.0) for t in result.trials)


def test_trial_budget_is_a_hard_limit():
    result = binary_search(lambda r: (0.0, 0.0, {}), 50.0, SearchConfig(max_trials=2))
    assert len(result.trials) == 2 and result.value == 1.0


def test_resume_reuses_finished_trials():
    calls = []

    def evaluate(ratio):
        calls.append(ratio)
        return (90.0 if ratio >= 0.3 else 0.0), 0.0, {}

    done = [Trial(0.5, 90.0, True), Trial(0.25, 0.0, False)]
    result = binary_search(evaluate, 90.0, SearchConfig(), done=done)
    assert 0.5 not in calls and 0.25 not in calls
    assert result.value == pytest.approx(0.3)


def test_config_checks_fields():
    with pytest.raises(ValueError, match="margin"):
        SearchConfig(margin=-1)
    with pytest.raises(ValueError, match="max_trials"):
        SearchConfig(max_trials=0)


def test_confidence_rejects_a_drop_within_the_margin_but_not_surely_so():
    """One sentence of 100 lost is a 1-point drop, inside a 1-point margin, but the interval of a
    drop measured on one sentence reaches about 3 points: with confidence the ratio is rejected."""
    teacher = np.array([True] * 90 + [False] * 10)
    trial = teacher.copy()
    trial[0] = False

    def evaluate(ratio):
        return 100.0 * trial.mean(), 0.0, {"correct": trial.copy()}

    plain = binary_search(evaluate, 90.0, SearchConfig(margin=1.0, max_trials=1), teacher_correct=teacher)
    assert plain.trials[0].accepted
    interval = plain.trials[0].details["drop_interval"]
    assert interval["drop"] == pytest.approx(1.0) and interval["high"] > 1.0
    assert "correct" not in plain.trials[0].details  # turned into the interval, not stored
    sure = binary_search(
        evaluate, 90.0, SearchConfig(margin=1.0, max_trials=1, confidence=0.9), teacher_correct=teacher
    )
    assert not sure.trials[0].accepted and sure.value == 1.0
    with pytest.raises(ValueError, match="confidence"):
        binary_search(evaluate, 90.0, SearchConfig(confidence=0.9))
    with pytest.raises(ValueError, match="confidence must lie"):
        SearchConfig(confidence=1.5)


def test_a_target_speedup_bounds_the_grid_by_its_latency_fraction():
    assert SearchConfig(target_speedup=2.0).grid() == [0.5]  # alone: the target's one trial
    config = SearchConfig(target_speedup=2.0, within_margin=True)
    grid = config.grid()
    assert grid[-1] == 0.5 and all(r < 0.5 for r in grid[:-1]) and grid[0] == 0.05
    with pytest.raises(ValueError, match="target_speedup must exceed 1"):
        SearchConfig(target_speedup=1.0)
    with pytest.raises(ValueError, match="within_margin needs target_speedup"):
        SearchConfig(within_margin=True)


def test_with_a_margin_the_target_search_returns_the_fastest_model_within_it():
    from skeleton.compression import _search
    from skeleton.core.config import CompressConfig

    def evaluate(fraction):  # accuracy falls by 3 points per 0.1 of latency removed below 0.5
        return 90.0 - max(0.0, 0.5 - fraction) * 30, 0.0, {}

    within = CompressConfig(search=SearchConfig(margin=2.0, target_speedup=2.0, within_margin=True))
    result = _search(within, evaluate, 90.0, lambda t: None, [], None)
    assert result.value == pytest.approx(0.45)  # 0.45 loses 1.5 points, 0.40 loses 2.5
    # nothing 4x faster is within half a point: the target model is the answer, marked rejected
    strict = CompressConfig(search=SearchConfig(margin=0.5, target_speedup=4.0, within_margin=True))
    assert _search(strict, evaluate, 90.0, lambda t: None, [], None).value == pytest.approx(0.25)
    alone = CompressConfig(search=SearchConfig(margin=2.0, target_speedup=2.0))
    result = _search(alone, evaluate, 90.0, lambda t: None, [], None)
    assert result.value == 0.5 and len(result.trials) == 1 and result.trials[0].accepted
