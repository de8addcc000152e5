"""Batched prediction with numpy: one loop behind evaluation, export parity, ``skeleton predict``,
the benchmarks and the server, and the softmax they share. Imports numpy alone, so an ONNX
prediction loads no torch.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Runs(Protocol):
    """Anything with a runtime's verb: ``run(encoded)`` -> (batch, labels) logits."""

    def run(self, encoded: dict[str, np.ndarray]) -> np.ndarray: ...


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (rows, labels) logits."""
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def label_scores(logits: np.ndarray, label_names: list[str] | tuple[str, ...]) -> list[tuple[str, float]]:
    """(label name, probability) of the most likely label of each row of (rows, labels) logits."""
    return [(label_names[int(p.argmax())], float(p.max())) for p in softmax(np.asarray(logits, dtype=np.float64))]


def gather_logits(chunks, run, rows: int, num_labels: int) -> np.ndarray:
    """The one batched-prediction loop: ``run(inputs)`` for each ``(row indices, inputs)`` of
    ``chunks``, its (batch, labels) logits written to those rows of a (rows, labels) array."""
    out = np.zeros((rows, num_labels), dtype=np.float32)
    for indices, inputs in chunks:
        out[indices] = run(inputs)
    return out


def batched_logits(runtime: Runs, encode, texts: list, num_labels: int, batch_size: int = 32) -> np.ndarray:
    """Logits of every text, (texts, labels), in the input order.

    Texts are sorted by length and cut into batches, so each batch pads to a similar length (the
    main waste on a CPU), and the rows are put back in order.

    Args:
        runtime: what turns one encoded batch into logits.
        encode: texts -> encoded batch (tokenizer with template, padding, truncation).
        texts: strings, or (text1, text2) pairs for pair tasks.
    """
    order = sorted(
        range(len(texts)),
        key=lambda i: len(texts[i]) if isinstance(texts[i], str) else sum(map(len, texts[i])),
    )
    chunks = (
        (chunk, encode([texts[i] for i in chunk]))
        for chunk in (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    )
    return gather_logits(chunks, runtime.run, len(texts), num_labels)
