"""The paper's localization search: a binary search over one search value.

The search value is of one of two kinds: the **kept ratio** (the share of FFN neurons kept, the
paper's search) or, with a latency table, the **latency fraction** (the Skeleton model's predicted
latency over the prompt-tuned model's). Either way a smaller value removes more. The grid runs in
``step`` units (0.05: 0.05, 0.10, ... 0.95; keeping everything, 1.0, is the known-good upper end).
A value is accepted when its validation accuracy is within ``margin`` points of the prompt-tuned
model's (with ``confidence``, when the upper end of the paired bootstrap interval of the drop is).
Accuracy falls as the value falls, so binary search finds the smallest accepted value in at most
ceil(log2(grid)) = 5 trials.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from skeleton.core.config import SearchConfig as SearchConfig
from skeleton.core.statistics import paired_bootstrap

KEPT_RATIO = "kept ratio"
LATENCY_FRACTION = "latency fraction"


@dataclass
class Trial:
    """One search value tried: the validation accuracy it reached and whether it was accepted."""

    value: float
    validation_accuracy: float
    accepted: bool
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    """The smallest accepted search value (1.0 if none was), its kind, and every trial in the order run."""

    value: float
    threshold: float
    trials: list[Trial]
    kind: str = KEPT_RATIO
    fallback_from: float | None = None  # the value chosen first, when its full condensation missed the margin
    # the value chosen first, when the faster trial next to it, rejected by a prediction, stayed within
    # the margin once condensed in full (and shipped)
    verified_from: float | None = None
    # value ("0.25") -> validation accuracy of each full condensation step 4 ran to check the boundary or fall
    # back (the shipped one included): the figures that decided, which the trials alone do not hold
    condensed_in_full: dict[str, float] = field(default_factory=dict)
    # how many times step 4 sent the search on from what full condensations measured (reports before
    # 2026-12-06 fell back to slower accepted trials instead)
    searched_again: int = 0

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "value": self.value,
            "threshold": self.threshold,
            "trials": [asdict(t) for t in self.trials],
            "fallback_from": self.fallback_from,
            "verified_from": self.verified_from,
            "condensed_in_full": self.condensed_in_full,
            "searched_again": self.searched_again,
        }


def binary_search(
    evaluate: Callable[[float], tuple[float, float, dict]],
    teacher_accuracy: float,
    config: SearchConfig,
    on_trial: Callable[[Trial], None] | None = None,
    done: list[Trial] | None = None,
    teacher_correct: Sequence[bool] | None = None,
    kind: str = KEPT_RATIO,
) -> SearchResult:
    """Find the smallest search value whose validation accuracy stays within the margin.

    Args:
        evaluate: search value -> (validation accuracy, seconds, details) of the pruned (and condensed)
            model; ``details["correct"]``, per validation row whether it was right, is turned into a
            paired interval against ``teacher_correct`` and not stored.
        teacher_accuracy: the teacher's validation accuracy.
        config: margin, grid step, trial budget and confidence.
        on_trial: called after each trial (for progress, checkpoints).
        done: trials already run (``--resume``); their values are not evaluated again.
        teacher_correct: per validation row, whether the teacher was right (needed
            with ``config.confidence``).
        kind: what the values are, :data:`KEPT_RATIO` or :data:`LATENCY_FRACTION` (for the record).

    Returns:
        The accepted value and the trials.
    """
    if config.confidence is not None and teacher_correct is None:
        raise ValueError("a search with confidence needs the teacher's per-row correctness")
    threshold = config.threshold(teacher_accuracy)
    grid = config.grid()
    known = {round(t.value, 6): t for t in (done or [])}
    trials: list[Trial] = []
    low, high = 0, len(grid)  # grid[high] stands for 1.0, accepted by definition
    while low < high and len(trials) < config.max_trials:
        middle = (low + high) // 2
        value = grid[middle]
        trial = known.get(round(value, 6))
        if trial is None:
            accuracy, seconds, details = evaluate(value)
            correct = details.pop("correct", None)
            if correct is not None and teacher_correct is not None:
                details["drop_interval"] = drop_interval(correct, teacher_correct, config.confidence or 0.95)
            accepted = accepts(accuracy, details, config, threshold)
            trial = Trial(value, accuracy, accepted, seconds, details)
            if on_trial is not None:
                on_trial(trial)
        trials.append(trial)
        if trial.accepted:
            high = middle
        else:
            low = middle + 1
    accepted = [t.value for t in trials if t.accepted]
    return SearchResult(min(accepted) if accepted else 1.0, threshold, trials, kind)


def accepts(accuracy: float, details: dict, config: SearchConfig, threshold: float) -> bool:
    """Whether a trial is accepted: its validation accuracy at or above the threshold or, with ``confidence``
    and the trial's paired interval of the drop (``details["drop_interval"]``), that interval's upper end
    within the margin."""
    interval = details.get("drop_interval")
    if config.confidence is not None and interval is not None:
        return interval["high"] <= config.margin
    return accuracy >= threshold


def drop_interval(correct: Sequence[bool], teacher_correct: Sequence[bool], level: float) -> dict[str, float]:
    """Paired bootstrap interval of the accuracy drop (teacher minus candidate), in points."""
    ci = paired_bootstrap(np.asarray(teacher_correct), np.asarray(correct), level)
    return {"drop": ci["difference"], "low": ci["low"], "high": ci["high"], "level": level}
