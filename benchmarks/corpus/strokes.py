"""Pen strokes from a digit's shape: skeleton (thinning), round-brush redrawing, loop areas.

A handwritten MNIST digit is a blurred 28x28 raster; marker, hairline pen and browser-canvas
pictures need the pen's path instead, drawn again with another brush. The path is the
Zhang-Suen skeleton of the thresholded digit; the brush is a disc swept along it, drawn at
SUPERSAMPLE times the size and reduced, which antialiases it like a canvas does.
NumPy + Pillow only (no SciPy on this machine).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4  # brush strokes are drawn this many times larger, then reduced (antialiasing)
# Neighbour offsets (row, column) in Zhang-Suen's order P2..P9: north, then clockwise.
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
# Skeleton pixels joined by a brush segment: right, down-right, down, down-left (each pair
# of 8-connected neighbours once).
_FORWARD_NEIGHBOURS = ((0, 1), (1, 1), (1, 0), (1, -1))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean (H, W) mask to one-pixel-wide 8-connected lines."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        removed_any = False
        for step in (0, 1):
            centre = image[1:-1, 1:-1]
            height, width = centre.shape
            around = [
                image[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr, dc in _NEIGHBOURS
            ]
            count = sum(p.astype(np.int32) for p in around)
            transitions = sum(
                ((around[i] == 0) & (around[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8)
            )
            north, east, south, west = around[0], around[2], around[4], around[6]
            if step == 0:
                clear = ((north * east * south) == 0) & ((east * south * west) == 0)
            else:
                clear = ((north * east * west) == 0) & ((north * south * west) == 0)
            remove = (centre == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & clear
            if remove.any():
                centre[remove] = 0
                removed_any = True
        if not removed_any:
            return image[1:-1, 1:-1].astype(bool)


def prune(lines: np.ndarray, spur_px: int) -> np.ndarray:
    """Remove skeleton spurs: branches from an end to a junction shorter than `spur_px`.

    Thinning grows them at blunt stroke ends (a Y-shaped fork) and at bumps of the outline.
    The shortest spur goes first, then the skeleton is looked at again: of a Y-fork at a
    stroke's end one arm goes and the other, now the stroke's continuation, stays.
    """
    lines = lines.copy()
    while True:
        spurs = [path for path in _branches_from_ends(lines) if len(path) < spur_px]
        if not spurs:
            return lines
        for row, col in min(spurs, key=len):
            lines[row, col] = False


def _crossings(lines: np.ndarray) -> np.ndarray:
    """Crossing number of each pixel: how many separate line pieces touch it (1: an end,
    2: a line passing through, 3 or more: a junction). Unlike a neighbour count it is not
    fooled by the redundant corner pixels of a diagonal staircase."""
    padded = np.pad(lines.astype(np.int8), 1)
    height, width = lines.shape
    around = [padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr, dc in _NEIGHBOURS]
    return (
        sum(((around[i] == 0) & (around[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
        * lines
    )


def _branches_from_ends(lines: np.ndarray) -> list[list[tuple[int, int]]]:
    """Pixels from each end up to (not including) the first junction it reaches.

    A path reaching another end without a junction is a whole stroke, not a branch.
    """
    crossings = _crossings(lines)
    height, width = lines.shape
    branches = []
    for start in zip(*np.nonzero(crossings == 1), strict=True):
        path, seen = [], set()
        current = (int(start[0]), int(start[1]))
        while True:
            path.append(current)
            seen.add(current)
            following = [(current[0] + dr, current[1] + dc) for dr, dc in _NEIGHBOURS]
            following = [
                (row, col)
                for row, col in following
                if 0 <= row < height
                and 0 <= col < width
                and lines[row, col]
                and (row, col) not in seen
            ]
            if not following:
                break  # the other end of a lone stroke
            junctions = [pixel for pixel in following if crossings[pixel] >= 3]
            if junctions:
                branches.append(path)
                break
            seen.update(following[1:])  # staircase corners: one step, not a fork
            current = following[0]
    return branches


def pieces(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The mask's 8-connected pieces, each as (rows, cols) index arrays."""
    remaining = set(zip(*np.nonzero(mask), strict=True))
    found = []
    while remaining:
        piece, frontier = [], [remaining.pop()]
        while frontier:
            row, col = frontier.pop()
            piece.append((row, col))
            for dr, dc in _NEIGHBOURS:
                neighbour = (row + dr, col + dc)
                if neighbour in remaining:
                    remaining.remove(neighbour)
                    frontier.append(neighbour)
        rows, cols = zip(*piece, strict=True)
        found.append((np.array(rows), np.array(cols)))
    return found


def drop_small_pieces(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """The mask without pieces under `min_fraction` of its pixels (stray dots of ink a
    scanner caught; a pen redrawing the digit would not make them)."""
    kept = np.zeros_like(mask, dtype=bool)
    total = int(mask.sum())
    for rows, cols in pieces(mask):
        if len(rows) >= min_fraction * total:
            kept[rows, cols] = True
    return kept


def brush(
    lines: np.ndarray,
    scale: float,
    width_px: float,
    size: tuple[int, int],
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Sweep a round brush `width_px` wide along skeleton `lines` scaled by `scale`.

    Returns float32 coverage of `size` (width, height), antialiased; the skeleton pixel (r, c)
    lands at (offset + (c, r) * scale) in the output.
    """
    big_width, big_height = size[0] * SUPERSAMPLE, size[1] * SUPERSAMPLE
    canvas = Image.new("L", (big_width, big_height), 0)
    draw = ImageDraw.Draw(canvas)
    radius = width_px * SUPERSAMPLE / 2

    def point(row: int, col: int) -> tuple[float, float]:
        return (
            (offset[0] + (col + 0.5) * scale) * SUPERSAMPLE,
            (offset[1] + (row + 0.5) * scale) * SUPERSAMPLE,
        )

    rows, cols = np.nonzero(lines)
    on = set(zip(rows.tolist(), cols.tolist(), strict=True))
    for row, col in on:
        x, y = point(row, col)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
        for dr, dc in _FORWARD_NEIGHBOURS:
            if (row + dr, col + dc) in on:
                draw.line(
                    (x, y, *point(row + dr, col + dc)), fill=255, width=max(1, round(2 * radius))
                )
    small = canvas.resize(size, Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def enclosed(mask: np.ndarray) -> np.ndarray:
    """Paper enclosed by ink (the loops of 0, 4, 6, 8, 9): pixels not reachable from outside.

    Paper spreads from the border through 4-connected paper pixels (8-connected ink closes
    a loop); what it never reaches is enclosed.
    """
    paper = ~np.pad(mask.astype(bool), 1)
    outside = np.zeros_like(paper)
    outside[0, :] = outside[-1, :] = outside[:, 0] = outside[:, -1] = True
    while True:
        grown = outside.copy()
        grown[1:, :] |= outside[:-1, :]
        grown[:-1, :] |= outside[1:, :]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= paper
        if np.array_equal(grown, outside):
            return (paper & ~outside)[1:-1, 1:-1]
        outside = grown


def loops_kept(shape: np.ndarray, lines: np.ndarray, width_px: float, min_area: int) -> float:
    """Smallest share of any loop of `shape` (over `min_area` pixels) still enclosed paper
    when `lines` is redrawn `width_px` wide at the same scale; 1.0 without such loops."""
    loops = [piece for piece in pieces(enclosed(shape)) if len(piece[0]) >= min_area]
    if not loops:
        return 1.0
    border = int(np.ceil(width_px)) + 1
    height, width = shape.shape
    drawn = brush(np.pad(lines, border), 1.0, width_px, (width + 2 * border, height + 2 * border))
    still = enclosed(drawn > 0.5)[border:-border, border:-border]
    return min(float(still[rows, cols].mean()) for rows, cols in loops)
