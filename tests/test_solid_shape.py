"""Tests for mnist_cnn.solid_shape: a solid shape's outline is refused, a digit's loop is not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from mnist_cnn.preprocess import NoDigitError, preprocess
from mnist_cnn.solid_shape import (
    SOLID_INSIDE_FRACTION,
    SolidShapeError,
    _dilate,
    _fill_holes,
    inside_fraction,
)

PAPER, INK = 235, 60  # 0-255 grey levels of a photo: light paper, dark ink or cloth
SIDE = 240


def _photo(draw_shape, seed: int = 0) -> np.ndarray:
    """A grey photo of light paper with sensor noise, `draw_shape(draw)` drawn on it."""
    image = Image.new("L", (SIDE, SIDE), PAPER)
    draw_shape(ImageDraw.Draw(image))
    noise = np.random.default_rng(seed).normal(0, 4, (SIDE, SIDE))
    return np.clip((np.asarray(image, float) + noise) / 255, 0, 1)


COAT = [(70, 30), (170, 30), (215, 120), (190, 130), (180, 215), (60, 215), (50, 130), (25, 120)]


def test_a_photographed_solid_shape_is_refused_as_not_a_digit() -> None:
    coat = _photo(lambda draw: draw.polygon(COAT, fill=INK))
    with pytest.raises(SolidShapeError, match=r"^coat: not a digit: the ink is the outline"):
        preprocess(coat, name="coat")


def test_a_solid_box_is_refused_and_the_error_is_a_no_digit_error() -> None:
    box = _photo(lambda draw: draw.rectangle((40, 60, 200, 190), fill=INK))
    with pytest.raises(NoDigitError, match="solid shape"):
        preprocess(box)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_same_outline_drawn_with_a_pen_is_read(seed: int) -> None:
    """Only the inside differs: paper inside a drawn loop is a digit's hole."""
    ring = _photo(lambda draw: draw.polygon(COAT, outline=INK, width=14), seed)
    assert preprocess(ring).shape == (28, 28)


def test_a_zero_with_a_small_loop_is_read() -> None:
    zero = _photo(lambda draw: draw.ellipse((85, 35, 155, 205), outline=INK, width=24))
    assert preprocess(zero).shape == (28, 28)


def _ring_mask(side: int = 100, outer: int = 40, inner: int = 25) -> np.ndarray:
    rows, cols = np.mgrid[:side, :side] - side // 2
    radius = np.hypot(rows, cols)
    return (radius <= outer) & (radius >= inner)


def test_inside_fraction_reads_paper_as_zero_and_ink_as_one() -> None:
    mask = _ring_mask()
    paper_inside = np.where(mask, 0.9, 0.1)
    assert inside_fraction(paper_inside, mask, stroke=15) == pytest.approx(0.0, abs=1e-9)
    filled = np.where(mask | (np.hypot(*(np.mgrid[:100, :100] - 50)) < 25), 0.9, 0.1)
    assert inside_fraction(filled, mask, stroke=15) == pytest.approx(1.0, abs=1e-9)
    assert inside_fraction(filled, mask, stroke=15) > SOLID_INSIDE_FRACTION


def test_inside_fraction_is_none_without_holes() -> None:
    bar = np.zeros((100, 100), dtype=bool)
    bar[10:90, 45:55] = True
    assert inside_fraction(np.where(bar, 0.9, 0.1), bar, stroke=10) is None
    assert inside_fraction(np.zeros((10, 10)), np.zeros((10, 10), dtype=bool), stroke=1) is None


def _random_masks(count: int) -> list[np.ndarray]:
    """Blobs, loops and specks of every density, with an empty and a full mask among them."""
    rng = np.random.default_rng(7)
    masks = [np.zeros((9, 13), bool), np.ones((12, 7), bool)]
    for _ in range(count):
        height, width = rng.integers(3, 90, size=2)
        field = ndimage.gaussian_filter(rng.random((height, width)), rng.uniform(0.5, 4))
        masks.append(field > np.quantile(field, rng.uniform(0.2, 0.95)))
    return masks


def test_the_hole_filling_is_scipys() -> None:
    for mask in _random_masks(150):
        np.testing.assert_array_equal(_fill_holes(mask), ndimage.binary_fill_holes(mask))


@pytest.mark.parametrize("radius", [1, 2, 5, 11])
def test_the_dilation_is_scipys_iterated_cross(radius: int) -> None:
    for mask in _random_masks(60):
        if mask.any():  # inside_fraction returns before an empty mask
            expected = ndimage.binary_dilation(mask, iterations=radius)
            np.testing.assert_array_equal(_dilate(mask, radius), expected)
