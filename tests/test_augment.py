"""Capture augmentation (augment.py): active in training only, digits kept in the frame."""

from __future__ import annotations

import numpy as np

from mnist_cnn.augment import augmenter
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
