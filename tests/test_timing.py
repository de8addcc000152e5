import pytest

from skeleton.core.timing import Timing, time_alternating


def test_percentiles_of_known_samples():
    timing = Timing.from_samples([0.001 * v for v in (5, 1, 4, 2, 3)])
    assert timing.median_ms == pytest.approx(3.0)
    assert timing.p10_ms == pytest.approx(1.4)  # 1 + 0.4 * (2 - 1)
    assert timing.p90_ms == pytest.approx(4.6)
    assert timing.repeats == 5


def test_calls_alternate_in_a_rotating_order_after_warmup():
    order = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("a", "b", "c")}
    timings = time_alternating(calls, repeats=3, warmup=1)
    assert order[:3] == ["a", "b", "c"]  # warm-up, one each
    assert order[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert {name: t.repeats for name, t in timings.items()} == {"a": 3, "b": 3, "c": 3}


def test_time_budget_stops_after_the_minimum_rounds_and_at_the_budget():
    """A clock the calls move themselves: "slow" takes 10 ms, "fast" none. With no budget the minimum
    rounds run; with 45 ms, the round in which 45 ms were spent is the last (5 rounds of 10 ms)."""
    now = [0.0]

    def slow():
        now[0] += 0.010

    calls = {"slow": slow, "fast": lambda: None}
    timings = time_alternating(calls, repeats=50, warmup=0, max_seconds=0.0, min_repeats=2, clock=lambda: now[0])
    assert timings["slow"].repeats == 2 and timings["fast"].repeats == 2
    assert timings["slow"].median_ms == pytest.approx(10.0) and timings["fast"].median_ms == 0.0
    timings = time_alternating(calls, repeats=50, warmup=0, max_seconds=0.045, min_repeats=2, clock=lambda: now[0])
    assert timings["slow"].repeats == timings["fast"].repeats == 5


def test_calls_per_turn_runs_each_contender_in_a_row_and_times_the_last_call():
    """A clock the calls move themselves: a contender's first call in its turn takes 10 ms (caches refilled),
    the ones after it 1 ms. One call per turn times the cold call; three per turn time the warm one, and each
    contender still gets its turn every round, in a rotated order."""
    now, last, order = [0.0], [None], []

    def call(name):
        def run():
            order.append(name)
            now[0] += 0.001 if last[0] == name else 0.010
            last[0] = name

        return run

    calls = {name: call(name) for name in ("a", "b", "c")}
    cold = time_alternating(calls, repeats=4, warmup=0, clock=lambda: now[0])
    assert all(t.median_ms == pytest.approx(10.0) for t in cold.values())
    order.clear()
    warm = time_alternating(calls, repeats=4, warmup=0, clock=lambda: now[0], calls_per_turn=3)
    assert all(t.median_ms == pytest.approx(1.0) and t.repeats == 4 for t in warm.values())
    assert order[:9] == ["a"] * 3 + ["b"] * 3 + ["c"] * 3 and order[9:18] == ["b"] * 3 + ["c"] * 3 + ["a"] * 3
    with pytest.raises(ValueError, match="calls_per_turn"):
        time_alternating(calls, calls_per_turn=0)
