"""Synthetic non-digits for outlier exposure: framed like preprocessed pictures, seeded."""

import numpy as np
import pytest

from mnist_cnn.data import load_mnist
from mnist_cnn.outliers import KINDS, MIRROR_DIGITS, synthetic_outliers, uniform_targets


@pytest.fixture(scope="module")
def digits():
    train = load_mnist().train
    return train.images[:2000], train.labels[:2000]


def test_outliers_are_mnist_framed_uint8_pictures(digits):
    outliers = synthetic_outliers(*digits, count=200, seed=0)
    assert outliers.shape == (200, 28, 28) and outliers.dtype == np.uint8
    assert (outliers.max(axis=(1, 2)) == 255).all()  # brightest pixel at full ink, as framed
    for picture in outliers:
        rows, cols = np.nonzero(picture > 12)  # the 20x20 box, anti-aliasing aside
        assert np.ptp(rows) < 22 and np.ptp(cols) < 22
        mass = picture.astype(float) / picture.sum()
        centre = (mass.sum(axis=1) @ np.arange(28), mass.sum(axis=0) @ np.arange(28))
        assert np.allclose(centre, 14, atol=1.5)  # centre of mass at the centre, as MNIST


def test_same_seed_same_outliers_and_every_kind_is_made(digits):
    first = synthetic_outliers(*digits, count=len(KINDS) * 3, seed=7)
    assert np.array_equal(first, synthetic_outliers(*digits, count=len(KINDS) * 3, seed=7))
    assert not np.array_equal(first, synthetic_outliers(*digits, count=len(KINDS) * 3, seed=8))
    assert len({picture.tobytes() for picture in first}) == len(first)


def test_outliers_are_not_the_digits_they_came_from(digits):
    images, _ = digits
    outliers = synthetic_outliers(*digits, count=40, seed=0)
    framed_digits = {image.tobytes() for image in images}
    assert not any(picture.tobytes() in framed_digits for picture in outliers)


def test_mirrored_digits_leave_out_their_own_mirror_images():
    assert not {0, 1, 8} & set(MIRROR_DIGITS)  # symmetric: their mirror is still a digit
    assert not {2, 5} & set(MIRROR_DIGITS)  # each reads as the other one mirrored


def test_uniform_targets_sum_to_one():
    targets = uniform_targets(3)
    assert targets.shape == (3, 10) and np.allclose(targets.sum(axis=1), 1)
    assert np.allclose(targets, 0.1)


def test_zero_outliers_is_an_empty_array(digits):
    assert synthetic_outliers(*digits, count=0, seed=0).shape == (0, 28, 28)
