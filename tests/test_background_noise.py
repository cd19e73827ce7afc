"""Background level and noise: the ink left out, a large blurred digit not counted as noise."""

import numpy as np
from scipy import ndimage

from mnist_cnn.background_noise import background_level, lag_sigma


def _noise(seed: int, sigma: float, shape=(200, 200)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sigma, shape)


def test_background_level_leaves_sparse_ink_out():
    signal = _noise(0, 0.02)
    signal[90:110, 40:160] += 0.5  # a stroke on 6% of the picture
    level, sigma = background_level(signal)
    assert abs(level) < 0.005 and 0.015 < sigma < 0.025


def test_lag_sigma_measures_white_noise():
    assert abs(lag_sigma(_noise(1, 0.03), lag=6) - 0.03) < 0.003


def test_lag_sigma_is_not_fooled_by_a_large_blurred_digit():
    rows, columns = np.mgrid[:200, :200]
    radius = np.hypot(rows - 100, (columns - 100) * 1.4)
    zero = ((radius > 45) & (radius < 80)).astype(float)  # a thick 0 filling the picture
    blurred = ndimage.gaussian_filter(zero, 16)  # soft ink on 60% of the picture
    signal = 0.4 * blurred / blurred.max() + _noise(2, 0.01)
    clipped = background_level(signal)[1]
    by_lag = lag_sigma(signal, lag=6)
    assert clipped > 5 * by_lag  # the soft ink inflated the clipped estimate
    assert by_lag < 0.025
