"""Evaluation of a prompted classifier on an encoded split: logits, accuracy and F1."""

from __future__ import annotations

import torch

from skeleton.core.batching import EncodedSplit, iterate_batches
from skeleton.core.logits import gather_logits
from skeleton.core.modeling import PromptedClassifier
from skeleton.core.tasks import MACRO_F1, POSITIVE_F1


def _f1(predictions: torch.Tensor, labels: torch.Tensor, label: int) -> float:
    """F1 of ``label`` (one class against the rest), in percent."""
    true_positive = ((predictions == label) & (labels == label)).sum().item()
    predicted = (predictions == label).sum().item()
    actual = (labels == label).sum().item()
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    return 100.0 * (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def compute_metrics(
    predictions: torch.Tensor, labels: torch.Tensor, metrics: tuple[str, ...] = (), label_names: tuple[str, ...] = ()
) -> dict[str, float]:
    """Accuracy, and the task's ``metrics``: ``f1`` (of label 1) or ``macro_f1`` (the mean over the classes
    of ``label_names``, each class's F1 beside it as ``f1[name]``), all in percent."""
    result = {"accuracy": 100.0 * (predictions == labels).float().mean().item()}
    if POSITIVE_F1 in metrics:
        result[POSITIVE_F1] = _f1(predictions, labels, 1)
    if MACRO_F1 in metrics:
        per_class = {f"f1[{name}]": _f1(predictions, labels, index) for index, name in enumerate(label_names)}
        result[MACRO_F1] = sum(per_class.values()) / max(1, len(per_class))
        result.update(per_class)
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
    metrics: tuple[str, ...] = (),
    label_names: tuple[str, ...] = (),
) -> dict[str, float]:
    """Accuracy and the task's ``metrics`` (:func:`compute_metrics`), in percent."""
    logits = predict_logits(classifier, split, device, batch_size, pad_token_id)
    return compute_metrics(logits.argmax(-1), torch.tensor(split.labels), metrics, label_names)


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
