"""Evaluation of a prompted classifier on an encoded split: logits, accuracy and F1."""

from __future__ import annotations

import torch

from skeleton.core.batching import EncodedSplit, iterate_batches
from skeleton.core.logits import gather_logits
from skeleton.core.modeling import PromptedClassifier


def compute_metrics(predictions: torch.Tensor, labels: torch.Tensor, with_f1: bool) -> dict[str, float]:
    result = {"accuracy": 100.0 * (predictions == labels).float().mean().item()}
    if with_f1:
        true_positive = ((predictions == 1) & (labels == 1)).sum().item()
        predicted = (predictions == 1).sum().item()
        actual = (labels == 1).sum().item()
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / actual if actual else 0.0
        result["f1"] = 100.0 * (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return result


@torch.no_grad()
def predict_logits(
    classifier: PromptedClassifier,
    split: EncodedSplit,
    device: torch.device,
    batch_size: int = 128,
    pad_token_id: int = 0,
) -> torch.Tensor:
    """Logits for every row of ``split``, (rows, labels), in the split's order."""

    was_training = classifier.training
    classifier.eval()
    chunks = ((b.indices, b.to(device)) for b in iterate_batches(split, batch_size, pad_token_id, shuffle=False))
    logits = gather_logits(
        chunks,
        lambda batch: classifier(**batch.inputs()).float().cpu().numpy(),
        len(split),
        classifier.head_config.num_labels,
    )
    classifier.train(was_training)
    return torch.from_numpy(logits)


def evaluate(
    classifier: PromptedClassifier,
    split: EncodedSplit,
    device: torch.device,
    batch_size: int = 128,
    pad_token_id: int = 0,
    with_f1: bool = False,
) -> dict[str, float]:
    """Accuracy (and F1 of label 1 when ``with_f1``), in percent."""
    logits = predict_logits(classifier, split, device, batch_size, pad_token_id)
    return compute_metrics(logits.argmax(-1), torch.tensor(split.labels), with_f1)


def bias_adjusted_accuracy(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """Accuracy in points after fitting one offset per label to ``logits`` (cross-entropy, L-BFGS).

    Removing units shifts a frozen head's logits as a whole; condensation re-tunes the head and
    undoes such a shift at once, so comparing pruned models before condensation by their plain
    accuracy mostly measures the shift. With the offsets fitted, what is left is what the units
    carried.
    """
    logits = logits.detach().float()
    offsets = torch.zeros(logits.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([offsets], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits + offsets, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return 100.0 * float(((logits + offsets).argmax(-1) == labels).float().mean())
