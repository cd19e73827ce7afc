"""Calibrated confidence: temperature scaling (Guo et al., 2017) and expected calibration error.

A network trained with cross-entropy is over- or under-confident by a roughly constant factor
in its logits; dividing them by one temperature T, fitted to minimise the negative
log-likelihood on held-out images, repairs that without changing any prediction. The model
outputs probabilities, and log(p) differs from the logits only by a per-image constant, which
the softmax removes, so softmax(log(p) / T) is exactly the temperature-scaled output.
NumPy and SciPy only: predict and serve apply the temperature without TensorFlow.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

ECE_BINS = 15  # equal-width confidence bins, the count Guo et al. report
# Temperatures searched: 1/20 to 20, in log space; real networks land within 0.5-5.
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)
_TINY = 1e-12  # floor under probabilities before the log: float32 softmax underflows to 0


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), _TINY))


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T), row by row; float64, same argmax as `probabilities`."""
    scaled = log_probabilities(probabilities) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    rows = np.arange(len(labels))
    return float(-np.mean(log_probabilities(probabilities)[rows, labels]))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the negative log-likelihood of `labels` (held-out images)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0 or len(labels) != len(probabilities):
        raise ValueError(
            f"need as many labels as probability rows, found {len(labels)} and {len(probabilities)}"
        )

    def loss(log_temperature: float) -> float:
        return negative_log_likelihood(scale(probabilities, np.exp(log_temperature)), labels)

    result = minimize_scalar(loss, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Sum over confidence bins of (share of images) x |accuracy - mean confidence|."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of 0 joins the first bin.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for bin_index in range(bins):
        members = index == bin_index
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            total += members.mean() * gap
    return float(total)
