"""Pictures enlarged by nearest neighbour: a zoomed-in low-resolution scan, a screenshot of a
small image. Their pixels come in flat blocks, and the blocks' corners and staircase edges are
a shape the model never saw in MNIST (whose digits were anti-aliased): the packaged model leaves
two to four times as many such digits unanswered as the same digits enlarged smoothly
(benchmarks/README.md, "Blocky enlargements"). `smooth_blocks` finds the block size and
averages over about one block each way: one block turns a nearest-neighbour enlargement into
the linear one (a box of one cell convolved with the cells' hold is the tent between their
centres), so the rest of preprocessing sees nearly the smooth picture.

A block edge is a column (or row) boundary where neighbouring pixels differ; inside a block they
do not. The picture counts as blocky only when both axes agree on it: the differences sit on a
few boundaries, evenly spaced by the same block size up to the rounding of a non-integer zoom.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from mnist_cnn.image_filters import resize

# Rows (or columns) sampled to profile the other axis: a block edge runs the whole picture, so
# a subsample finds it at a fraction of a large photo's cost.
_PROFILE_SAMPLES = 256
# A boundary is an edge when its mean difference is above this share of the largest one (and
# above _FLAT, 1.5 grey levels of 255: 8-bit rounding is flat) and _SPIKE times both of its
# neighbours': inside a block the difference is nil, or JPEG's ringing, a tenth of an edge's
# (seen on the tune split's blocky scans saved at quality 75), while a smooth picture's
# differences rise and fall over several boundaries.
_EDGE_SHARE, _FLAT, _SPIKE = 0.2, 1.5 / 255, 3.0
# Blocky only if those edges hold this share of the difference above _EDGE_SHARE: the strong
# differences are nearly all isolated edges.
_EDGE_ENERGY_MIN = 0.9
# Edges needed on both axes together (each needs at least _MIN_AXIS_EDGES), so that a few
# straight strokes of a digit drawn without anti-aliasing (a stem, a bar) are not taken for a
# grid. A narrow 1 on an 8-cell grid spans 2-3 cells: 3-4 edges across, more down.
_MIN_EDGES, _MIN_AXIS_EDGES = 8, 3
# The gaps between edges must be whole numbers of blocks, within less than a pixel (a
# non-integer zoom rounds each edge's position), for this share of the gaps.
_GAP_FIT_SHARE = 0.9
_SIZE_STEP = 0.25  # block sizes tried, in pixels: a non-integer zoom gives a non-integer size
# Smaller blocks are left alone: preprocessing's own smoothing (sigma at least 1 px of a
# working copy of at least 128 px) already averages them out. Larger than 1/_MIN_CELLS of the
# picture's longer side is no grid a digit was drawn on (the corpus's coarsest: 8 px a digit).
_MIN_BLOCK, _MIN_CELLS = 3.0, 8
# The box's side, in blocks. One block is the linear enlargement exactly; three quarters keep a
# little of the blocks' sharpness. Chosen on the tune sources (benchmarks/README.md, "Blocky
# enlargements") of 0, 0.5, 0.75 and 1: 0.75 read the most MNIST tune digits on optdigits' 8x8
# grid and, with 1, left the fewest of the tune sources' blocky scans unanswered (26 of 2,000
# against 57 with no box, for 6 more misread).
_BOX_BLOCKS = 0.75
# A blocky picture with a longer side than this is area-reduced to it before the box: twice
# preprocessing's working copy (at most 512 px), so nothing it would see is lost, and the box
# on a 36-megapixel picture does not cost a second.
_SMOOTH_MAX_SIDE = 1024


def _edges(gray: np.ndarray, axis: int) -> np.ndarray | None:
    """Positions of the block edges across `axis`, or None if that axis is not blocky."""
    step = max(1, gray.shape[1 - axis] // _PROFILE_SAMPLES)
    sampled = gray[:, ::step] if axis == 0 else gray[::step, :]
    profile = np.abs(np.diff(sampled, axis=axis)).mean(axis=1 - axis)
    if not profile.any():
        return None
    strong = profile > max(_FLAT, _EDGE_SHARE * float(profile.max()))
    padded = np.pad(profile, 1)
    neighbours = np.maximum(padded[:-2], padded[2:])
    edges = np.flatnonzero(strong & (profile >= _SPIKE * neighbours))
    if (
        len(edges) < _MIN_AXIS_EDGES
        or profile[edges].sum() < _EDGE_ENERGY_MIN * profile[strong].sum()
    ):
        return None
    return edges


def _gap_block(gaps: np.ndarray, largest: float) -> float | None:
    """The largest block size up to `largest` of which nearly all gaps are whole multiples,
    or None."""
    for size in np.arange(min(gaps.max(), largest), _MIN_BLOCK - 1e-9, -_SIZE_STEP):
        cells = np.maximum(1.0, np.round(gaps / size))
        if np.mean(np.abs(gaps - cells * size) < 1.0) >= _GAP_FIT_SHARE:
            return float(size)
    return None


def block_size(gray: np.ndarray) -> float | None:
    """Side (px) of the flat blocks of a nearest-neighbour enlargement, or None if `gray`
    (2-D, 0-1) is not one."""
    if min(gray.shape) < 2 * _MIN_BLOCK:
        return None
    gaps = []
    for axis in (0, 1):
        edges = _edges(gray, axis)
        if edges is None:
            return None
        gaps.append(np.diff(edges).astype(float))
    if sum(len(axis_gaps) + 1 for axis_gaps in gaps) < _MIN_EDGES:
        return None
    return _gap_block(np.concatenate(gaps), max(gray.shape) / _MIN_CELLS)


def smooth_blocks(gray: np.ndarray) -> np.ndarray:
    """A nearest-neighbour enlargement -> nearly its linear enlargement (a box of
    _BOX_BLOCKS blocks each way), at most _SMOOTH_MAX_SIDE px; any other picture unchanged."""
    size = block_size(gray)
    if size is None:
        return gray
    height, width = gray.shape
    scale = min(1.0, _SMOOTH_MAX_SIDE / max(height, width))
    if scale < 1:
        reduced = resize(gray, round(width * scale), round(height * scale), Image.Resampling.BOX)
        gray, size = reduced.astype(gray.dtype), size * scale
    box = max(2, round(_BOX_BLOCKS * size))
    return ndimage.uniform_filter(gray, size=box, mode="nearest").astype(gray.dtype)
