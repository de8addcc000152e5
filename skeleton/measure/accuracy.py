"""``skeleton evaluate``: an exported model's accuracy on a labelled file, on any runtime it ships.

The file is read as ``skeleton compress`` reads its data (a built-in task's GLUE-style TSV by its
header, or a user's CSV, TSV, JSON Lines or Parquet by its named columns), its labels matched to the
model's label names, and every row classified through :class:`~skeleton.deploy.predictor.Predictor`
(the tokenizer and graph that serve). Accuracy and macro-F1 carry percentile bootstrap intervals over
the rows; each class's precision, recall and F1 and the confusion matrix come beside them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from skeleton.core.config import EvaluateConfig
from skeleton.core.errors import SkeletonError
from skeleton.core.statistics import bootstrap_interval, class_f1, confusion_matrix, f1_points
from skeleton.core.tasks import MACRO_F1, POSITIVE_F1, saved_task
from skeleton.deploy.inputs import STDIN, labelled_inputs, with_columns
from skeleton.deploy.predictor import Predictor


@dataclass
class Evaluation:
    """One model's figures on one labelled file.

    Attributes:
        model: the model directory.
        runtime: the runtime that ran it.
        data: the labelled file.
        rows: how many rows were classified.
        label_names: the model's labels, in the order of ``confusion``'s rows and columns.
        metrics: ``accuracy``, ``macro_f1`` (and the task's ``f1`` of label 1 where it reports it), each
            ``{"value", "low", "high", "level"}`` in points.
        per_class: each label's ``precision``, ``recall``, ``f1`` (points) and ``support`` (rows).
        confusion: (true, predicted) row counts.
        seconds: the time to classify every row, tokenizer included.
    """

    model: str
    runtime: str
    data: str
    rows: int
    label_names: list[str]
    metrics: dict[str, dict[str, float]]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def per_class_figures(confusion: np.ndarray, label_names: list[str]) -> dict[str, dict[str, float]]:
    """Each label's precision, recall and F1 in points and its support, from a (true, predicted) matrix."""
    true_positive = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(0), confusion.sum(1)
    precision = np.divide(true_positive, predicted, out=np.zeros(len(confusion)), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(len(confusion)), where=actual > 0)
    f1 = class_f1(confusion)
    return {
        name: {
            "precision": 100.0 * float(precision[i]),
            "recall": 100.0 * float(recall[i]),
            "f1": 100.0 * float(f1[i]),
            "support": int(actual[i]),
        }
        for i, name in enumerate(label_names)
    }


def score_predictions(
    predictions: np.ndarray, labels: np.ndarray, label_names: list[str], task_metrics=(), level: float = 0.95
) -> tuple[dict, dict, np.ndarray]:
    """(metrics with intervals, per-class figures, confusion matrix) of integer ``predictions`` against
    ``labels`` (indices of ``label_names``)."""
    predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    count = len(label_names)
    correct = (predictions == labels).astype(np.float64)
    statistics = {
        "accuracy": lambda rows: 100.0 * float(correct[rows].mean()),
        MACRO_F1: lambda rows: f1_points(predictions[rows], labels[rows], MACRO_F1, count),
    }
    if POSITIVE_F1 in task_metrics and count == 2:
        statistics[POSITIVE_F1] = lambda rows: f1_points(predictions[rows], labels[rows], POSITIVE_F1, count)
    metrics = {name: bootstrap_interval(fn, len(labels), level) for name, fn in statistics.items()}
    confusion = confusion_matrix(predictions, labels, count)
    return metrics, per_class_figures(confusion, label_names), confusion


def evaluate_file(directory: str | Path, config: EvaluateConfig, stdin: TextIO | None = None) -> Evaluation:
    """Classify every row of ``config.data_file`` with the model in ``directory`` and score it.

    Args:
        directory: a compressed model directory (with ``onnx/``) or its ``onnx/`` directory.
        config: the file, its columns, and the runtime (``config.run``).
        stdin: read for ``data_file`` ``-`` (default: the process's standard input).
    """
    run = config.run
    if config.data_file != STDIN and not Path(config.data_file).expanduser().is_file():
        raise SkeletonError(f"data file not found: {config.data_file}")  # before the model loads
    predictor = Predictor(directory, device=run.device, runtime=run.runtime, threads=run.threads)
    spec = saved_task(predictor.manifest.task, predictor.manifest.task_spec)
    spec = with_columns(spec, config.text_columns, config.pair_column, config.label_column)
    inputs, labels = labelled_inputs(config.data_file, spec, config.data_format, stdin)
    started = time.perf_counter()
    logits = predictor.logits(inputs, batch_size=run.batch_size)  # (rows, labels)
    seconds = time.perf_counter() - started
    label_names = list(predictor.label_names)
    metrics, per_class, confusion = score_predictions(
        logits.argmax(-1), np.asarray(labels), label_names, spec.metrics, config.level
    )
    return Evaluation(
        model=str(directory),
        runtime=predictor.runtime_name,
        data=str(config.data_file),
        rows=len(labels),
        label_names=label_names,
        metrics=metrics,
        per_class=per_class,
        confusion=confusion.tolist(),
        seconds=seconds,
    )
