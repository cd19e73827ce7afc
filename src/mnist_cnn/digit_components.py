"""Which connected components of an ink mask are the digit (for preprocess.py).

Specks of dust, grain and a second mark far from the digit are dropped, and so is a rim of
light along an edge of the picture that the background estimate could not follow. Lengths are
in pixels of preprocess.py's working copy.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnist_cnn.image_filters import EIGHT_CONNECTED, pool

# Unless a comment says otherwise, these numbers were tuned by hand on tests/realistic.py's
# pictures and tests/test_preprocess.py; no record of that tuning was kept.
SPECK_FRACTION = 0.05  # components lighter than this share of the main one are specks
# Components are labelled on a copy pooled by longest side // this (to 128-255 px): fast, and
# it bridges 1-px gaps in a stroke.
LABEL_MAX_SIDE = 128
# A component belongs to the digit if its box comes within this fraction of the main
# component's larger side of the main component's box.
NEAR_FRACTION = 0.5


def keep_digit(mask: np.ndarray, strength: np.ndarray, rim_divisor: float) -> np.ndarray:
    """Drop specks (components far lighter than the main stroke, or far away from it) and
    rims of light along the picture's edges: components within the shorter side /
    `rim_divisor` of an edge they touch (the background opening's half-width)."""
    height, width = mask.shape
    factor = max(1, max(height, width) // LABEL_MAX_SIDE)
    small = pool(mask, factor, np.logical_or)
    weight = pool(strength * mask, factor, np.add)
    labels, count = ndimage.label(small, structure=EIGHT_CONNECTED)
    ids = np.arange(1, count + 1)
    mass = np.asarray(ndimage.sum_labels(weight, labels, ids))
    boxes = np.array(
        [(s[0].start, s[0].stop, s[1].start, s[1].stop) for s in ndimage.find_objects(labels)]
    )
    top, bottom, left, right = boxes.T
    # Light that keeps changing up to an edge of the picture (a vignette, the page's edge) is
    # a rim the background cannot follow: the opening lags it by its half-width there. A
    # component that touches an edge and lies wholly within that band of the edges (along one
    # edge, or a ring around a vignetted picture) is such a rim, not a stroke, unless nothing
    # else is there: the digit's main component is the heaviest of the others.
    band = min(height, width) / (rim_divisor * factor)
    rows, cols = small.shape
    row, col = np.ogrid[:rows, :cols]
    edge_distance = np.minimum(np.minimum(row, rows - 1 - row), np.minimum(col, cols - 1 - col))
    touches = (top == 0) | (left == 0) | (bottom == rows) | (right == cols)
    # wholly within the band: no pixel of it at band or farther (a count, not a sort by label)
    reaches_inside = np.bincount(labels[edge_distance >= band], minlength=count + 1)[1:] > 0
    rim = touches & ~reaches_inside
    main = int(np.argmax(np.where(rim, -1.0, mass))) if not rim.all() else int(np.argmax(mass))
    reach = NEAR_FRACTION * max(bottom[main] - top[main], right[main] - left[main])
    near = (top < bottom[main] + reach) & (bottom > top[main] - reach)
    near &= (left < right[main] + reach) & (right > left[main] - reach)
    rim[main] = False  # all rims: the heaviest stands for the digit
    keep = np.isin(labels, ids[near & ~rim & (mass >= SPECK_FRACTION * mass[main])])
    return mask & np.repeat(np.repeat(keep, factor, axis=0), factor, axis=1)[:height, :width]
