"""The array filters preprocess builds on (image_filters.py)."""

from __future__ import annotations

import numpy as np

from mnist_cnn.image_filters import hysteresis, ink_box, otsu_threshold, pool


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
    np.testing.assert_array_equal(pool(image, 2, np.maximum), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(pool(image, 1, np.add), image)
    # a partial block is padded with its edge values: 3x3 in 2x2 blocks
    np.testing.assert_array_equal(pool(image[:3, :3], 2, np.add), [[10, 16], [34, 40]])


def test_pool_matches_a_reduction_over_the_blocks_with_partial_blocks_padded() -> None:
    rng = np.random.default_rng(3)
    for height, width, factor in [(7, 5, 2), (30, 17, 4), (16, 16, 8), (5, 9, 3)]:
        image = rng.random((height, width))
        padded = np.pad(image, ((0, -height % factor), (0, -width % factor)), mode="edge")
        blocks = padded.reshape(padded.shape[0] // factor, factor, -1, factor)
        np.testing.assert_array_equal(pool(image, factor, np.minimum), blocks.min(axis=(1, 3)))
        np.testing.assert_allclose(pool(image, factor, np.add), blocks.sum(axis=(1, 3)))
        mask = image > 0.8
        expected = (blocks > 0.8).any(axis=(1, 3))
        np.testing.assert_array_equal(pool(mask, factor, np.logical_or), expected)


def test_ink_box_is_the_box_of_the_masks_pixels_and_none_when_empty() -> None:
    mask = np.zeros((10, 12), bool)
    assert ink_box(mask) is None
    mask[3, 4] = mask[7, 9] = True
    assert ink_box(mask) == (3, 8, 4, 10)
    mask[:] = True
    assert ink_box(mask) == (0, 10, 0, 12)
