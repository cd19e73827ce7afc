"""Synthetic non-digits for outlier exposure: framed like preprocessed pictures, seeded."""

import numpy as np
import pytest

from mnist_cnn.data import load_mnist
from mnist_cnn.outliers import (
    KINDS,
    LETTER_KINDS,
    MIRROR_DIGITS,
    _axis_ends,
    _laid_along,
    synthetic_outliers,
    uniform_targets,
)


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


def test_letter_kinds_are_framed_and_only_made_when_asked(digits):
    count = len(KINDS + LETTER_KINDS) * 4
    letters = synthetic_outliers(*digits, count=count, seed=3, letters=True)
    plain = synthetic_outliers(*digits, count=count, seed=3)
    assert letters.shape == plain.shape and (letters.max(axis=(1, 2)) == 255).all()
    assert not np.array_equal(letters, plain)
    # the letter kinds take their turn after the four others: a turn of 6, every 5th and 6th
    letter_positions = [i for i in range(count) if i % 6 >= len(KINDS)]
    plain_set = {picture.tobytes() for picture in plain}
    assert not any(letters[i].tobytes() in plain_set for i in letter_positions)


def test_a_stroke_is_laid_along_the_segment_asked_for_with_its_width_kept():
    stroke = np.zeros((28, 28))
    stroke[4:24, 13:15] = 1.0  # an upright bar 20 long, 2 wide
    start, end = np.array([14.0, 4.0]), np.array([14.0, 24.0])  # lying, left to right
    laid = _laid_along(stroke, start, end)
    rows, columns = np.nonzero(laid > 0.5)
    assert abs(columns.min() - 4) <= 1 and abs(columns.max() - 24) <= 1
    assert np.ptp(rows) <= 2  # still about 2 px wide
    first, last = _axis_ends(laid)
    assert abs(first[0] - last[0]) < 1.5  # its axis is now horizontal
