import re

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
    labels = np.repeat(np.arange(10), 2)  # two examples of each digit
    predicted = labels.copy()
    predicted[[14, 15]] = 1  # both 7s read as 1
    predicted[8] = 9  # one 4 read as 9
    metrics = metrics_from_probabilities(np.eye(10)[predicted], labels)
    lines = format_report(metrics).splitlines()
    assert "test accuracy: 0.8500" in lines
    per_class = dict(re.findall(r"(\d): ([0-9.]+)", lines[lines.index("per-class accuracy:") + 1]))
    expected = {str(digit): "1.0000" for digit in range(10)} | {"4": "0.5000", "7": "0.0000"}
    assert per_class == expected
    header = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    assert lines[header + 1].split() == [str(digit) for digit in range(10)]
    rows = [[int(cell) for cell in line.split()] for line in lines[header + 2 :]]
    assert [row[0] for row in rows] == list(range(10))  # one row per true digit, in order
    assert [row[1:] for row in rows] == metrics["confusion_matrix"]
    assert rows[7][1 + 1] == 2 and rows[4][1 + 9] == 1 and rows[4][1 + 4] == 1


def test_report_names_the_classes_of_non_digit_data():
    labels = np.arange(10)
    names = ["T-shirt/top", "Trouser", *(f"c{index}" for index in range(2, 10))]
    predicted = labels.copy()
    predicted[1] = 0  # the trouser read as a T-shirt
    metrics = metrics_from_probabilities(np.eye(10)[predicted], labels)
    lines = format_report({**metrics, "class_names": names}).splitlines()
    per_class = lines[lines.index("per-class accuracy:") + 1]
    assert "T-shirt/top: 1.0000" in per_class and "Trouser: 0.0000" in per_class
    header = next(line for line in lines if line.startswith("confusion matrix"))
    assert "rows: true class" in header and "1 = Trouser" in header
