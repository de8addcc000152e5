"""Skill-neuron predictivity on synthetic activations with known answers."""

import pytest
import torch

from skeleton.method.skill import Predictivity, across_prompts, predictivity


def _activations(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(instances, 2 positions, 4 neurons): 0 copies the label, 1 is its opposite (inhibitory),
    2 is noise, 3 copies the label at the second position only."""
    count = len(labels)
    noise = torch.randn(count, 2, 4, generator=generator) * 0.1
    acts = noise.clone()
    acts[:, :, 0] += labels.view(-1, 1).float()
    acts[:, :, 1] += 1 - labels.view(-1, 1).float()
    acts[:, :, 2] = torch.randn(count, 2, generator=generator)
    acts[:, 1, 3] += labels.float()
    return acts


def test_label_copies_and_inhibitory_neurons_rank_high_noise_last():
    generator = torch.Generator().manual_seed(0)
    train_labels = torch.randint(0, 2, (400,), generator=generator)
    labels = torch.randint(0, 2, (300,), generator=generator)
    scores = predictivity(_activations(train_labels, generator), _activations(labels, generator), labels, 2)
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(1.0)  # max(acc, 1 - acc)
    assert scores[3] == pytest.approx(1.0)  # the maximum over positions finds it
    assert 0.4 < scores[2] < 0.62 and int(scores.argmin()) == 2


def test_worked_by_hand():
    # baseline of the one neuron at the one position: mean(0, 2) = 1; validation activations 0, 3, 3
    # with labels 0, 1, 0: above-baseline predicts 0, 1, 1: two of three right
    train = torch.tensor([[[0.0]], [[2.0]]])
    validation = torch.tensor([[[0.0]], [[3.0]], [[3.0]]])
    labels = torch.tensor([0, 1, 0])
    assert predictivity(train, validation, labels, 2).item() == pytest.approx(2 / 3)
    # streaming in pieces gives the same
    accumulator = Predictivity(2)
    accumulator.add_baseline(train[:1])
    accumulator.add_baseline(train[1:])
    accumulator.add_validation(validation[:2], labels[:2])
    accumulator.add_validation(validation[2:], labels[2:])
    assert accumulator.scores().item() == pytest.approx(2 / 3)
    assert accumulator.baseline.item() == pytest.approx(1.0)


def test_multi_class_is_one_against_the_rest_averaged():
    # three classes; the neuron is above baseline exactly for class 2
    labels = torch.tensor([0, 1, 2, 2, 0, 1])
    acts = (labels == 2).float().view(-1, 1, 1)
    # class 2: always right (1.0); classes 0 and 1: right on 4 of 6 rows -> predictivity 4/6 each
    expected = (1.0 + 4 / 6 + 4 / 6) / 3
    assert predictivity(acts, acts, labels, 3).item() == pytest.approx(expected)


def test_prompts_are_averaged_and_misuse_is_refused():
    assert across_prompts([torch.tensor([1.0, 0.5]), torch.tensor([0.5, 0.5])]).tolist() == [0.75, 0.5]
    with pytest.raises(ValueError):
        across_prompts([])
    accumulator = Predictivity(2)
    with pytest.raises(RuntimeError):
        accumulator.scores()
    accumulator.add_baseline(torch.zeros(1, 1, 1))
    accumulator.add_validation(torch.zeros(1, 1, 1), torch.tensor([0]))
    with pytest.raises(RuntimeError):
        accumulator.add_baseline(torch.zeros(1, 1, 1))
