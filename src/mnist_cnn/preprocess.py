"""Turn any digit picture into the model's MNIST-style input (NumPy + Pillow only).

MNIST was made by cropping each digit to its bounding box, fitting it into 20x20 (aspect ratio
kept, anti-aliased) and pasting it into 28x28 with its centre of mass at the centre, white ink on
black. This module does the same for photos, scans and canvas drawings, with two steps more:
the stroke width and the slant of a digit far outside MNIST's usual range are brought to the
edge of that range, since a model trained on MNIST has seen few such digits. Reading and
decoding the picture, and its guards, live in `mnist_cnn.decode`.

Unless a comment says otherwise, a number below was tuned by hand on tests/realistic.py's
pictures and tests/test_preprocess.py; no record of that tuning was kept. Levels are on the
0-1 grayscale scale, lengths in pixels of the working copy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mnist_cnn.decode import ALLOWED_FORMATS as ALLOWED_FORMATS  # re-exported for serve.py
from mnist_cnn.decode import PreprocessError, Source, array_to_gray, load_image, source_label
from mnist_cnn.image_filters import (
    box_mean,
    label_components,
    otsu_threshold,
    pool,
    rank_filter,
    resize,
)

# MNIST's geometry (LeCun et al.): a digit fitted into a 20x20 box, pasted into 28x28.
_MNIST_SIDE, _MNIST_BOX = 28, 20
# A 28x28 array whose border ring (mean) and median are darker than this is already MNIST-style
# and passes unchanged (MNIST's own borders and background are 0).
_MNIST_DARK_MAX = 0.1
# Longest side of the working copy: larger pictures are reduced to 512 px, smaller ones
# enlarged to 128 px, so strokes are a few pixels wide without a full-size photo's cost.
_WORK_MAX, _WORK_MIN = 512, 128
_DENOISE_RADIUS = 1  # box blur radius, applied twice: pixel noise and JPEG blocking
# Polarity: the detail layer is the picture minus its local mean over a radius of the shorter
# side / this (wider than a stroke, narrower than uneven lighting).
_POLARITY_DIVISOR = 3
# Background (paper, lighting, shadows): a grey opening on a copy min-pooled by longest side //
# _BACKGROUND_GRID (to 64-127 px, for speed), radius shorter side / _OPENING_DIVISOR (a window
# a third of the side, wider than any stroke), box-smoothed with half that radius.
_BACKGROUND_GRID, _OPENING_DIVISOR, _SMOOTHING_DIVISOR = 64, 6, 2
# Median absolute deviation -> standard deviation of normally distributed noise (1 / 0.6745,
# the normal's 75th percentile): a robust sigma that the ink's own pixels do not inflate.
_MAD_TO_SIGMA = 1.4826
_MIN_CONTRAST = 0.08  # weakest ink (peak above the background median) still called ink
# Ink must beat noise: peak/pixel-noise measured < 60 on blank noisy pages, > 120 on digits.
_NOISE_FACTOR = 80.0
_PEAK_MIN_SIGMAS = 8  # ink's peak must also beat the median by this many background sigmas
_BACKGROUND_SIGMAS = 3  # within this many sigmas of the median is background
_OTSU_BINS = 128  # histogram bins of the Otsu threshold between background and ink
# The ink mask's threshold: at least this many sigmas above the background median, and this
# fraction of the way from the median to the brightest ink.
_MASK_MIN_SIGMAS, _MASK_MIN_PEAK_FRACTION = 4, 0.25
# Full-strength ink: this percentile (0-100) of the masked values, so a few very dark pixels
# do not set it. The output ramps up to it from a floor at least _BACKGROUND_SIGMAS and
# _RAMP_FLOOR_FRACTION of the way up from the median; between lie the anti-aliased edges.
_INK_PERCENTILE, _RAMP_FLOOR_FRACTION = 60, 0.15
_EDGE_RADIUS = 2  # output kept within this many pixels of the cleaned mask (anti-aliasing)
_SPECK_FRACTION = 0.05  # components lighter than this share of the main one are specks
# Components are labelled on a copy pooled by longest side // this (to 128-255 px): fast, and
# it bridges 1-px gaps in a stroke.
_LABEL_MAX_SIDE = 128
# A component belongs to the digit if its box comes within this fraction of the main
# component's larger side of the main component's box.
_NEAR_FRACTION = 0.5
# Stroke width (2 * area / boundary) brought into MNIST's typical range by this estimate, as
# a fraction of the digit's larger side (that measurement is not recorded); a wider target,
# 0.075-0.14, scored no better (benchmarks/README.md, "Predicting realistic pictures").
_WIDTH_LO, _WIDTH_HI = 0.09, 0.12
_THIN_MAX = 0.4  # thinning removes at most this fraction of the width: keeps font hairlines
_CROP_MARGIN = 2  # pixels kept around the ink box beyond the thickening radius
# Slant (horizontal shift per row down, from second moments; negative leans right) of MNIST's
# training digits: 25th and 75th percentiles, measured on the first 20,000 (median -0.12).
SLANT_RANGE = (-0.31, 0.06)
_MIN_SHEAR = 1e-3  # a slant correction smaller than this (px per row) is not applied
_FRAME_INK_MIN = 0.05  # pixels above this level make the ink box fitted into 20x20


class NoDigitError(PreprocessError):
    """The image holds no ink (blank page, uniform colour)."""


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
        return _to_mnist(gray).astype(np.float32)
    except PreprocessError:
        raise
    except Exception as error:  # contract: only PreprocessError escapes
        raise PreprocessError(f"internal error ({type(error).__name__}: {error})") from None


def _robust_sigma(values: np.ndarray, centre: float) -> float:
    return _MAD_TO_SIGMA * float(np.median(np.abs(values - centre)))


def _ink_layer(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grayscale picture -> (ink mask, ink strength in [0, 1]) on the working copy."""
    if np.ptp(gray) < _MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank (uniform, no ink)")
    height, width = gray.shape
    scale = min(_WORK_MAX / max(height, width), max(1.0, _WORK_MIN / max(height, width)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    if scale != 1:
        work = resize(gray, round(width * scale), round(height * scale), method)
    else:
        work = gray.astype(float)
    height, width = work.shape
    work = box_mean(box_mean(work, _DENOISE_RADIUS), _DENOISE_RADIUS)
    shorter = min(height, width)
    # Polarity: ink is the sparse tail of the detail layer, so its skew points to the ink side;
    # the gradient of uneven lighting has gone into the blur.
    detail = work - box_mean(work, max(1, shorter // _POLARITY_DIVISOR))
    if np.mean(detail**3) < 0:
        work = 1.0 - work  # dark ink on light paper (photo, scan)
    factor = max(1, max(height, width) // _BACKGROUND_GRID)  # pooling factor
    opening = max(1, shorter // (_OPENING_DIVISOR * factor))
    opened = rank_filter(rank_filter(pool(work, factor, np.min), opening, np.min), opening, np.max)
    background = box_mean(opened, max(1, opening // _SMOOTHING_DIVISOR))
    pooled_height, pooled_width = background.shape
    bilinear = Image.Resampling.BILINEAR
    full_size = resize(background, pooled_width * factor, pooled_height * factor, bilinear)
    signal = work - full_size[:height, :width]
    median = float(np.median(signal))
    sigma = _robust_sigma(signal, median)  # noise, texture, leftover lighting
    high_pass = work - box_mean(work, 1)
    pixel_noise = _robust_sigma(high_pass, np.median(high_pass))
    peak = float(signal.max())
    if peak - median < max(_MIN_CONTRAST, _PEAK_MIN_SIGMAS * sigma, _NOISE_FACTOR * pixel_noise):
        raise NoDigitError("no digit found: no ink stands out from the background")
    candidates = signal[signal > median + _BACKGROUND_SIGMAS * sigma]
    threshold = max(
        otsu_threshold(candidates, _OTSU_BINS) if candidates.size > 1 else peak,
        median + _MASK_MIN_SIGMAS * sigma,
        median + _MASK_MIN_PEAK_FRACTION * (peak - median),
    )
    mask = signal > threshold
    ink = float(np.percentile(signal[mask], _INK_PERCENTILE))
    floor = median + max(_BACKGROUND_SIGMAS * sigma, _RAMP_FLOOR_FRACTION * (ink - median))
    strength = np.clip((signal - floor) / max(ink - floor, 1e-6), 0.0, 1.0)
    return mask, strength


def _to_mnist(gray: np.ndarray) -> np.ndarray:
    mask, strength = _ink_layer(gray)
    height, width = mask.shape
    mask = _keep_digit(mask, strength)
    strength *= rank_filter(mask.astype(np.float64), _EDGE_RADIUS, np.max) > 0
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Stroke width into MNIST's range: thin pens and light fonts are thickened, heavy fonts
    # thinned. Blending two radii keeps the result continuous in the measured width.
    size = max(bottom - top, right - left)
    crop = mask[top:bottom, left:right]
    eroded = rank_filter(np.pad(crop, 1).astype(np.float64), 1, np.min)[1:-1, 1:-1] > 0
    boundary = crop & ~eroded
    stroke = 2.0 * crop.sum() / max(boundary.sum(), 1)
    radius = (np.clip(stroke, _WIDTH_LO * size, _WIDTH_HI * size) - stroke) / 2
    radius = max(radius, -_THIN_MAX * stroke)
    reduce = np.max if radius > 0 else np.min
    whole, fraction = int(abs(radius)), abs(radius) - int(abs(radius))
    margin = whole + _CROP_MARGIN
    top, bottom = max(0, top - margin), min(height, bottom + margin)
    left, right = max(0, left - margin), min(width, right + margin)
    crop = strength[top:bottom, left:right]
    thinner, thicker = rank_filter(crop, whole, reduce), rank_filter(crop, whole + 1, reduce)
    crop = (1 - fraction) * thinner + fraction * thicker
    return _frame(deslant(crop))


def _slant_and_row_centre(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    if total <= 0:
        return 0.0, 0.0
    ys, xs = np.arange(image.shape[0]), np.arange(image.shape[1])
    rows, cols = image.sum(axis=1), image.sum(axis=0)
    centre_y, centre_x = (rows * ys).sum() / total, (cols * xs).sum() / total
    var_y = (rows * (ys - centre_y) ** 2).sum() / total
    if var_y <= 0:
        return 0.0, float(centre_y)
    covariance = (image * np.outer(ys - centre_y, xs - centre_x)).sum() / total
    return float(covariance / var_y), float(centre_y)


def slant(image: np.ndarray) -> float:
    """Horizontal shift of the ink per row down (cov(x, y) / var(y) of the ink's mass)."""
    return _slant_and_row_centre(image)[0]


def deslant(crop: np.ndarray) -> np.ndarray:
    """White-on-black digit slanted beyond MNIST's central range (a tilted photo, backhand or
    steep italic writing) -> the same digit sheared to the nearest edge of that range, on a
    canvas widened to keep all of it; a digit inside the range is returned as it is.

    Measured on MNIST's test digits rotated by up to 15 degrees, it lifts the tutorial model's
    accuracy from 97.3% to 97.7% (benchmarks/README.md, "Predicting realistic pictures")."""
    measured, centre_y = _slant_and_row_centre(crop)
    shift = float(np.clip(measured, *SLANT_RANGE)) - measured
    if abs(shift) < _MIN_SHEAR:
        return crop
    height, width = crop.shape
    pad = int(np.ceil(abs(shift) * max(centre_y, height - centre_y))) + 1
    # Output pixel (X, Y) samples the input at (X - pad - shift * (Y - centre_y), Y).
    image = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    coefficients = (1.0, -shift, shift * centre_y - pad, 0.0, 1.0, 0.0)
    sheared = image.transform(
        (width + 2 * pad, height), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return np.asarray(sheared, dtype=np.float64)


def _keep_digit(mask: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Drop specks: components far lighter than the main stroke, or far away from it."""
    height, width = mask.shape
    factor = max(1, max(height, width) // _LABEL_MAX_SIDE)
    small, weight = pool(mask, factor, np.any), pool(strength * mask, factor, np.sum)
    labels = label_components(small)
    ids, component = np.unique(labels[small], return_inverse=True)
    ys, xs = np.nonzero(small)
    count = ids.size
    mass = np.bincount(component, weights=weight[small], minlength=count)
    top, left = np.full(count, ys.max()), np.full(count, xs.max())
    bottom, right = np.zeros(count, dtype=ys.dtype), np.zeros(count, dtype=xs.dtype)
    np.minimum.at(top, component, ys)
    np.minimum.at(left, component, xs)
    np.maximum.at(bottom, component, ys)
    np.maximum.at(right, component, xs)
    main = int(np.argmax(mass))
    reach = _NEAR_FRACTION * max(bottom[main] - top[main], right[main] - left[main], 1)
    near = (top <= bottom[main] + reach) & (bottom >= top[main] - reach)
    near &= (left <= right[main] + reach) & (right >= left[main] - reach)
    keep = np.isin(labels, ids[near & (mass >= _SPECK_FRACTION * mass[main])])
    return mask & np.repeat(np.repeat(keep, factor, axis=0), factor, axis=1)[:height, :width]


def _frame(crop: np.ndarray) -> np.ndarray:
    """Fit into 20x20 (aspect kept), paste into 28x28 with the centre of mass at (14, 14)."""
    ys, xs = np.nonzero(crop > _FRAME_INK_MIN)
    if ys.size == 0:
        raise NoDigitError("no digit found: the ink vanished after cleaning")
    crop = crop[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
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
