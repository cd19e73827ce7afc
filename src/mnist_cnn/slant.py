"""Slant correction: a digit leaning far outside MNIST's usual range is sheared back to its edge.

Moved out of preprocess.py unchanged (NumPy + Pillow only).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Slant (horizontal shift per row down, from second moments; negative leans right) of MNIST's
# training digits: 25th and 75th percentiles, measured on the first 20,000 (median -0.12). So
# half of MNIST's own digits are sheared a little; the 5th and 95th (-0.578, 0.345) were tried
# on 2026-12-08 and lost more with the tutorial model than they gained with the packaged one
# (benchmarks/README.md, "Frame and slant range").
SLANT_LOW, SLANT_HIGH = -0.31, 0.06
SLANT_RANGE = (SLANT_LOW, SLANT_HIGH)
MIN_SHEAR = 1e-3  # a slant correction smaller than this (px per row) is not applied


def _slant_and_row_centre(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    if total <= 0:
        return 0.0, 0.0
    ys, xs = np.arange(image.shape[0]), np.arange(image.shape[1])
    rows, cols = image.sum(axis=1), image.sum(axis=0)
    centre_y, centre_x = (rows * ys).sum() / total, (cols * xs).sum() / total
    var_y = (rows * (ys - centre_y) ** 2).sum() / total
    if var_y <= 0:
        return 0.0, float(centre_y)
    covariance = (image * np.outer(ys - centre_y, xs - centre_x)).sum() / total
    return float(covariance / var_y), float(centre_y)


def slant(image: np.ndarray) -> float:
    """Horizontal shift of the ink per row down (cov(x, y) / var(y) of the ink's mass)."""
    return _slant_and_row_centre(image)[0]


def deslant(crop: np.ndarray) -> np.ndarray:
    """White-on-black digit slanted beyond MNIST's central range (a tilted photo, backhand or
    steep italic writing) -> the same digit sheared to the nearest edge of that range, on a
    canvas widened to keep all of it; a digit inside the range is returned as it is.

    Measured on MNIST's test digits rotated by up to 15 degrees, it lifts the tutorial model's
    accuracy from 97.3% to 97.7% (benchmarks/README.md, "Predicting realistic pictures")."""
    measured, centre_y = _slant_and_row_centre(crop)
    shift = float(np.clip(measured, SLANT_LOW, SLANT_HIGH)) - measured
    if abs(shift) < MIN_SHEAR:
        return crop
    height, width = crop.shape
    pad = int(np.ceil(abs(shift) * max(centre_y, height - centre_y))) + 1
    # Output pixel (X, Y) samples the input at (X - pad - shift * (Y - centre_y), Y).
    image = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    coefficients = (1.0, -shift, shift * centre_y - pad, 0.0, 1.0, 0.0)
    sheared = image.transform(
        (width + 2 * pad, height), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return np.asarray(sheared, dtype=np.float64)
