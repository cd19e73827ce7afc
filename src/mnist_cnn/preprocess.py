"""Turn any digit picture into the model's MNIST-style input (NumPy + Pillow only).

MNIST was made by cropping each digit to its bounding box, fitting it into 20x20 (aspect ratio
kept, anti-aliased) and pasting it into 28x28 with its centre of mass at the centre, white ink on
black. This module does the same for photos, scans and canvas drawings, with two steps more:
strokes thinner than MNIST's usual range are thickened, and a digit slanted far outside it is
sheared back, each to the edge of that range, since a model trained on MNIST has seen few such
digits. Ink that is the outline of a solid shape (a photographed coat or bag) is refused
(`mnist_cnn.solid_shape`).
Reading and decoding the picture, and its guards, live in `mnist_cnn.decode`; which ink
components are the digit, in `mnist_cnn.digit_components`; a nearest-neighbour enlargement's
blocks are smoothed first (`mnist_cnn.blocky`).

Unless a comment says otherwise, a number below was tuned by hand on tests/realistic.py's
pictures and tests/test_preprocess.py; no record of that tuning was kept. Levels are on the
0-1 grayscale scale, lengths in pixels of the working copy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from mnist_cnn.background_noise import background_level, lag_sigma
from mnist_cnn.blocky import smooth_blocks
from mnist_cnn.decode import ALLOWED_FORMATS as ALLOWED_FORMATS  # re-exported for serve.py
from mnist_cnn.decode import NoDigitError as NoDigitError  # re-exported: callers catch it here
from mnist_cnn.decode import PreprocessError, Source, array_to_gray, load_image, source_label
from mnist_cnn.digit_components import keep_digit
from mnist_cnn.image_filters import (
    EIGHT_CONNECTED,
    hysteresis,
    ink_box,
    otsu_threshold,
    pool,
    resize,
)
from mnist_cnn.slant import SLANT_RANGE as SLANT_RANGE  # re-exported for benchmarks
from mnist_cnn.slant import deslant
from mnist_cnn.slant import slant as slant  # re-exported for benchmarks
from mnist_cnn.solid_shape import refuse_solid_outline

# MNIST's geometry (LeCun et al.): a digit fitted into a 20x20 box, pasted into 28x28.
_MNIST_SIDE, _MNIST_BOX = 28, 20
# A 28x28 array whose border ring (mean) and median are darker than this is already MNIST-style
# and passes unchanged (MNIST's own borders and background are 0).
_MNIST_DARK_MAX = 0.1
# Longest side of the working copy: larger pictures are reduced to 512 px, smaller ones
# enlarged to 128 px, so strokes are a few pixels wide without a full-size photo's cost.
_WORK_MAX, _WORK_MIN = 512, 128
# Smoothing before ink is looked for (Gaussian sigma): _DIGIT_STROKE_SCALE of the digit's
# larger side, at most _STROKE_SCALE of the working copy's shorter side and at least
# _SMOOTHING_MIN_PX. Narrower than the thinnest stroke, wide enough that grain, pencil texture
# and sensor noise average out and a faint but coherent stroke stands out. The digit's size
# comes from a first look, smoothed by _FIRST_STROKE_SCALE of the shorter side on a copy of at
# most _FIRST_WORK_MAX px (a quarter of the work). _STROKE_SCALE was chosen on the tune split of
# the real-world corpus (benchmarks/corpus), whose digits fill 50-85% of the picture: 1.5% of
# the digit's side is that scale for a digit filling two thirds. A digit photographed small on
# a large sheet got the same sigma, wider than its strokes (benchmarks/README.md, "Digits small
# in the picture"); the first look's scale and size were chosen on that corpus's tune split.
_STROKE_SCALE, _DIGIT_STROKE_SCALE, _SMOOTHING_MIN_PX = 0.01, 0.015, 1.0
# The first look measures the background's level and noise on every _FIRST_STEP-th pixel
# down and across: a quarter of the medians' work; neighbouring pixels of the smoothed copy
# are alike, and only the digit's size is taken from this look.
_FIRST_STROKE_SCALE, _FIRST_WORK_MAX, _FIRST_STEP = 0.0035, 256, 2
# Polarity: the detail layer is the picture minus its Gaussian blur of sigma this fraction of
# the shorter side. Narrower, thick marker strokes pass into the blur and vote for the paper;
# wider, a bright patch of light votes for itself. Chosen on the tune split of the real-world
# corpus (benchmarks/corpus): 0.1-0.12 get every digit's polarity right, 0.11 with the widest
# margin (0.08 misses thick markers, 0.15 and the old box window of a third of the side miss
# faint pencil under a spot of light).
_POLARITY_SCALE = 0.11
# Background (paper, lighting, shadows): a grey opening on a copy min-pooled by longest side //
# _BACKGROUND_GRID (to 64-127 px, for speed), radius shorter side / _OPENING_DIVISOR (a window
# a third of the side, wider than any stroke), box-smoothed with half that radius.
_BACKGROUND_GRID, _OPENING_DIVISOR, _SMOOTHING_DIVISOR = 64, 6, 2
# Lag of the second noise estimate (background_noise.lag_sigma), in smoothing sigmas: far
# enough that smoothed noise is uncorrelated across it, near enough that a soft stroke
# changes little over it (chosen on the tune split of the real-world corpus: with it, its 7
# refused blurred and pencil digits of 7,600 are read, see benchmarks/README.md).
_LAG_SMOOTHINGS = 3
_MIN_CONTRAST = 0.08  # weakest ink (peak above the background level) still called ink
_PEAK_MIN_SIGMAS = 8  # ink's peak must also beat the level by this many background sigmas
_BACKGROUND_SIGMAS = 3  # within this many sigmas of the level is background
_OTSU_BINS = 128  # histogram bins of the Otsu threshold between background and ink
# The ink mask's threshold: at least this many sigmas above the background median, and this
# fraction of the way from the median to the brightest ink.
_MASK_MIN_SIGMAS, _MASK_MIN_PEAK_FRACTION = 4, 0.25
# Hysteresis: pixels above a low threshold join the ink where they connect to pixels above
# that (high) threshold, so a soft or faint stretch of a stroke is not cut out. The low one is
# at least _LOW_SIGMAS above the level and _LOW_FRACTION of the way up to the high one
# (chosen on the tune split of the real-world corpus, benchmarks/corpus).
_LOW_SIGMAS, _LOW_FRACTION = 3, 0.5
# Full-strength ink: this percentile (0-100) of the masked values, so a few very dark pixels
# do not set it. The output ramps up to it from a floor at least _BACKGROUND_SIGMAS and
# _RAMP_FLOOR_FRACTION of the way up from the median; between lie the anti-aliased edges.
_INK_PERCENTILE, _RAMP_FLOOR_FRACTION = 60, 0.15
_EDGE_RADIUS = 2  # output kept within this many pixels of the cleaned mask (anti-aliasing)
# The digit (what keep_digit keeps) must span at least this fraction of the picture's shorter
# side; smaller ink is a speck or dust (chosen on the tune split of the real-world corpus,
# benchmarks/corpus: its digits span 40% and more, its specks at most 3%).
_MIN_DIGIT_FRACTION = 0.1
# Stroke width (2 * area / boundary) below this fraction of the digit's larger side, the low
# edge of MNIST's typical range by this estimate (that measurement is not recorded), is
# thickened to it. Wider strokes are left as they are: thinning them to 0.12 cost more
# blurred and low-resolution digits than it saved thick-marker ones, with the packaged model
# and the tutorial one alike (benchmarks/README.md, "Preprocessing variants, paired").
_WIDTH_MIN = 0.09
_CROP_MARGIN = 2  # pixels kept around the ink box beyond the thickening radius
_FRAME_INK_MIN = 0.05  # pixels above this level make the ink box fitted into 20x20


def _looks_mnist(gray: np.ndarray) -> bool:
    ring = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    dark = ring.mean() < _MNIST_DARK_MAX and np.median(gray) < _MNIST_DARK_MAX
    return bool(gray.min() >= 0 and gray.max() <= 1 and dark)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Picture of one digit (2-D grayscale, or HxWx3/4) -> float32 (28, 28) in [0, 1], white
    ink on black. A 28x28 array already in MNIST style (dark background) is returned as is."""
    try:
        gray = array_to_gray(np.asarray(gray))
        if gray.shape == (_MNIST_SIDE, _MNIST_SIDE) and _looks_mnist(gray) and gray.max() > 0:
            return gray
        return _to_mnist(smooth_blocks(gray)).astype(np.float32)
    except PreprocessError:
        raise
    except Exception as error:  # contract: only PreprocessError escapes
        raise PreprocessError(f"internal error ({type(error).__name__}: {error})") from None


def _smoothing(shape: tuple[int, ...], stroke_scale: float) -> float:
    """Sigma of the smoothing before ink is looked for: `stroke_scale` of the shorter side."""
    return max(_SMOOTHING_MIN_PX, stroke_scale * min(shape))


def _working_copy(gray: np.ndarray, stroke_scale: float, work_max: int) -> np.ndarray:
    """Grayscale picture -> working copy (longest side 128-`work_max` px), smoothed at the
    stroke scale, ink bright."""
    height, width = gray.shape
    scale = min(work_max / max(height, width), max(1.0, _WORK_MIN / max(height, width)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    if scale != 1:
        work = resize(gray, round(width * scale), round(height * scale), method)
    else:
        work = gray.astype(float)
    work = ndimage.gaussian_filter(work, _smoothing(work.shape, stroke_scale), mode="nearest")
    # Polarity: ink is the sparse tail of the detail layer (a copy pooled to _BACKGROUND_GRID
    # minus its Gaussian blur), so its skew points to the ink side.
    factor = max(1, max(work.shape) // _BACKGROUND_GRID)
    pooled = pool(work, factor, np.add) / factor**2  # block means
    blurred = ndimage.gaussian_filter(pooled, _POLARITY_SCALE * min(pooled.shape), mode="nearest")
    if np.mean((pooled - blurred) ** 3) < 0:
        work = 1.0 - work  # dark ink on light paper (photo, scan)
    return work


def _background(work: np.ndarray) -> np.ndarray:
    """Paper, lighting and shadows under bright ink: a grey opening wider than any stroke."""
    height, width = work.shape
    factor = max(1, max(height, width) // _BACKGROUND_GRID)  # pooling factor
    opening = max(1, min(height, width) // (_OPENING_DIVISOR * factor))
    pooled = pool(work, factor, np.minimum)
    opened = ndimage.grey_opening(pooled, size=2 * opening + 1, mode="nearest")
    smoothing = 2 * max(1, opening // _SMOOTHING_DIVISOR) + 1
    background = ndimage.uniform_filter(opened, smoothing, mode="nearest")
    pooled_height, pooled_width = background.shape
    bilinear = Image.Resampling.BILINEAR
    full_size = resize(background, pooled_width * factor, pooled_height * factor, bilinear)
    return full_size[:height, :width]


def _digit_ink(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grayscale picture -> the digit's (ink mask, ink strength, working copy), smoothed at
    the digit's scale (see _DIGIT_STROKE_SCALE)."""
    if np.ptp(gray) < _MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank (uniform, no ink)")
    try:
        mask, strength, _ = _ink_layer(gray, _FIRST_STROKE_SCALE, _FIRST_WORK_MAX, _FIRST_STEP)
        digit_side = _extent(keep_digit(mask, strength, _OPENING_DIVISOR)) / min(mask.shape)
    except NoDigitError:
        digit_side = 1.0  # nothing stood out finely: smooth at the picture's scale
    stroke_scale = min(_STROKE_SCALE, max(_FIRST_STROKE_SCALE, _DIGIT_STROKE_SCALE * digit_side))
    try:
        mask, strength, work = _ink_layer(gray, stroke_scale, _WORK_MAX)
    except NoDigitError:
        if stroke_scale == _FIRST_STROKE_SCALE:
            raise
        mask, strength, work = _ink_layer(gray, _FIRST_STROKE_SCALE, _WORK_MAX)
    return keep_digit(mask, strength, _OPENING_DIVISOR), strength, work


def _extent(mask: np.ndarray) -> int:
    """Larger side of the box around a mask's pixels."""
    top, bottom, left, right = ink_box(mask)  # keep_digit keeps the main component
    return max(bottom - top, right - left)


def _ink_layer(
    gray: np.ndarray, stroke_scale: float, work_max: int, step: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grayscale picture -> (ink mask, ink strength in [0, 1], the working copy itself); the
    background's level and noise measured on every `step`-th pixel down and across."""
    work = _working_copy(gray, stroke_scale, work_max)
    signal = work - _background(work)
    level, sigma = background_level(signal[::step, ::step])
    peak = float(signal.max())
    if peak - level < max(_MIN_CONTRAST, _PEAK_MIN_SIGMAS * sigma):
        # A large blurred digit (or no ink at all): measure the noise again, by differences.
        lag = max(2, round(_LAG_SMOOTHINGS * _smoothing(signal.shape, stroke_scale)))
        sigma = min(sigma, lag_sigma(signal, lag))
    if peak - level < max(_MIN_CONTRAST, _PEAK_MIN_SIGMAS * sigma):
        raise NoDigitError("no digit found: no ink stands out from the background")
    candidates = signal[signal > level + _BACKGROUND_SIGMAS * sigma]
    high = max(
        otsu_threshold(candidates, _OTSU_BINS) if candidates.size > 1 else peak,
        level + _MASK_MIN_SIGMAS * sigma,
        level + _MASK_MIN_PEAK_FRACTION * (peak - level),
    )
    low = level + max(_LOW_SIGMAS * sigma, _LOW_FRACTION * (high - level))
    mask = hysteresis(signal, low, high)
    ink = float(np.percentile(signal[mask], _INK_PERCENTILE))
    floor = level + max(_BACKGROUND_SIGMAS * sigma, _RAMP_FLOOR_FRACTION * (ink - level))
    strength = np.clip((signal - floor) / max(ink - floor, 1e-6), 0.0, 1.0)
    return mask, strength, work


def _to_mnist(gray: np.ndarray) -> np.ndarray:
    mask, strength, work = _digit_ink(gray)
    height, width = mask.shape
    top, bottom, left, right = ink_box(mask)  # keep_digit keeps the main component
    size = max(bottom - top, right - left)  # the digit's extent
    if size < _MIN_DIGIT_FRACTION * min(height, width):
        raise NoDigitError("no digit found: only a speck stands out from the background")
    strength *= ndimage.maximum_filter(mask, size=2 * _EDGE_RADIUS + 1)
    # Stroke width up to MNIST's range: thin pens and light fonts are thickened. Blending two
    # radii keeps the result continuous in the measured width.
    crop = mask[top:bottom, left:right]
    eroded = ndimage.binary_erosion(crop, structure=EIGHT_CONNECTED)  # outside counts as paper
    boundary = crop & ~eroded
    stroke = 2.0 * crop.sum() / max(boundary.sum(), 1)
    refuse_solid_outline(work, mask, stroke)
    radius = max(0.0, (_WIDTH_MIN * size - stroke) / 2)
    whole, fraction = int(radius), radius - int(radius)
    margin = whole + _CROP_MARGIN
    top, bottom = max(0, top - margin), min(height, bottom + margin)
    left, right = max(0, left - margin), min(width, right + margin)
    crop = strength[top:bottom, left:right]
    if radius > 0:
        inner = ndimage.maximum_filter(crop, size=2 * whole + 1, mode="nearest") if whole else crop
        outer = ndimage.maximum_filter(crop, size=2 * whole + 3, mode="nearest")
        crop = (1 - fraction) * inner + fraction * outer
    return frame_digit(deslant(crop))


def frame_digit(crop: np.ndarray) -> np.ndarray:
    """Fit into 20x20 (aspect kept), paste into 28x28 with the centre of mass at (14, 14)."""
    ink = ink_box(crop > _FRAME_INK_MIN)
    if ink is None:
        raise NoDigitError("no digit found: the ink vanished after cleaning")
    top, bottom, left, right = ink
    crop = crop[top:bottom, left:right]
    height, width = crop.shape
    scale = float(_MNIST_BOX) / max(height, width)
    resized = resize(crop, round(width * scale), round(height * scale), Image.Resampling.LANCZOS)
    box = np.clip(resized, 0, 1)
    box_height, box_width = box.shape
    total = box.sum()
    if total <= 0:
        raise NoDigitError("no digit found: the ink vanished after resizing")
    centre_y = (box.sum(axis=1) * np.arange(box_height)).sum() / total
    centre_x = (box.sum(axis=0) * np.arange(box_width)).sum() / total
    middle = _MNIST_SIDE // 2
    row = int(np.clip(round(middle - centre_y), 0, _MNIST_SIDE - box_height))
    col = int(np.clip(round(middle - centre_x), 0, _MNIST_SIDE - box_width))
    framed = np.zeros((_MNIST_SIDE, _MNIST_SIDE))
    framed[row : row + box_height, col : col + box_width] = box
    return framed / framed.max()


def preprocess(source: Source | np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Image file, bytes, stream or array -> float32 (28, 28) MNIST-style input in [0, 1]."""
    if isinstance(source, np.ndarray):
        label, gray = name, source
    else:
        label = source_label(source, name)
        gray = load_image(source, name=label)
    try:
        return to_mnist(gray)
    except PreprocessError as error:
        raise type(error)(f"{label}: {error}" if label else str(error)) from None
