"""Fair latency measurement: calls of the things compared alternate in one process.

Timing A for a while and then B for a while lets a change of machine load (another process, the CPU
clock, a cache filled by A) land on one side only. Here every repeat gives each contender one turn
(one call, or ``calls_per_turn`` in a row with the last timed), in an order rotated each repeat, after
warm-up calls of each, so both sides see the same conditions; the median and the 10th/90th
percentiles of each side's timed calls are reported.

One call per turn times each contender just after the others ran: with many contenders (bench times up
to sixteen graphs of tens of megabytes each) its weights are out of the CPU's caches every time, as they
never are for a model served alone, whose calls follow each other. ``calls_per_turn`` above 1 runs each
contender that many times in its turn and times only the last call: still alternated, so drift lands on
every side alike, but each timed call finds its own model in the caches, as in deployment.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Timing:
    """Latency of one contender, in milliseconds, over ``repeats`` alternated calls."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_samples(cls, seconds: list[float]) -> Timing:
        ms = sorted(1000.0 * s for s in seconds)
        return cls(statistics.median(ms), _percentile(ms, 10), _percentile(ms, 90), len(ms))


def _percentile(sorted_values: list[float], percent: float) -> float:
    """Linear-interpolated percentile of already sorted values."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = (len(sorted_values) - 1) * percent / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def time_alternating(
    calls: dict[str, Callable[[], object]],
    repeats: int = 10,
    warmup: int = 2,
    max_seconds: float | None = None,
    min_repeats: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    calls_per_turn: int = 1,
) -> dict[str, Timing]:
    """Time each callable, one turn of each per repeat, in a rotating order.

    Args:
        calls: name -> a callable doing one unit of work (one batch through one runtime).
        repeats: alternated rounds (each round calls every contender once).
        warmup: untimed calls of each contender first (caches, lazy initialisation, thread pools).
        max_seconds: stop after the round in which this much time was spent timing, once
            ``min_repeats`` rounds are done (large shapes on slow runtimes).
        min_repeats: rounds always run, whatever ``max_seconds`` says.
        clock: seconds now (a test passes a clock it moves itself).
        calls_per_turn: calls of a contender in a row per round, the last one timed (1: one call, each
            timed just after the other contenders ran; more: timed with its own model back in the caches).

    Returns:
        name -> :class:`Timing`.
    """
    if not calls:
        return {}
    if calls_per_turn < 1:
        raise ValueError(f"calls_per_turn must be at least 1, got {calls_per_turn}")
    names = list(calls)
    for name in names:
        for _ in range(warmup):
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    started = clock()
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(calls_per_turn - 1):
                calls[name]()
            begin = clock()
            calls[name]()
            samples[name].append(clock() - begin)
        spent = clock() - started
        if max_seconds is not None and round_index + 1 >= min_repeats and spent >= max_seconds:
            break
    return {name: Timing.from_samples(values) for name, values in samples.items()}
