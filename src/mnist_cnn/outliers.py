"""Synthetic non-digits made from MNIST training digits, for outlier exposure.

Outlier exposure (Hendrycks, Mazeika and Dietterich, ICLR 2019) trains the classifier to give
a uniform answer on pictures that are not of its classes, so that its confidence and energy
fall on non-digits it never saw. The shipped model may learn from MNIST training images only,
so the outliers here are computed from those digits, never from letters, clothing or any
other picture set: stroke fragments rearranged, two digits on top of each other, mirror
images of digits whose mirror is no digit, and filled silhouettes. Each is framed as
preprocessing frames a picture (fitted into 20x20, centre of mass at the centre), since that
is what the model sees of any picture, digit or not.

Their target is the uniform distribution: with categorical cross-entropy, that is exactly
the outlier-exposure loss (cross-entropy to uniform) up to a constant.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnist_cnn.data import NUM_CLASSES
from mnist_cnn.preprocess import NoDigitError, frame_digit

# The four kinds, drawn in equal shares; with `letters`, also the two letter-like kinds.
KINDS = ("tiles", "overlay", "mirror", "silhouette")
LETTER_KINDS = ("strokes", "arc")
# Strokes: MNIST 1s laid along the segments of letter skeletons in a unit box ((row, column)
# ends). Only letters that no handwritten digit resembles: X, H, V, A, N, K, M, W, E, L, and a
# cross; T, Y, Z, F and I are left out (a 7, a 4, a 2, a 7, a 1).
STROKE_LETTERS = {
    "X": (((0, 0), (1, 1)), ((0, 1), (1, 0))),
    "H": (((0, 0), (1, 0)), ((0, 1), (1, 1)), ((0.5, 0), (0.5, 1))),
    "V": (((0, 0), (1, 0.5)), ((0, 1), (1, 0.5))),
    "A": (((1, 0), (0, 0.5)), ((1, 1), (0, 0.5)), ((0.6, 0.2), (0.6, 0.8))),
    "N": (((1, 0), (0, 0)), ((0, 0), (1, 1)), ((1, 1), (0, 1))),
    "K": (((0, 0), (1, 0)), ((0.5, 0), (0, 1)), ((0.5, 0), (1, 1))),
    "M": (((1, 0), (0, 0)), ((0, 0), (0.7, 0.5)), ((0.7, 0.5), (0, 1)), ((0, 1), (1, 1))),
    "W": (
        ((0, 0), (1, 0.25)),
        ((1, 0.25), (0.3, 0.5)),
        ((0.3, 0.5), (1, 0.75)),
        ((1, 0.75), (0, 1)),
    ),
    "E": (((0, 0), (1, 0)), ((0, 0), (0, 1)), ((0.5, 0), (0.5, 0.8)), ((1, 0), (1, 1))),
    "L": (((0, 0), (1, 0)), ((1, 0), (1, 0.7))),
    "+": (((0, 0.5), (1, 0.5)), ((0.5, 0), (0.5, 1))),
}
_STROKE_BOX = (5.0, 22.0)  # the letter's box in the 28x28 frame, before framing rescales it
_STROKE_JITTER = 0.08  # each end moved up to this fraction of the box: no two letters alike
# Arcs: the half of a 0 on one side of a line through its centre at a random angle: c, u, n
# and a reversed c, which the model read as 0 or 6.
_ARC_DIGIT = 0
# Mirror images (left-right) of these digits are no digit; 0, 1 and 8 are their own mirror
# image, and a mirrored 2 or 5 reads as the other one.
MIRROR_DIGITS = (3, 4, 6, 7, 9)
# Filled silhouettes of the digits with loops are blobs (an ink blot, a shoe); the filled
# outline of a 2, 3 or 5 reads as the same digit drawn with a marker, so they are left out.
SILHOUETTE_DIGITS = (0, 6, 8, 9)
_INK = 0.3  # a pixel above this (0-1) is ink when a digit is binarised for its silhouette
_SILHOUETTE_RADIUS = 2  # dilation before filling, px at 28x28: closes the gaps of a loop
_SILHOUETTE_SOFTNESS = 0.8  # Gaussian sigma, px: anti-aliased edges, as a photo has
_QUADRANT = 14  # tiles: the 28x28 picture cut into four 14x14 quadrants


def _tiles(digit: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """The four quadrants in another order, each turned by a random multiple of 90 degrees."""
    quadrants = [
        digit[row : row + _QUADRANT, col : col + _QUADRANT]
        for row in (0, _QUADRANT)
        for col in (0, _QUADRANT)
    ]
    order = random.permutation(4)
    while (order == np.arange(4)).all():
        order = random.permutation(4)
    turned = [np.rot90(quadrants[index], int(random.integers(4))) for index in order]
    return np.block([[turned[0], turned[1]], [turned[2], turned[3]]])


def _overlay(first: np.ndarray, second: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """Two digits of different labels in one picture, the second turned or flipped."""
    turned = np.rot90(second, int(random.integers(1, 4)))
    return np.maximum(first, turned if random.random() < 0.5 else turned[:, ::-1])


def _silhouette(digit: np.ndarray) -> np.ndarray:
    """The digit's outline filled in: a solid blob with soft edges."""
    mask = ndimage.binary_dilation(digit > _INK, iterations=_SILHOUETTE_RADIUS)
    filled = ndimage.binary_fill_holes(mask).astype(np.float64)
    return ndimage.gaussian_filter(filled, _SILHOUETTE_SOFTNESS)


def _axis_ends(stroke: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two ends of a stroke's ink along its principal axis, (row, column)."""
    rows, columns = np.nonzero(stroke > _INK)
    points = np.stack([rows, columns], axis=1).astype(np.float64)
    centre = points.mean(axis=0)
    direction = np.linalg.svd(points - centre, full_matrices=False)[2][0]
    along = (points - centre) @ direction
    return centre + along.min() * direction, centre + along.max() * direction


def _laid_along(stroke: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """`stroke` (a 1) moved, turned and stretched so that its axis runs from `start` to `end`
    in a 28x28 frame; its width is kept."""
    source_start, source_end = _axis_ends(stroke)
    source, target = source_end - source_start, end - start
    length = max(np.linalg.norm(target), 1.0)
    target_axes = np.stack([target / length, [-target[1] / length, target[0] / length]], axis=1)
    source_unit = source / max(np.linalg.norm(source), 1.0)
    # (along the target in px, across it in px) -> input: along stretched, across kept.
    source_axes = np.stack([source / length, [-source_unit[1], source_unit[0]]], axis=1)
    matrix = source_axes @ target_axes.T
    offset = source_start - matrix @ start
    return ndimage.affine_transform(stroke, matrix, offset, order=1)


def _strokes(ones: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """A letter of STROKE_LETTERS drawn with MNIST 1s, its ends jittered."""
    segments = STROKE_LETTERS[list(STROKE_LETTERS)[random.integers(len(STROKE_LETTERS))]]
    low, high = _STROKE_BOX
    picture = np.zeros((28, 28))
    for ends in segments:
        start, end = (
            low + (np.asarray(point) + random.uniform(-1, 1, 2) * _STROKE_JITTER) * (high - low)
            for point in ends
        )
        stroke = ones[random.integers(len(ones))] / 255.0
        picture = np.maximum(picture, _laid_along(stroke, start, end))
    return picture


def _arc(zero: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """The half of a 0 on one side of a line through its centre of mass."""
    centre = ndimage.center_of_mass(zero)
    angle = random.uniform(0, 2 * np.pi)
    rows, columns = np.mgrid[:28, :28]
    side = (rows - centre[0]) * np.cos(angle) + (columns - centre[1]) * np.sin(angle)
    return np.where(side > 0, zero, 0.0)


def synthetic_outliers(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int, letters: bool = False
) -> np.ndarray:
    """`count` non-digits (uint8, (count, 28, 28), white on black like MNIST) made from
    `images` (uint8 MNIST digits) and their `labels`, the same for the same seed; `letters`
    adds the letter-like kinds (LETTER_KINDS)."""
    random = np.random.default_rng(seed)
    labels = np.asarray(labels)
    by_label = {digit: np.flatnonzero(labels == digit) for digit in range(NUM_CLASSES)}
    mirror_pool = np.concatenate([by_label[digit] for digit in MIRROR_DIGITS])
    silhouette_pool = np.concatenate([by_label[digit] for digit in SILHOUETTE_DIGITS])
    kinds = KINDS + LETTER_KINDS if letters else KINDS
    ones, zero_pool = images[by_label[1]] if letters else None, by_label[_ARC_DIGIT]
    result = np.zeros((count, 28, 28), dtype=np.uint8)
    made = 0
    while made < count:
        kind = kinds[made % len(kinds)]
        if kind == "strokes":
            picture = _strokes(ones, random)
        elif kind == "arc":
            picture = _arc(images[zero_pool[random.integers(len(zero_pool))]] / 255.0, random)
        elif kind == "tiles":
            picture = _tiles(images[random.integers(len(images))] / 255.0, random)
        elif kind == "overlay":
            first = int(random.integers(len(images)))
            others = np.flatnonzero(labels != labels[first])
            second = images[others[random.integers(len(others))]]
            picture = _overlay(images[first] / 255.0, second / 255.0, random)
        elif kind == "mirror":
            picture = images[mirror_pool[random.integers(len(mirror_pool))]][:, ::-1] / 255.0
        else:
            picture = _silhouette(images[silhouette_pool[random.integers(len(silhouette_pool))]])
        try:
            framed = frame_digit(np.asarray(picture, dtype=np.float64))
        except NoDigitError:  # a quadrant shuffle of a tiny digit can leave nothing: draw again
            continue
        result[made] = np.round(np.clip(framed, 0.0, 1.0) * 255).astype(np.uint8)
        made += 1
    return result


def uniform_targets(count: int) -> np.ndarray:
    """The outlier-exposure target: every class equally likely."""
    return np.full((count, NUM_CLASSES), 1.0 / NUM_CLASSES, dtype=np.float32)
