"""The 2-D array operations preprocess builds on that scipy.ndimage and Pillow do not offer as
such: block pooling, a mask's box, float resize, Otsu's threshold, hysteresis thresholding.
Blurs, min/max filters and connected-component labels are scipy.ndimage's own, called where
they are used.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

# 8-connectivity: pixels touching at a corner belong to one component (a diagonal stroke).
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def pool(image: np.ndarray, factor: int, combine: np.ufunc) -> np.ndarray:
    """Reduce factor x factor blocks with the binary ufunc `combine` (np.minimum, np.add,
    np.logical_or...; partial blocks padded with edge values). The factor**2 strided views
    are combined in place: several times faster than a reduction over the blocks' two short,
    strided axes (`benchmarks/preprocess_speed.py`)."""
    if factor == 1:
        return image.copy()
    height, width = image.shape
    image = np.pad(image, ((0, -height % factor), (0, -width % factor)), mode="edge")
    pooled = image[::factor, ::factor].copy()
    for row in range(factor):
        for col in range(factor):
            if row or col:
                combine(pooled, image[row::factor, col::factor], out=pooled)
    return pooled


def ink_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the box around a 2-D mask's pixels, bottom and right
    exclusive; None for an empty mask. From the rows' and columns' projections, a fraction of
    np.nonzero's cost on a large mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def resize(image: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    """Resize through Pillow's 32-bit float mode (no 8-bit rounding); float64 out, >= 1x1."""
    pil_image = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    resized = pil_image.resize((max(1, width), max(1, height)), method)
    return np.asarray(resized, dtype=np.float64)


def otsu_threshold(values: np.ndarray, bins: int) -> float:
    """Otsu's threshold: the histogram split with the largest between-class variance."""
    counts, edges = np.histogram(values, bins=bins)
    share = counts / max(counts.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below, mass_below = np.cumsum(share), np.cumsum(share * centres)
    between = (mass_below[-1] * weight_below - mass_below) ** 2
    between /= np.maximum(weight_below * (1 - weight_below), 1e-12)
    return float(edges[int(np.argmax(between[:-1])) + 1])


def hysteresis(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Pixels above `low` that are 8-connected to a pixel above `high` (Canny's hysteresis):
    a soft stretch of a stroke stays with the stroke, a soft blob on its own goes."""
    labels, count = ndimage.label(image > low, structure=EIGHT_CONNECTED)
    if count == 0:
        return np.zeros(image.shape, dtype=bool)
    anchored = np.zeros(count + 1, dtype=bool)
    anchored[np.unique(labels[image > high])] = True
    anchored[0] = False  # label 0 is the background
    return anchored[labels]
