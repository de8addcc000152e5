"""Binary search over the kept fraction of FFN neurons (the paper's localization search).

The grid runs in ``step`` units (0.05: 0.05, 0.10, ... 0.95; keeping everything is the known-good
upper end). A ratio is accepted when its validation accuracy is within ``margin`` points of the
prompt-tuned model's. Accuracy falls as fewer neurons are kept, so binary search finds the
smallest accepted ratio in at most ceil(log2(grid)) = 5 trials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass
class SearchConfig:
    """Settings of the kept-ratio search.

    Attributes:
        margin: accepted accuracy drop on the validation split, in points.
        step: grid step of kept ratios.
        max_trials: most ratios tried.
        min_ratio: the smallest kept ratio on the grid.
    """

    margin: float = 1.0
    step: float = 0.05
    max_trials: int = 5
    min_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"margin must be non-negative, got {self.margin}")
        if not 0 < self.step < 1:
            raise ValueError(f"step must lie in (0, 1), got {self.step}")
        if self.max_trials < 1:
            raise ValueError(f"max_trials must be at least 1, got {self.max_trials}")
        if not 0 < self.min_ratio < 1:
            raise ValueError(f"min_ratio must lie in (0, 1), got {self.min_ratio}")

    def grid(self) -> list[float]:
        """Candidate kept ratios below 1.0, ascending."""
        count = int(math.floor((1.0 - self.min_ratio) / self.step + 1e-9))
        ratios = [round(self.min_ratio + i * self.step, 6) for i in range(count + 1)]
        return [r for r in ratios if r < 1.0 - 1e-9]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Trial:
    kept_ratio: float
    validation_accuracy: float
    accepted: bool
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


@dataclass
class SearchResult:
    """The smallest accepted kept ratio (1.0 if none was) and every trial in the order run."""

    kept_ratio: float
    threshold: float
    trials: list[Trial]

    def to_dict(self) -> dict:
        return {
            "kept_ratio": self.kept_ratio,
            "threshold": self.threshold,
            "trials": [asdict(t) for t in self.trials],
        }


def binary_search(
    evaluate: Callable[[float], tuple[float, float, dict]],
    baseline_accuracy: float,
    config: SearchConfig,
    on_trial: Callable[[Trial], None] | None = None,
    done: list[Trial] | None = None,
) -> SearchResult:
    """Find the smallest kept ratio whose validation accuracy stays within the margin.

    Args:
        evaluate: ratio -> (validation accuracy, seconds, details) of the pruned (and condensed) model.
        baseline_accuracy: the prompt-tuned model's validation accuracy.
        config: margin, grid step and trial budget.
        on_trial: called after each trial (for progress, checkpoints).
        done: trials already run (``--resume``); their ratios are not evaluated again.

    Returns:
        The accepted ratio and the trials.
    """
    threshold = baseline_accuracy - config.margin
    grid = config.grid()
    known = {round(t.kept_ratio, 6): t for t in (done or [])}
    trials: list[Trial] = []
    low, high = 0, len(grid)  # grid[high] stands for 1.0, accepted by definition
    while low < high and len(trials) < config.max_trials:
        middle = (low + high) // 2
        ratio = grid[middle]
        trial = known.get(round(ratio, 6))
        if trial is None:
            accuracy, seconds, details = evaluate(ratio)
            trial = Trial(ratio, accuracy, accuracy >= threshold, seconds, details)
            if on_trial is not None:
                on_trial(trial)
        trials.append(trial)
        if trial.accepted:
            high = middle
        else:
            low = middle + 1
    accepted = [t.kept_ratio for t in trials if t.accepted]
    return SearchResult(min(accepted) if accepted else 1.0, threshold, trials)
