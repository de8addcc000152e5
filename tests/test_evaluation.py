import torch

from skeleton.core.evaluation import bias_adjusted_accuracy


def test_bias_adjusted_accuracy_undoes_a_shift_of_the_logits_by_hand():
    # the margin separates the labels perfectly at 1.0, but a frozen head's bias puts the cut at 0
    margin = torch.tensor([0.2, 0.6, 0.9, 1.2, 1.5, 2.0])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    logits = torch.stack([torch.zeros(6), margin], 1)  # (rows, labels)
    plain = 100.0 * float((logits.argmax(-1) == labels).float().mean())
    assert plain == 50.0
    assert bias_adjusted_accuracy(logits, labels) == 100.0
    # and what no offset can fix stays wrong: the same margins with labels interleaved
    mixed = torch.tensor([0, 1, 0, 1, 0, 1])
    assert bias_adjusted_accuracy(logits, mixed) < 100.0
