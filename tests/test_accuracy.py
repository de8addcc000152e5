"""``skeleton evaluate``'s figures, worked out by hand on a toy confusion matrix."""

import numpy as np
import pytest

from skeleton.measure.accuracy import per_class_figures, score_predictions


def test_figures_of_five_rows_by_hand():
    # true:      0  1  0  0  1
    # predicted: 0  1  1  0  1   -> 4 of 5 right; confusion [[2, 1], [0, 2]]
    metrics, per_class, confusion = score_predictions(
        np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 1]), ["no", "yes"], task_metrics=("f1",)
    )
    assert confusion.tolist() == [[2, 1], [0, 2]]
    assert metrics["accuracy"]["value"] == pytest.approx(80.0)
    # "no": precision 2/2, recall 2/3, F1 = 2*2 / (2 + 3) = 0.8; "yes": precision 2/3, recall 2/2, F1 = 4/5
    assert per_class["no"] == pytest.approx({"precision": 100.0, "recall": 200 / 3, "f1": 80.0, "support": 3})
    assert per_class["yes"] == pytest.approx({"precision": 200 / 3, "recall": 100.0, "f1": 80.0, "support": 2})
    assert metrics["macro_f1"]["value"] == pytest.approx(80.0) and metrics["f1"]["value"] == pytest.approx(80.0)
    for figure in metrics.values():
        assert figure["low"] <= figure["value"] <= figure["high"] and figure["level"] == 0.95


def test_a_class_never_predicted_has_zero_precision_and_f1():
    figures = per_class_figures(np.array([[3, 0, 0], [2, 0, 0], [0, 0, 1]]), ["a", "b", "c"])
    assert figures["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert figures["a"]["precision"] == pytest.approx(60.0) and figures["c"]["f1"] == pytest.approx(100.0)


def test_the_interval_narrows_with_more_rows():
    """The same 80% accuracy on 10 and on 1,000 rows: the bootstrap interval of the larger is narrower, and
    both contain 80."""
    widths = []
    for rows in (10, 1000):
        labels = np.zeros(rows, dtype=int)
        predictions = np.where(np.arange(rows) % 5 == 0, 1, 0)
        metrics, _, _ = score_predictions(predictions, labels, ["a", "b"])
        accuracy = metrics["accuracy"]
        assert accuracy["value"] == pytest.approx(80.0) and accuracy["low"] <= 80.0 <= accuracy["high"]
        widths.append(accuracy["high"] - accuracy["low"])
    assert widths[1] < widths[0] / 3
