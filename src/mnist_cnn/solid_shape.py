"""Refuse the outline of a solid shape: a photographed coat, bag or box is not a digit.

Preprocessing takes for paper whatever is wider than a third of the picture (the background
is a grey opening that wide, so that shadows and uneven light go away), and that includes the
inside of a large solid shape. Of a coat photographed on a table only its edge is left as
"ink": a closed outline, which a digit model reads as a confident 0. The holes a digit's
strokes enclose (in 0, 4, 6, 8, 9) show the paper around the digit; the holes of such an
outline show the shape itself. This module measures that and refuses the picture.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnist_cnn.decode import NoDigitError
from mnist_cnn.image_filters import ink_box


class SolidShapeError(NoDigitError):
    """The ink is the outline of a solid shape, whose inside is not paper."""


# The holes' level, as a fraction of the way from the paper around the ink to the ink itself,
# above which they are the inside of a solid shape. Chosen on the tune split of the real-world
# corpus (benchmarks/corpus): its 5,700 digit pictures reach at most 0.41 (faint pencil
# whose paper grain fills a small loop), the clothing outlines the model read as digits 0.82
# and more; 0.6 sits between with a margin on either side.
SOLID_INSIDE_FRACTION = 0.6
# Holes smaller than this share of the area the outline encloses are too small to measure
# (a pinched loop, a gap between two strokes): such a picture is not judged.
MIN_HOLE_SHARE = 0.02
# The paper is read in a ring around the ink's box this fraction of its larger side wide
# (at least _MIN_RING_PX), close enough to share its lighting.
RING_FRACTION = 1 / 8
_MIN_RING_PX = 2
# The level of ink and paper: the median of the paper, this percentile (0-100) of the ink
# (the one preprocessing takes as full-strength ink).
INK_PERCENTILE = 60
REFUSAL = (
    "not a digit: the ink is the outline of a solid shape (its inside is {fraction:.0%} of "
    "the way from the paper to the ink), not pen strokes"
)


def inside_fraction(work: np.ndarray, mask: np.ndarray, stroke: float) -> float | None:
    """How far the inside of the ink's closed outlines lies from the paper around the ink
    towards the ink (0: paper, 1: as the ink), on the working copy `work` (ink bright) with
    the ink `mask` and its stroke width in pixels; None when the outlines enclose too little
    to measure."""
    box = ink_box(mask)
    if box is None:
        return None
    top, bottom, left, right = box
    ring = max(_MIN_RING_PX, round(RING_FRACTION * max(bottom - top, right - left)))
    height, width = mask.shape
    window = (
        slice(max(0, top - ring), min(height, bottom + ring)),
        slice(max(0, left - ring), min(width, right + ring)),
    )
    mask, work = mask[window], work[window]
    filled = _fill_holes(mask)
    # A stroke's anti-aliased edge is neither ink nor paper: half a stroke width away from
    # the mask on either side is.
    margin = max(1, round(stroke / 2))
    holes = filled & ~_dilate(mask, margin)
    paper = ~_dilate(filled, margin)
    if holes.sum() < MIN_HOLE_SHARE * filled.sum() or not paper.any():
        return None
    paper_level = float(np.median(work[paper]))
    contrast = float(np.percentile(work[mask], INK_PERCENTILE)) - paper_level
    if contrast <= 0:
        return None
    return (float(np.median(work[holes])) - paper_level) / contrast


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """ndimage.binary_fill_holes(mask), from one labelling of the paper (4-connected): what
    does not reach the picture's edge is a hole. Its result, at half its cost."""
    labels, _ = ndimage.label(~mask)
    edges = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return ~np.isin(labels, edges[edges > 0])


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """ndimage.binary_dilation(mask, iterations=radius) for a mask with ink: every pixel within
    `radius` steps (4-connected, taxicab distance) of the ink, in one distance transform."""
    return ndimage.distance_transform_cdt(~mask, metric="taxicab") <= radius


def refuse_solid_outline(work: np.ndarray, mask: np.ndarray, stroke: float) -> None:
    """SolidShapeError if the ink outlines a solid shape (see `inside_fraction`)."""
    fraction = inside_fraction(work, mask, stroke)
    if fraction is not None and fraction > SOLID_INSIDE_FRACTION:
        raise SolidShapeError(REFUSAL.format(fraction=fraction))
