"""The level and noise of a picture's background, with the ink left out (for preprocess.py).

Levels are on the 0-1 grayscale scale of preprocess.py's signal (ink bright, paper near 0).
"""

from __future__ import annotations

import numpy as np

# Median absolute deviation -> standard deviation of normally distributed noise (1 / 0.6745,
# the normal's 75th percentile): a robust sigma that the ink's own pixels do not inflate.
MAD_TO_SIGMA = 1.4826
# The background's level and noise: median and robust sigma of the pixels below level +
# CLIP_SIGMAS sigma, re-estimated CLIP_ROUNDS times, so a digit covering a large share of the
# picture (a blurred or heavy one) does not count as background noise (chosen on the tune
# split of the real-world corpus, benchmarks/corpus). Sigma is floored at SIGMA_FLOOR (a
# 16-bit level) for clipping only: flat synthetic paper has no noise at all.
CLIP_SIGMAS, CLIP_ROUNDS, SIGMA_FLOOR = 3.0, 3, 1.0 / 65535


def robust_sigma(values: np.ndarray, centre: float) -> float:
    return MAD_TO_SIGMA * float(np.median(np.abs(values - centre)))


def background_level(signal: np.ndarray) -> tuple[float, float]:
    """(level, noise sigma) of the background pixels of `signal`, ink left out by clipping."""
    values = signal.ravel()
    level = float(np.median(values))
    sigma = robust_sigma(values, level)
    for _ in range(CLIP_ROUNDS):
        kept = values[values < level + CLIP_SIGMAS * max(sigma, SIGMA_FLOOR)]
        if kept.size == 0:
            break
        level = float(np.median(kept))
        sigma = robust_sigma(kept, level)
    return level, sigma


def lag_sigma(signal: np.ndarray, lag: int) -> float:
    """Noise sigma from differences of pixels `lag` apart, down and across (MAD / sqrt(2)).

    A blurred digit covering much of the picture defeats background_level's clipping: its
    soft ink counts as noise. Its stroke changes little over a short lag while independent
    noise differs fully, so this estimate stays near the paper's noise.
    """
    differences = np.concatenate(
        [(signal[lag:] - signal[:-lag]).ravel(), (signal[:, lag:] - signal[:, :-lag]).ravel()]
    )
    return robust_sigma(differences, 0.0) / np.sqrt(2)
