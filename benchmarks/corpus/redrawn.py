"""Handwritten digit classes redrawn along the pen's path: pencil, marker, hairline, canvas.

The path is the skeleton of an MNIST *test* digit (thresholded, stray dots dropped, spurs
pruned); a round brush of the class's width then sweeps along it, as a pencil, a thick marker,
a fine pen or a browser canvas's brush would. Uses `from_mnist` of handwriting.py.
"""

from __future__ import annotations

import functools

import numpy as np
from benchmarks.corpus import Rejected, Unusable, capture, geometry, strokes
from benchmarks.corpus.handwriting import (
    PICTURE_FILL,
    Generator,
    digit_height,
    from_mnist,
    on_paper,
)
from benchmarks.corpus.picture import Picture
from PIL import Image

PENCIL_DARKNESS = (0.12, 0.40)  # graphite's luma below the paper (the brief's 10-40%)
PENCIL_WIDTH_FRACTION = (0.05, 0.10)  # pencil line width / digit height: finer than a pen's
SKELETON_HEIGHT_PX = 96  # digit height the pen's path is traced at
SKELETON_LEVEL = 0.4  # MNIST grey level (0-1, after scaling its darkest to 1) inside the pen
STRAY_PIECE_FRACTION = 0.03  # ink pieces under 3% of the digit's ink are stray dots
SPUR_PX = 10  # skeleton branches shorter than this are thinning noise (MNIST strokes: ~13 px)
MARKER_WIDTH_FRACTION = (0.15, 0.24)  # marker stroke width / digit height (MNIST: about 0.12)
# A marker may shrink the digit's loops (0, 6, 8, 9) to this fraction of their area, no more:
# a filled loop makes an 8 a blob. Loops under LOOP_MIN_FRACTION of the box (MNIST's pinched,
# nearly closed ones) are not counted. Each loop is judged on its own.
MARKER_LOOP_KEPT = 0.4
MARKER_NARROWING = 0.9  # a marker that fills the loops is tried again this much narrower
LOOP_MIN_FRACTION = 0.005
HAIRLINE_WIDTH_PX = (1.2, 2.6)  # a fine pen at 100-200 px digit height
CANVAS_PX = 280  # the draw-a-digit page's canvas (static/index.html): 280x280
CANVAS_BRUSH_PX = (12, 20)
CANVAS_DIGIT_FILL = (0.5, 0.85)  # digit height / canvas height in browser drawings
CANVAS_MARGIN_PX = 6
# Black twice: the commonest canvas is a black brush on white. The transparent one is a canvas
# never filled, exported as PNG (the stroke's alpha is its coverage).
CANVAS_STYLES = ("black on white", "black on white", "white on black", "black on transparent")
MARKER_COLOURS = ("black", "black", "blue", "red", "green")  # black twice: the commonest
HAIRLINE_COLOURS = ("black", "blue")  # fineliners and ballpoints
HAIRLINE_BLUR_PX = (0.0, 0.4)  # sharp: a blurred hairline is the `blur` class's business
REDRAW_MARGIN_PX = 2.0  # paper kept around a redrawn digit before framing
# Graphite: the lead skips the paper's tooth (grain about a pixel across, covering
# GRAIN_MEAN of the stroke on average) and the hand presses unevenly over the digit.
GRAIN_CELL_PX = 1.3
GRAIN_MEAN, GRAIN_SPREAD = 0.8, 0.3
PRESSURE_MEAN, PRESSURE_SPREAD = 0.85, 0.2
PRESSURE_CELL_FRACTION = 1 / 3  # pressure changes over a third of the picture
PENCIL_GREY_SHARE = 0.5
PENCIL_FIBRE = 0.03  # paper texture shows more under faint graphite
PENCIL_LIGHT = (0.0, 0.2)
PENCIL_BLUR_PX = (0.3, 0.8)
PENCIL_NOISE = (0.005, 0.02)


def pencil(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    lines, _ = digit_path(digit)
    height = digit_height(rng)
    width = rng.uniform(*PENCIL_WIDTH_FRACTION) * height
    coverage = geometry.frame(redraw(lines, height, width), rng, fill=PICTURE_FILL)
    shape = coverage.shape
    grain = GRAIN_MEAN + GRAIN_SPREAD * capture.smooth_noise(shape, rng, GRAIN_CELL_PX)
    pressure_cell = max(shape) * PRESSURE_CELL_FRACTION
    pressure = PRESSURE_MEAN + PRESSURE_SPREAD * capture.smooth_noise(shape, rng, pressure_cell)
    paper = capture.everyday_paper(rng)
    darkness = rng.uniform(*PENCIL_DARKNESS)
    graphite = np.full(3, 1.0 - darkness / paper.mean()) + rng.normal(0, 0.01, 3)
    picture = capture.photograph(
        coverage * np.clip(grain, 0, 1) * np.clip(pressure, 0, 1),
        rng,
        paper=paper,
        ink=np.clip(graphite, 0, 1),
        grey=rng.random() < PENCIL_GREY_SHARE,
        fibre_strength=PENCIL_FIBRE,
        light_strength=rng.uniform(*PENCIL_LIGHT),
        blur_sigma=rng.uniform(*PENCIL_BLUR_PX),
        noise_sigma=rng.uniform(*PENCIL_NOISE),
    )
    source = f"darkness={darkness:.2f}; width={width:.0f}px"
    return Picture(capture.to_image(picture), source, coverage=coverage)


def digit_path(digit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pen's path (pruned skeleton) and the filled shape, at SKELETON_HEIGHT_PX."""
    return _digit_path(digit.tobytes(), digit.shape)


@functools.lru_cache(maxsize=64)  # a rejected draw redraws the same digit: trace it once
def _digit_path(pixels: bytes, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    digit = np.frombuffer(pixels, np.float32).reshape(size)
    shape = geometry.scale_to_height(digit, SKELETON_HEIGHT_PX) > SKELETON_LEVEL
    shape = strokes.drop_small_pieces(shape, STRAY_PIECE_FRACTION)
    return strokes.prune(strokes.skeleton(shape), SPUR_PX), shape


def redraw(
    lines: np.ndarray, height: float, width_px: float, margin: float = REDRAW_MARGIN_PX
) -> np.ndarray:
    """Coverage of the path drawn with a round brush, the whole digit `height` px tall."""
    top, left, bottom, right = geometry.ink_box(lines.astype(np.float32))
    scale = max(height - width_px, 1.0) / max(bottom - top, 1)
    pad = width_px / 2 + margin
    size = (int(np.ceil((right - left) * scale + 2 * pad)), int(np.ceil(height + 2 * margin)))
    offset = (pad - left * scale - 0.5 * scale, pad - top * scale - 0.5 * scale)
    return strokes.brush(lines, scale, width_px, size, offset)


def marker_width(lines: np.ndarray, shape: np.ndarray, fraction: float) -> float:
    """The widest marker (width / height) up to `fraction` that keeps the digit's loops open,
    narrowing by MARKER_NARROWING per step; Unusable when even the narrowest marker fills them.
    Checked at the skeleton's scale, where it is cheap."""
    min_area = round(LOOP_MIN_FRACTION * shape.size)
    while True:
        width = fraction * shape.shape[0]
        if strokes.loops_kept(shape, lines, width, min_area) >= MARKER_LOOP_KEPT:
            return fraction
        if fraction <= MARKER_WIDTH_FRACTION[0]:
            raise Unusable("the narrowest marker fills the loops")
        fraction = max(fraction * MARKER_NARROWING, MARKER_WIDTH_FRACTION[0])


def marker(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    lines, shape = digit_path(digit)
    height = digit_height(rng)
    fraction = marker_width(lines, shape, rng.uniform(*MARKER_WIDTH_FRACTION))
    width = fraction * height
    coverage = redraw(lines, height, width)
    colour = str(rng.choice(MARKER_COLOURS))
    coverage = geometry.frame(coverage, rng, fill=PICTURE_FILL)
    return on_paper(
        rng,
        coverage,
        ink=capture.pen_ink(rng, colour),
        source=f"width={width:.0f}px; colour={colour}",
    )


def hairline(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    lines, _ = digit_path(digit)
    width = rng.uniform(*HAIRLINE_WIDTH_PX)
    coverage = geometry.frame(redraw(lines, digit_height(rng), width), rng, fill=PICTURE_FILL)
    colour = str(rng.choice(HAIRLINE_COLOURS))
    return on_paper(
        rng,
        coverage,
        ink=capture.pen_ink(rng, colour),
        blur_px=HAIRLINE_BLUR_PX,
        source=f"width={width:.1f}px; colour={colour}",
    )


def canvas(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    lines, _ = digit_path(digit)
    brush_px = rng.uniform(*CANVAS_BRUSH_PX)
    drawn = geometry.crop_to_ink(
        redraw(lines, rng.uniform(*CANVAS_DIGIT_FILL) * CANVAS_PX, brush_px)
    )
    if max(drawn.shape) > CANVAS_PX - 2 * CANVAS_MARGIN_PX:
        raise Rejected("drawing wider than the canvas")
    coverage = np.zeros((CANVAS_PX, CANVAS_PX), np.float32)
    top = rng.integers(CANVAS_MARGIN_PX, CANVAS_PX - drawn.shape[0] - CANVAS_MARGIN_PX + 1)
    left = rng.integers(CANVAS_MARGIN_PX, CANVAS_PX - drawn.shape[1] - CANVAS_MARGIN_PX + 1)
    coverage[top : top + drawn.shape[0], left : left + drawn.shape[1]] = drawn
    style = str(rng.choice(CANVAS_STYLES))
    ink = np.round(coverage * 255).astype(np.uint8)
    if style == "black on white":
        image = Image.fromarray(255 - ink).convert(rng.choice(["L", "RGB"]))
    elif style == "white on black":
        image = Image.fromarray(ink).convert(rng.choice(["L", "RGB"]))
    else:  # a canvas never painted: transparent, the stroke black with alpha = coverage
        image = Image.fromarray(np.dstack([np.zeros_like(ink)] * 3 + [ink]), "RGBA")
    return Picture(image, f"brush={brush_px:.0f}px; {style}", coverage=coverage)


CLASSES: dict[str, Generator] = {
    "pencil": from_mnist(pencil),
    "marker_thick": from_mnist(marker),
    "pen_thin": from_mnist(hairline),
    "canvas": from_mnist(canvas),
}
