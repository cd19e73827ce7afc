"""Flagged 1s made from MNIST training 1s: the 1 of most sans-serif typefaces and of European
handwriting, which MNIST (written by Americans) almost never shows.

MNIST's 1s are bare strokes; a 1 with a flag (a short stroke from the top of the stem down to
the left) has no example there, and the nearest MNIST shape is a narrow 7, so a model trained
on MNIST alone reads a printed sans-serif 1 as a 7. Here some training 1s are given a flag
drawn with their own stroke width: the picture is the MNIST digit itself plus one computed
stroke, framed as preprocessing frames a picture (fitted into 20x20, centre of mass at the
centre). No typeface and no corpus picture is involved.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mnist_cnn.preprocess import NoDigitError, frame_digit
from mnist_cnn.slant import slant as ink_slant

ONE = 1  # the label given a flag
# Flag length as a share of the digit's height, and its slope below the horizontal, drawn
# uniformly per picture: from the short, steep flag of Helvetica-like faces (a quarter of the
# height) to the long, shallow lead-in stroke of a handwritten European 1 (about half).
FLAG_LENGTH = (0.25, 0.5)
FLAG_DEGREES = (20.0, 55.0)
_SUPERSAMPLE = 4  # the flag is drawn at 4x and box-filtered down: soft edges like MNIST's
_INK = 0.5  # a pixel above this (0-1) counts towards the stroke width and the stem's top
_WIDTH_RANGE = (1.5, 4.0)  # stroke width in px at 28x28, clipped to MNIST's pens
# Only 1s standing within this slant (columns moved per row, about 14 degrees: an italic
# face's slant) get a flag: a flag on a 1 leaning like a "/" draws a 7.
MAX_SLANT = 0.25


def _stroke_width(ink: np.ndarray) -> float:
    """The stem's width: the median count of inked pixels per row that has any."""
    counts = (ink > _INK).sum(axis=1)
    return float(np.clip(np.median(counts[counts > 0]), *_WIDTH_RANGE))


def slant(digit: np.ndarray) -> float:
    """How far the stroke leans: preprocessing's slant of the ink pixels, each counted once
    (the least-squares slope of their column on their row), sign turned so that > 0 leans
    right at the top, as a "/" (columns per row)."""
    return -ink_slant((digit > _INK).astype(np.float64))


def add_flag(digit: np.ndarray, random: np.random.Generator) -> np.ndarray:
    """One MNIST 1 (float 0-1, (28, 28), white on black) -> the same 1 with a flag, framed
    like a preprocessed picture. NoDigitError if it holds no ink to start from."""
    rows = np.flatnonzero((digit > _INK).any(axis=1))
    if rows.size == 0:
        raise NoDigitError("no ink to draw a flag from")
    top, height = int(rows[0]), int(rows[-1] - rows[0] + 1)
    top_columns = np.flatnonzero(digit[top] > _INK)
    width = _stroke_width(digit)
    start_x, start_y = float(top_columns.mean()) + 0.5, top + width / 2
    length = random.uniform(*FLAG_LENGTH) * height
    angle = np.radians(random.uniform(*FLAG_DEGREES))
    end_x, end_y = start_x - length * np.cos(angle), start_y + length * np.sin(angle)

    side = digit.shape[0] * _SUPERSAMPLE
    canvas = Image.new("L", (side, side), 0)
    pen = max(1, round(width * _SUPERSAMPLE))
    points = [(start_x * _SUPERSAMPLE, start_y * _SUPERSAMPLE)]
    points.append((end_x * _SUPERSAMPLE, end_y * _SUPERSAMPLE))
    draw = ImageDraw.Draw(canvas)
    draw.line(points, fill=255, width=pen)
    for x, y in points:  # round caps, as a pen leaves
        draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    flag = np.asarray(canvas.reduce(_SUPERSAMPLE), dtype=np.float64) / 255.0
    return frame_digit(np.maximum(digit, flag * digit.max()))


def flag_ones(images: np.ndarray, labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A copy of `images` (uint8 MNIST digits) in which `share` of the upright 1s (within
    MAX_SLANT), drawn at random (the same for the same seed), have a flag; the labels stay."""
    random = np.random.default_rng(seed)
    ones = np.flatnonzero(np.asarray(labels) == ONE)
    ones = np.array([index for index in ones if abs(slant(images[index] / 255.0)) <= MAX_SLANT])
    chosen = random.choice(ones, size=round(share * ones.size), replace=False)
    result = images.copy()
    for index in chosen:
        try:
            flagged = add_flag(images[index] / 255.0, random)
        except NoDigitError:  # an empty picture stays as it is
            continue
        result[index] = np.round(np.clip(flagged, 0.0, 1.0) * 255).astype(np.uint8)
    return result
