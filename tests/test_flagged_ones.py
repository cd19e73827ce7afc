"""Flagged 1s: a flag drawn at the top-left of upright training 1s, framed, seeded."""

import numpy as np
import pytest

from mnist_cnn.data import load_mnist
from mnist_cnn.flagged_ones import MAX_SLANT, ONE, add_flag, flag_ones, slant
from mnist_cnn.preprocess import NoDigitError


@pytest.fixture(scope="module")
def digits():
    train = load_mnist().train
    return train.images[:3000], train.labels[:3000]


def _bar(left: int, right: int) -> np.ndarray:
    """A bare upright 1: a vertical bar, rows 4-23, 0-1 white on black."""
    picture = np.zeros((28, 28))
    picture[4:24, left:right] = 1.0
    return picture


def test_slant_tells_a_slash_from_a_bar_and_a_backslash():
    slash = np.zeros((28, 28))
    backslash = np.zeros((28, 28))
    for row in range(4, 24):
        slash[row, 20 - row // 2 : 22 - row // 2] = 1.0
        backslash[row, 4 + row // 2 : 6 + row // 2] = 1.0
    assert slant(slash) > MAX_SLANT
    assert slant(backslash) < -MAX_SLANT
    assert abs(slant(_bar(13, 16))) < 0.01


def test_a_flag_is_ink_up_and_to_the_left_of_the_stem():
    flagged = add_flag(_bar(13, 16), np.random.default_rng(0))
    assert flagged.shape == (28, 28) and flagged.max() == pytest.approx(1.0)
    rows, columns = np.nonzero(flagged > 0.5)
    stem = np.median(columns)
    top_third = rows < rows.min() + (rows.max() - rows.min()) / 3
    assert (columns[top_third] < stem - 2).any()  # the flag
    assert not (columns[~top_third] < stem - 2).any()  # nothing added lower down
    assert not (columns > stem + 2).any()  # nothing to the right


def test_an_empty_picture_has_nothing_to_flag():
    with pytest.raises(NoDigitError):
        add_flag(np.zeros((28, 28)), np.random.default_rng(0))


def test_only_upright_ones_change_seeded_and_in_the_share_asked(digits):
    images, labels = digits
    flagged = flag_ones(images, labels, 0.5, seed=3)
    assert flagged.shape == images.shape and flagged.dtype == np.uint8
    changed = (flagged != images).any(axis=(1, 2))
    assert (labels[changed] == ONE).all()
    upright = np.array(
        [
            labels[i] == ONE and abs(slant(images[i] / 255.0)) <= MAX_SLANT
            for i in range(len(images))
        ]
    )
    assert not changed[~upright].any()
    assert changed.sum() == pytest.approx(0.5 * upright.sum(), abs=2)
    assert (flagged[changed].max(axis=(1, 2)) == 255).all()  # framed: the peak at full ink
    np.testing.assert_array_equal(flagged, flag_ones(images, labels, 0.5, seed=3))
    assert not np.array_equal(flagged, flag_ones(images, labels, 0.5, seed=4))
    np.testing.assert_array_equal(flag_ones(images, labels, 0.0, seed=3), images)
