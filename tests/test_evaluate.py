import numpy as np
import pytest

from mnist_cnn.evaluate import format_report, metrics_from_probabilities


def test_metrics_from_known_probabilities():
    probabilities = np.full((4, 10), 0.01)
    probabilities[[0, 1, 2, 3], [3, 3, 5, 1]] = 0.91  # rows sum to 1
    labels = np.array([3, 3, 5, 2])
    metrics = metrics_from_probabilities(probabilities, labels)
    assert metrics["test_accuracy"] == 0.75
    expected_loss = -(3 * np.log(0.91) + np.log(0.01)) / 4
    assert metrics["test_loss"] == pytest.approx(expected_loss)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.sum() == 4 and confusion[3, 3] == 2 and confusion[2, 1] == 1
    assert metrics["per_class_accuracy"][2] == 0.0 and metrics["per_class_accuracy"][3] == 1.0
    assert metrics["per_class_accuracy"][0] == 0.0  # no examples of 0: reported as 0, not NaN


def test_report_lists_every_class():
    probabilities = np.eye(10)
    report = format_report(metrics_from_probabilities(probabilities, np.arange(10)))
    assert "test accuracy: 1.0000" in report
    assert report.count("\n") >= 15
