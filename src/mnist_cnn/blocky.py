"""Pictures enlarged by nearest neighbour: a zoomed-in low-resolution scan, a screenshot of a
small image. Their pixels come in flat blocks, and the blocks' corners and staircase edges are
a shape the model never saw in MNIST (whose digits were anti-aliased): the packaged model leaves
two to four times as many such digits unanswered as the same digits enlarged smoothly
(benchmarks/README.md, "Blocky enlargements"). `smooth_blocks` finds the block size and
averages over about one block each way: one block turns a nearest-neighbour enlargement into
the linear one (a box of one cell convolved with the cells' hold is the tent between their
centres), so the rest of preprocessing sees nearly the smooth picture.

A block edge is a column (or row) boundary where neighbouring pixels differ; inside a block they
do not. The picture counts as blocky only when each axis shows it: the strong differences sit
on isolated boundaries that lie on one lattice (up to the rounding of a non-integer zoom; its
pitch may differ between the axes, for a picture stretched more one way than the other), and
together they fill much of it. JPEG's own 8x8 blocks can pass on flat paper at low quality
(1 of the tune split's 100 blank pictures): smoothing leaves it blank.
The thresholds were set by hand on the tune split's pictures (benchmarks/README.md, "Blocky
enlargements") unless a comment says otherwise.
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
# Edges needed on each axis, so that a few straight strokes of a digit drawn without
# anti-aliasing (a stem, a bar) are not taken for a grid. A narrow 1 on an 8-cell grid spans
# 2-3 cells: 3-4 edges across, more down.
_MIN_AXIS_EDGES = 3
# On each axis, this share of the edges must lie on one lattice of the block size: within
# _LATTICE_TOLERANCE px of offset + k * size (a non-integer zoom rounds each edge's position by
# up to half a pixel; the offset is estimated from the edges themselves, hence the margin).
_LATTICE_FIT_SHARE, _LATTICE_TOLERANCE = 0.9, 0.75
# ...and the two axes' edges hold at least this share of their lattices' lines between the
# first and the last edge: a digit on a grid changes between most neighbouring cells, while a
# few hard strokes fit some small lattice by chance and leave most of its lines empty (the
# seven-segment digits of tests/test_blocky.py: 0.5).
_MIN_OCCUPANCY = 0.55
_SIZE_STEP = 0.25  # block sizes tried, in pixels: a non-integer zoom gives a non-integer size
# A size is tried on the lattice only once the gaps between edges are whole numbers of it, to
# within this many pixels (each gap's two ends are rounded): a quick test that most sizes fail.
_GAP_TOLERANCE = 1.0
# Smaller blocks are left alone: a 2x enlargement is nearly smooth once preprocessing's own
# smoothing (sigma at least 1 px of a working copy of at least 128 px) has passed over a picture
# of 128 px or more (smaller ones keep their 2 px blocks: not measured). Blocks larger than
# 1/_MIN_CELLS of the picture's side along their axis are not looked for: no grid a digit was
# drawn on is that coarse (the corpus's coarsest: 8 px a digit).
_MIN_BLOCK, _MIN_CELLS = 3.0, 8
# The box's side, in blocks. One block is the linear enlargement exactly; three quarters keep a
# little of the blocks' sharpness. Chosen on the tune sources (benchmarks/README.md, "Blocky
# enlargements") of 0, 0.5, 0.75 and 1: 0.75 read the most MNIST tune digits on optdigits' 8x8
# grid (96.80%), and of the tune sources' blocky scans left 25 of 2,000 unanswered (1: 24)
# against 57 with no box, for 6 more misread.
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


def _lattice(edges: np.ndarray, size: float) -> tuple[float, int, int] | None:
    """The lattice near pitch `size` on which nearly all `edges` (positions, px) lie: (its
    pitch refined by least squares, lines with an edge, lines from the first such to the
    last); None if there is none."""
    steps = np.round((edges - edges[0]) / size)
    if np.ptp(steps) == 0:
        return None
    pitch, offset = np.polyfit(steps, edges, 1)  # edges ~ offset + steps * pitch
    on_lattice = np.abs(edges - (offset + steps * pitch)) <= _LATTICE_TOLERANCE
    if on_lattice.mean() < _LATTICE_FIT_SHARE or pitch < _MIN_BLOCK:
        return None
    lines = np.unique(steps[on_lattice])
    return float(pitch), len(lines), int(lines.max() - lines.min()) + 1


def _axis_lattice(edges: np.ndarray, largest: float) -> tuple[float, int, int] | None:
    """The lattice of the largest block size up to `largest` px that carries one axis's
    edges (see _lattice), or None."""
    gaps = np.diff(edges)
    top = min(float(gaps.max()), largest)
    for size in np.arange(top, _MIN_BLOCK - _SIZE_STEP / 2, -_SIZE_STEP):
        cells = np.maximum(1.0, np.round(gaps / size))
        if np.mean(np.abs(gaps - cells * size) < _GAP_TOLERANCE) < _LATTICE_FIT_SHARE:
            continue  # the quick test first
        lattice = _lattice(edges, float(size))
        if lattice is not None:
            return lattice
    return None


def block_size(gray: np.ndarray) -> tuple[float, float] | None:
    """Sides (px, down and across) of the flat blocks of a nearest-neighbour enlargement, or
    None if `gray` (2-D, levels 0-1) is not one."""
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {gray.shape}")
    if min(gray.shape) < 2 * _MIN_BLOCK:  # no room for two blocks
        return None
    gray = gray.astype(np.float32, copy=False)  # differences of unsigned pixels would wrap
    lattices = []
    for axis in (0, 1):
        edges = _edges(gray, axis)
        largest = gray.shape[axis] / _MIN_CELLS
        lattice = None if edges is None else _axis_lattice(edges.astype(float), largest)
        if lattice is None:
            return None
        lattices.append(lattice)
    (down, down_lines, down_span), (across, across_lines, across_span) = lattices
    if down_lines + across_lines < _MIN_OCCUPANCY * (down_span + across_span):
        return None
    return down, across


def smooth_blocks(gray: np.ndarray) -> np.ndarray:
    """A nearest-neighbour enlargement -> nearly its linear enlargement (a box of
    _BOX_BLOCKS blocks each way), at most _SMOOTH_MAX_SIDE px; any other picture unchanged."""
    sizes = block_size(gray)
    if sizes is None:
        return gray
    height, width = gray.shape
    scale = min(1.0, _SMOOTH_MAX_SIDE / max(height, width))
    if scale < 1:
        reduced = resize(gray, round(width * scale), round(height * scale), Image.Resampling.BOX)
        gray, sizes = reduced.astype(gray.dtype), (sizes[0] * scale, sizes[1] * scale)
    boxes = tuple(max(1, round(_BOX_BLOCKS * size)) if size >= _MIN_BLOCK else 1 for size in sizes)
    return ndimage.uniform_filter(gray, size=boxes, mode="nearest").astype(gray.dtype)
