import pytest

from skeleton.search import SearchConfig, Trial, binary_search


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

    result = binary_search(evaluate, baseline_accuracy=90.5, config=SearchConfig(margin=1.0))
    assert result.kept_ratio == pytest.approx(cliff)
    assert len(calls) <= 5 and len(result.trials) == len(calls)
    assert len(set(calls)) == len(calls)


def test_smooth_curve_respects_the_margin():
    # accuracy falls linearly as neurons go: 80 at ratio 1.0, 70 at ratio 0.0
    result = binary_search(lambda r: (70 + 10 * r, 0.0, {}), 80.0, SearchConfig(margin=2.0))
    # 70 + 10r >= 78 <=> r >= 0.8
    assert result.kept_ratio == pytest.approx(0.8)
    assert all(t.accepted == (t.validation_accuracy >= 78.0) for t in result.trials)


def test_trial_budget_is_a_hard_limit():
    result = binary_search(lambda r: (0.0, 0.0, {}), 50.0, SearchConfig(max_trials=2))
    assert len(result.trials) == 2 and result.kept_ratio == 1.0


def test_resume_reuses_finished_trials():
    calls = []

    def evaluate(ratio):
        calls.append(ratio)
        return (90.0 if ratio >= 0.3 else 0.0), 0.0, {}

    done = [Trial(0.5, 90.0, True), Trial(0.25, 0.0, False)]
    result = binary_search(evaluate, 90.0, SearchConfig(), done=done)
    assert 0.5 not in calls and 0.25 not in calls
    assert result.kept_ratio == pytest.approx(0.3)


def test_config_checks_fields():
    with pytest.raises(ValueError, match="margin"):
        SearchConfig(margin=-1)
    with pytest.raises(ValueError, match="max_trials"):
        SearchConfig(max_trials=0)
