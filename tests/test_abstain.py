"""Abstention: no answer below the run's calibrated-confidence threshold, with a reason."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_cnn.abstain import UNLIKE_DIGITS, Abstention, energy


def row(probabilities: dict[int, float]) -> np.ndarray:
    values = np.full(10, (1 - sum(probabilities.values())) / (10 - len(probabilities)))
    for digit, probability in probabilities.items():
        values[digit] = probability
    return values


def test_confident_answers_and_the_two_kinds_of_doubt():
    abstention = Abstention(min_confidence=0.5)
    sure, pair, nothing = abstention.answers(
        np.stack([row({3: 0.9}), row({4: 0.48, 9: 0.46}), row({7: 0.3})])
    )
    assert (sure.digit, sure.reason) == (3, None) and "reason" not in sure.to_dict()
    assert pair.digit is None and pair.reason.startswith("not sure: the likeliest digits are 4")
    assert "and 9 (0.46)" in pair.reason
    assert nothing.digit is None and nothing.reason.startswith("not a digit")
    assert "best guess 7" in nothing.reason
    entry = nothing.to_dict()
    assert entry["digit"] is None and entry["confidence"] == pytest.approx(0.3)
    assert len(entry["probabilities"]) == 10 and entry["reason"] == nothing.reason


def test_a_run_without_a_threshold_answers_everything():
    (answer,) = Abstention().answers(row({1: 0.11})[None])
    assert answer.digit == 1 and answer.reason is None


def test_energy_above_the_threshold_is_not_a_digit():
    abstention = Abstention(min_confidence=0.5, max_energy=-5.0)
    probabilities = np.stack([row({2: 0.95}), row({2: 0.95})])
    logits = np.array([[0.0] * 2 + [10.0] + [0.0] * 7, [0.0] * 2 + [1.0] + [0.0] * 7])
    assert energy(logits)[0] == pytest.approx(-(10 + np.log(1 + 9 * np.exp(-10))))
    familiar, unlike = abstention.answers(probabilities, logits)
    assert familiar.digit == 2 and unlike.digit is None and unlike.reason == UNLIKE_DIGITS
    with pytest.raises(ValueError, match="needs the logits"):
        abstention.answers(probabilities)
