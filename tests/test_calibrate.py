"""Temperature scaling and expected calibration error (calibrate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_cnn import calibrate


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def overconfident_sample(true_temperature: float, count: int = 20000, seed: int = 0):
    """Probabilities softmax(z) whose labels were drawn from softmax(z / true_temperature)."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(0, 4, size=(count, 10))
    truth = softmax(logits / true_temperature)
    labels = np.array([generator.choice(10, p=row) for row in truth])
    return softmax(logits), labels


def test_scaling_keeps_every_prediction_and_one_is_the_identity():
    probabilities, _ = overconfident_sample(2.0, count=500)
    for temperature in (0.5, 1.0, 3.0):
        scaled = calibrate.scale(probabilities, temperature)
        np.testing.assert_array_equal(scaled.argmax(axis=1), probabilities.argmax(axis=1))
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(calibrate.scale(probabilities, 1.0), probabilities, atol=1e-9)


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_fitted_temperature_recovers_the_one_the_labels_follow(true_temperature):
    probabilities, labels = overconfident_sample(true_temperature)
    fitted = calibrate.fit_temperature(probabilities, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.1)
    before = calibrate.expected_calibration_error(probabilities, labels)
    after = calibrate.expected_calibration_error(calibrate.scale(probabilities, fitted), labels)
    assert after < 0.02 < before


def test_expected_calibration_error_of_a_hand_computed_case():
    # Two images at confidence 0.9 (one right), two at 0.6 (both right): bins 14 and 9.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    assert calibrate.expected_calibration_error(probabilities, labels) == pytest.approx(expected)


def test_fit_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="as many labels"):
        calibrate.fit_temperature(np.full((3, 10), 0.1), np.array([1, 2]))
