"""The array filters preprocess builds on (image_filters.py)."""

from __future__ import annotations

import numpy as np

from mnist_cnn.image_filters import hysteresis, otsu_threshold, pool


def test_hysteresis_keeps_a_faint_stretch_joined_to_a_strong_one_and_drops_a_faint_blob():
    image = np.zeros((20, 20))
    image[5, 2:8] = 0.9  # strong stroke
    image[5, 8:15] = 0.3  # its faint continuation
    image[6, 15] = 0.3  # joined diagonally
    image[15:18, 15:18] = 0.3  # a faint blob on its own
    kept = hysteresis(image, low=0.2, high=0.6)
    assert kept[5, 2:15].all() and kept[6, 15]
    assert not kept[15:18, 15:18].any()
    assert not hysteresis(np.zeros((4, 4)), 0.2, 0.6).any()


def test_otsu_splits_two_levels_and_pool_reduces_blocks():
    values = np.concatenate([np.full(100, 0.1), np.full(50, 0.8)])
    assert 0.1 < otsu_threshold(values, 64) <= 0.8
    image = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(pool(image, 2, np.max), [[5, 7], [13, 15]])
