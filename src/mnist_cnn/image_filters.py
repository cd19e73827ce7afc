"""The 2-D array operations preprocess builds on (NumPy + Pillow only): box mean, min/max
filter, block pooling, float resize, connected-component labels, Otsu's threshold.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window, cut at the borders; cost independent of radius."""
    for axis in (0, 1):
        length = image.shape[axis]
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius + 1, radius)
        sums = np.cumsum(np.pad(image, pad), axis=axis)
        ends, starts = np.arange(2 * radius + 1, length + 2 * radius + 1), np.arange(length)
        window = np.take(sums, ends, axis=axis) - np.take(sums, starts, axis=axis)
        counts = np.cumsum(np.pad(np.ones(length), (radius + 1, radius)))
        counts = counts[2 * radius + 1 :] - counts[:length]
        image = window / (counts[:, None] if axis == 0 else counts[None, :])
    return image


def rank_filter(image: np.ndarray, radius: int, reduce) -> np.ndarray:
    """Square min or max filter (`reduce` = np.min or np.max): grey erosion or dilation."""
    if radius < 1:
        return image
    padded = np.pad(image, radius, mode="edge")
    padded = reduce(sliding_window_view(padded, 2 * radius + 1, axis=0), axis=-1)
    return reduce(sliding_window_view(padded, 2 * radius + 1, axis=1), axis=-1)


def pool(image: np.ndarray, factor: int, reduce) -> np.ndarray:
    """Reduce factor x factor blocks with `reduce` (partial blocks padded with edge values)."""
    height, width = image.shape
    image = np.pad(image, ((0, -height % factor), (0, -width % factor)), mode="edge")
    blocks = image.reshape(image.shape[0] // factor, factor, image.shape[1] // factor, factor)
    return reduce(blocks, axis=(1, 3))


def resize(image: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    """Resize through Pillow's 32-bit float mode (no 8-bit rounding); float64 out, >= 1x1."""
    pil_image = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    resized = pil_image.resize((max(1, width), max(1, height)), method)
    return np.asarray(resized, dtype=np.float64)


def label_components(mask: np.ndarray) -> np.ndarray:
    """8-connected labels (label = flat index of a member pixel; background = mask.size)."""
    height, width = mask.shape
    labels = np.where(mask, np.arange(mask.size).reshape(height, width), mask.size)
    while True:
        padded = np.pad(labels, 1, constant_values=mask.size)
        merged = labels.copy()
        for dy in range(3):
            for dx in range(3):
                np.minimum(merged, padded[dy : dy + height, dx : dx + width], out=merged)
        merged = np.where(mask, merged, mask.size)
        flat, member = merged.ravel(), mask.ravel()
        flat[member] = flat[flat[member]]  # pointer jumping: follow a label to its own label
        if np.array_equal(merged, labels):
            return labels
        labels = merged


def otsu_threshold(values: np.ndarray, bins: int) -> float:
    """Otsu's threshold: the histogram split with the largest between-class variance."""
    counts, edges = np.histogram(values, bins=bins)
    share = counts / max(counts.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_below, mass_below = np.cumsum(share), np.cumsum(share * centres)
    between = (mass_below[-1] * weight_below - mass_below) ** 2
    between /= np.maximum(weight_below * (1 - weight_below), 1e-12)
    return float(edges[int(np.argmax(between[:-1])) + 1])
