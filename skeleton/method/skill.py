"""Skill-neuron predictivity (Wang et al. 2022, as restated in section 2.2 of the skill-neurons paper).

For an FFN neuron N and a soft-prompt position p, the baseline activation is N's mean activation at
p over the training inputs. On validation, the neuron "predicts" the label when its activation at p
is above that baseline; its accuracy is how often that prediction matches the label, and its
predictivity max(accuracy, 1 - accuracy), so inhibitory neurons (active when the label is 0) count as
much as excitatory ones. A neuron's predictivity is the maximum over prompt positions, averaged
over prompts tuned with different seeds. Multi-class tasks are scored one class against the rest,
and the predictivities averaged over classes.

:class:`Predictivity` accumulates the statistics in two streaming passes (training activations for
the baselines, then validation activations and labels), so no activation table is kept in memory.
"""

from __future__ import annotations

import torch


class Predictivity:
    """Streaming predictivity of neurons at several positions.

    Args:
        num_labels: the task's number of classes (2 for binary).

    Feed :meth:`add_baseline` with every training batch first, then :meth:`add_validation`; read
    :meth:`per_position` or :meth:`scores`. Activations are (instances, positions, neurons).
    """

    def __init__(self, num_labels: int):
        if num_labels < 2:
            raise ValueError(f"num_labels must be at least 2, got {num_labels}")
        self.num_labels = num_labels
        self._sum: torch.Tensor | None = None  # (positions, neurons)
        self._count = 0
        self._agree: torch.Tensor | None = None  # (classes, positions, neurons)
        self._evaluated = 0

    def add_baseline(self, activations: torch.Tensor) -> None:
        if self._agree is not None:
            raise RuntimeError("baselines are fixed once validation counting has started")
        total = activations.double().sum(0)  # (positions, neurons)
        self._sum = total if self._sum is None else self._sum + total
        self._count += activations.shape[0]

    @property
    def baseline(self) -> torch.Tensor:
        """(positions, neurons) mean training activation."""
        if self._sum is None:
            raise RuntimeError("no training activations were added")
        return self._sum / self._count

    def add_validation(self, activations: torch.Tensor, labels: torch.Tensor) -> None:
        above = activations.double() > self.baseline  # (instances, positions, neurons)
        classes = range(self.num_labels) if self.num_labels > 2 else (1,)
        agree = torch.stack([(above == (labels == c).view(-1, 1, 1)).sum(0) for c in classes])  # (classes, pos, n)
        self._agree = agree if self._agree is None else self._agree + agree
        self._evaluated += activations.shape[0]

    def per_position(self) -> torch.Tensor:
        """(positions, neurons) predictivity, averaged over classes one against the rest."""
        if self._agree is None:
            raise RuntimeError("no validation activations were added")
        accuracy = self._agree.double() / self._evaluated
        return torch.maximum(accuracy, 1 - accuracy).mean(0)

    def scores(self) -> torch.Tensor:
        """(neurons,) predictivity: the maximum over positions."""
        return self.per_position().max(0).values.float()


def predictivity(train: torch.Tensor, validation: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """(neurons,) predictivity from whole activation tables, (instances, positions, neurons) each."""
    accumulator = Predictivity(num_labels)
    accumulator.add_baseline(train)
    accumulator.add_validation(validation, labels)
    return accumulator.scores()


def across_prompts(scores: list[torch.Tensor]) -> torch.Tensor:
    """The paper's final predictivity: the mean over prompts tuned with different seeds."""
    if not scores:
        raise ValueError("no prompts' predictivities to average")
    return torch.stack(scores).mean(0)


__all__ = ["Predictivity", "across_prompts", "predictivity"]
