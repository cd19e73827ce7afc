"""Capture augmentation (augment.py): active in training only, digits kept in the frame."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_cnn.augment import (
    LOW_RESOLUTION_SIDES,
    RAMP_FLOOR_FRACTION,
    RAMP_MASK_FRACTION,
    RAMP_PERCENTILE,
    LowResolution,
    _ink_ramp,
    augmenter,
)
from mnist_cnn.config import recipe_config
from mnist_cnn.data import to_model_input


def test_robust_augmentation_changes_images_in_training_only(mnist):
    config = recipe_config("robust")
    layer = augmenter(config)
    batch = to_model_input(mnist.train.images[:256], config.data_format)
    np.testing.assert_array_equal(np.asarray(layer(batch, training=False)), batch)
    augmented = np.asarray(layer(batch, training=True))
    assert augmented.shape == batch.shape
    assert augmented.min() >= 0 and augmented.max() <= 1 + 1e-5
    changed = np.abs(augmented - batch).max(axis=(1, 2, 3)) > 0.05
    assert changed.mean() > 0.8  # 8% of images get no capture effect, geometry moves most
    # The digit survives: ink mass stays within a factor of 3 of the original for nearly all.
    ratio = augmented.sum(axis=(1, 2, 3)) / batch.sum(axis=(1, 2, 3))
    assert np.mean((ratio > 1 / 3) & (ratio < 3)) > 0.97


def test_low_resolution_coarsens_and_ramps_every_chosen_image(mnist):
    images = (mnist.train.images[:128, :, :, None] / 255).astype(np.float32)
    grid = LowResolution(1.0, LOW_RESOLUTION_SIDES, seed=1)
    np.testing.assert_array_equal(np.asarray(grid(images, training=False)), images)
    coarse = np.asarray(grid(images, training=True))
    assert coarse.shape == images.shape and coarse.min() >= 0 and coarse.max() <= 1
    assert (np.abs(coarse - images).max(axis=(1, 2, 3)) > 0.2).all()
    assert ((coarse >= 1 - 1e-5).sum(axis=(1, 2, 3)) > 20).all()  # ramped: solid ink
    # Detail finer than the grid (cells of 2-2.8 px) is gone: a one-pixel line spreads.
    line = np.zeros((8, 28, 28, 1), np.float32)
    line[:, 4:24, 14] = 1.0
    widths = (np.asarray(grid(line, training=True))[:, 14, :, 0] > 0.5).sum(axis=1)
    assert widths.min() >= 2
    # The digit stays in place: its ink's centre moves by less than a pixel.
    rows = np.arange(28)[None, :, None, None]
    centre = (images * rows).sum(axis=(1, 2, 3)) / images.sum(axis=(1, 2, 3))
    moved = (coarse * rows).sum(axis=(1, 2, 3)) / coarse.sum(axis=(1, 2, 3))
    assert np.abs(moved - centre).max() < 1.0


def test_the_ink_ramp_is_the_preprocessors(mnist):
    images = (mnist.train.images[:64, :, :, None] / 255).astype(np.float32) * 0.7
    ramped = np.asarray(_ink_ramp(images))
    for image, out in zip(images[..., 0] / 0.7, ramped[..., 0], strict=True):
        mask = image > RAMP_MASK_FRACTION
        count = mask.sum()  # the masked value with a share 1 - RAMP_PERCENTILE above it
        top = np.sort(image[mask])[count - round((1 - RAMP_PERCENTILE) * count)]
        floor = RAMP_FLOOR_FRACTION * top
        expected = np.clip((image - floor) / (top - floor), 0, 1)
        np.testing.assert_allclose(out, expected, atol=2e-3)


@pytest.mark.parametrize("probability", [0.0, 0.2])
def test_low_resolution_applies_to_its_share_of_the_images(mnist, probability):
    images = (mnist.train.images[:1000, :, :, None] / 255).astype(np.float32)
    coarse = np.asarray(
        LowResolution(probability, LOW_RESOLUTION_SIDES, seed=2)(images, training=True)
    )
    changed = (np.abs(coarse - images).max(axis=(1, 2, 3)) > 0.05).mean()
    assert abs(changed - probability) < 0.04
