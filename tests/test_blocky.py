"""Tests for mnist_cnn.blocky: nearest-neighbour enlargements found and smoothed, nothing else."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mnist_cnn import preprocess
from mnist_cnn.blocky import block_size, smooth_blocks
from mnist_cnn.decode import load_image
from mnist_cnn.preprocess import to_mnist
from tests.realistic import generate_realistic_images

PAPER, INK = 236, 28  # a dark pen on white paper, 0-255


def _scan(digit: np.ndarray, cells: int) -> np.ndarray:
    """An MNIST digit (28x28, 0-1) as a dark-on-light scan on a grid of `cells` px."""
    small = Image.fromarray(np.round(PAPER - digit * (PAPER - INK)).astype(np.uint8))
    return np.asarray(small.resize((cells, cells), Image.Resampling.BOX))


def _enlarge(scan: np.ndarray, side: int, method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(scan).resize((side, side), method)) / 255.0


def _jpeg(gray: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(np.round(gray * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return load_image(buffer.getvalue())


@pytest.mark.parametrize(("cells", "side"), [(12, 144), (14, 100), (10, 173), (16, 64)])
def test_finds_the_block_size_of_an_enlargement(images, cells, side):
    for digit in images[:5]:
        blocky = _enlarge(_scan(digit, cells), side, Image.Resampling.NEAREST)
        assert block_size(blocky) == pytest.approx((side / cells, side / cells), abs=0.5)


def test_survives_jpeg(images):
    found = [
        block_size(_jpeg(_enlarge(_scan(digit, 12), 144, Image.Resampling.NEAREST), 75))
        for digit in images[:10]
    ]
    assert sum(sizes == pytest.approx((12, 12), abs=0.5) for sizes in found if sizes) >= 9


def test_smooth_pictures_are_not_blocky(images):
    for digit in images[:10]:
        scan = _scan(digit, 12)
        for method in (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC):
            smooth = _enlarge(scan, 144, method)
            assert block_size(smooth) is None
            assert smooth_blocks(smooth) is smooth
        assert block_size(_enlarge(scan, 24, Image.Resampling.NEAREST)) is None  # 2 px blocks


def test_a_digit_drawn_without_anti_aliasing_is_not_blocky():
    picture = Image.new("L", (300, 300), 255)
    draw = ImageDraw.Draw(picture)
    draw.ellipse((80, 40, 220, 260), outline=0, width=24)  # a hard-edged 0
    draw.line((60, 280, 250, 20), fill=0, width=20)  # and a slash through it
    assert block_size(np.asarray(picture) / 255.0) is None


def test_blocks_of_another_width_than_height():
    rng = np.random.default_rng(0)
    cells = (rng.random((12, 12)) > 0.6) * 0.8
    assert block_size(1 - np.kron(cells, np.ones((12, 8)))) == pytest.approx((12, 8), abs=0.5)


SEGMENTS = {
    0: "abcdef", 1: "bc", 2: "abged", 3: "abgcd", 4: "fgbc",
    5: "afgcd", 6: "afgedc", 7: "abc", 8: "abcdefg", 9: "abcdfg",
}  # fmt: skip


@pytest.mark.parametrize("bar", [10, 20, 24, 31])
def test_hard_edged_straight_strokes_are_not_blocky(bar):
    """Seven-segment digits of solid bars, no anti-aliasing: a few straight edges, which fit
    some small lattice by chance but leave most of its lines empty."""
    side, left, top = 150, 73, 41
    boxes = {
        "a": (left, top, left + side, top + bar),
        "g": (left, top + side, left + side, top + side + bar),
        "d": (left, top + 2 * side, left + side, top + 2 * side + bar),
        "f": (left, top, left + bar, top + side + bar),
        "b": (left + side - bar, top, left + side, top + side + bar),
        "e": (left, top + side, left + bar, top + 2 * side + bar),
        "c": (left + side - bar, top + side, left + side, top + 2 * side + bar),
    }
    for digit, segments in SEGMENTS.items():
        picture = Image.new("L", (300, 400), 255)
        draw = ImageDraw.Draw(picture)
        for segment in segments:
            draw.rectangle(boxes[segment], fill=0)
        assert block_size(np.asarray(picture) / 255.0) is None, digit


def test_only_2_d_arrays():
    with pytest.raises(ValueError, match="2-D"):
        block_size(np.zeros((20, 20, 3)))


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (3, 3), (5, 200), (6, 6), (6, 500), (7, 2000)])
def test_tiny_and_flat_pictures(shape):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty-slice warnings either
        assert block_size(np.zeros(shape)) is None
        assert block_size(np.random.default_rng(0).random(shape)) is None
    assert block_size(np.full((100, 100), 0.5)) is None


def test_smoothing_gives_nearly_the_linear_enlargement(images):
    for digit in images[:5]:
        scan = _scan(digit, 12)
        blocky = _enlarge(scan, 144, Image.Resampling.NEAREST)
        linear = _enlarge(scan, 144, Image.Resampling.BILINEAR)
        smoothed = smooth_blocks(blocky)
        assert smoothed.shape == blocky.shape and smoothed.dtype == blocky.dtype
        assert np.abs(smoothed - linear).mean() < 0.5 * np.abs(blocky - linear).mean()


def test_preprocess_reads_a_blocky_scan_as_the_smooth_one(images, monkeypatch):
    """The model's input from a nearest-neighbour scan is closer to that from the same scan
    enlarged bilinearly than it is with the blocks left as they are."""
    scans = [_scan(digit, 12) for digit in images[:8]]
    blocky = [_enlarge(scan, 144, Image.Resampling.NEAREST) for scan in scans]
    smooth = [to_mnist(_enlarge(scan, 144, Image.Resampling.BILINEAR)) for scan in scans]
    smoothed = [to_mnist(picture) for picture in blocky]
    monkeypatch.setattr(preprocess, "smooth_blocks", lambda gray: gray)
    left_blocky = [to_mnist(picture) for picture in blocky]
    distance_smoothed = np.mean(
        [np.abs(a - b).mean() for a, b in zip(smoothed, smooth, strict=True)]
    )
    distance_blocky = np.mean(
        [np.abs(a - b).mean() for a, b in zip(left_blocky, smooth, strict=True)]
    )
    assert distance_smoothed < 0.6 * distance_blocky


def test_a_large_blocky_picture_is_reduced_before_the_box(images):
    scan = _scan(images[0], 12)
    large = _enlarge(scan, 2400, Image.Resampling.NEAREST)  # 200 px blocks
    smoothed = smooth_blocks(large)
    assert max(smoothed.shape) == 1024
    linear = to_mnist(_enlarge(scan, 144, Image.Resampling.BILINEAR))
    assert np.abs(to_mnist(large) - linear).mean() < 0.05


def test_no_realistic_picture_is_taken_for_blocky(mnist):
    """Photos, scans and font renderings of tests/realistic.py, none enlarged blockily."""
    pictures = generate_realistic_images(60, 7, mnist.test.images[:200], mnist.test.labels[:200])
    assert [name for name, data, _ in pictures if block_size(load_image(data)) is not None] == []


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(4, 20),
    width=st.integers(4, 20),
    block=st.integers(3, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_smoothing_keeps_shape_dtype_and_range(height, width, block, seed):
    cells = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    gray = np.kron(cells, np.ones((block, block), np.float32))
    smoothed = smooth_blocks(gray)
    assert smoothed.shape == gray.shape and smoothed.dtype == gray.dtype
    assert gray.min() - 1e-6 <= smoothed.min() and smoothed.max() <= gray.max() + 1e-6
