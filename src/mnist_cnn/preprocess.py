"""Turn any digit picture into the model's MNIST-style input (NumPy + Pillow only).

MNIST was made by cropping each digit to its bounding box, fitting it into 20x20 (aspect ratio
kept, anti-aliased) and pasting it into 28x28 with its centre of mass at the centre, white ink on
black. This module does the same for photos, scans and canvas drawings, with two steps more:
the stroke width and the slant of a digit far outside MNIST's usual range are brought to the
edge of that range, since a model trained on MNIST has seen few such digits.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_cnn import MnistCnnError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})
MAX_PIXELS = 40_000_000  # decompression-bomb guard, checked before any pixel is decoded
MAX_BYTES = 64 * 1024 * 1024

_WORK_MAX, _WORK_MIN = 512, 128  # longest side (px) of the working copy
_MIN_CONTRAST = 0.08  # weakest ink still called ink, on the 0..1 scale
_SPECK_FRACTION = 0.05  # components lighter than this share of the main one are specks
# Ink must beat noise: peak/pixel-noise measured < 60 on blank noisy pages, > 120 on digits.
_NOISE_FACTOR = 80.0
_WIDTH_LO, _WIDTH_HI, _THIN_MAX = 0.09, 0.12, 0.4
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as Pillow's convert("L")
# Slant (horizontal shift per row down, from second moments; negative leans right) of MNIST's
# training digits: 25th and 75th percentiles, measured on the first 20,000 (median -0.12).
SLANT_RANGE = (-0.31, 0.06)


class PreprocessError(MnistCnnError, ValueError):
    """The input cannot be turned into a digit image; the message names the problem."""


class NoDigitError(PreprocessError):
    """The image holds no ink (blank page, uniform colour)."""


Source = str | os.PathLike | bytes | bytearray | BinaryIO


def _label(source: object, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, str | os.PathLike):
        return os.path.basename(os.fspath(source)) or str(source)
    stream_name = getattr(source, "name", None)
    return os.path.basename(stream_name) if isinstance(stream_name, str) else "image"


def _read(source: Source, label: str) -> bytes:
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        elif isinstance(source, str | os.PathLike):
            with open(source, "rb") as file:
                data = file.read(MAX_BYTES + 1)
        elif callable(getattr(source, "read", None)):
            data = source.read(MAX_BYTES + 1)
        else:
            data = None
    except (OSError, ValueError, TypeError) as error:  # ValueError: NUL in path, closed file
        reason = getattr(error, "strerror", None) or error
        raise PreprocessError(f"{label}: cannot read ({reason})") from None
    if not isinstance(data, bytes):
        kind = type(source).__name__
        raise PreprocessError(f"{label}: expected a path, bytes or binary file, got {kind}")
    if not data:
        raise PreprocessError(f"{label}: empty file (zero bytes)")
    if len(data) > MAX_BYTES:
        raise PreprocessError(f"{label}: file too large (over {MAX_BYTES} bytes)")
    return data


def load_image(source: Source, *, name: str | None = None) -> np.ndarray:
    """Decode an image file (path, bytes or binary stream) to grayscale float32 in [0, 1].

    Large JPEGs come back reduced (by 2, 4 or 8, to at least 2048 px a side): plenty for a digit.
    """
    label = _label(source, name)
    data = _read(source, label)
    try:
        # Pillow itself refuses > 2x its MAX_IMAGE_PIXELS in open(); our tighter limit is
        # checked from the header before any pixel is decoded.
        img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        if img.size[0] * img.size[1] > MAX_PIXELS:
            size = f"{img.size[0]}x{img.size[1]}"
            raise PreprocessError(f"{label}: image too large ({size} pixels, limit {MAX_PIXELS})")
        img.seek(0)  # first frame of an animation
        if img.format == "JPEG":  # phone photos: let libjpeg decode at 1/2..1/8 scale, >= 2048 px
            img.draft(img.mode, (2048, 2048))
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # unreadable EXIF: keep the pixels as stored
            pass
        return _pil_to_gray(img)
    except PreprocessError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # warning if -W error
        raise PreprocessError(f"{label}: image too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        allowed = ", ".join(sorted(ALLOWED_FORMATS))
        raise PreprocessError(
            f"{label}: not an image (cannot identify image file; allowed formats: {allowed})"
        ) from None
    except (OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError):
        raise PreprocessError(f"{label}: truncated or corrupt image data") from None
    except Exception as error:  # Pillow plugins raise assorted types on hostile input
        raise PreprocessError(f"{label}: cannot decode image ({type(error).__name__})") from None


def _pil_to_gray(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I;16"):  # full 16-bit range, whatever the pixels use
        return np.asarray(img).astype(np.float32) / np.float32(65535)
    if img.mode in ("I", "F"):  # 32-bit; a 16-bit PNG may decode as "I"
        return _array_to_gray(np.asarray(img))
    if "transparency" in img.info or img.mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        img = img.convert("RGBA")
    elif img.mode != "L":
        img = img.convert("RGB")  # palette, CMYK, YCbCr, 1-bit
    return _array_to_gray(np.asarray(img))


def _array_to_gray(arr: np.ndarray) -> np.ndarray:
    """Any 2-D or HxWx{1,3,4} numeric array -> 2-D float32 in [0, 1]; alpha composited."""
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "uif" or arr.ndim not in (2, 3) or arr.size == 0:
        raise PreprocessError(f"expected a 2-D or HxWxC numeric array, got {arr.dtype} {arr.shape}")
    if (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or arr.shape[0] * arr.shape[
        1
    ] > MAX_PIXELS:
        raise PreprocessError(f"unsupported array shape {arr.shape} (1, 3 or 4 channels)")
    low, high = float(arr.min()), float(arr.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise PreprocessError("array holds NaN or infinite values")
    offset, span = 0.0, 1.0  # assumed range of the values
    if arr.dtype.kind in "ui" or high > 1.0 or low < 0.0:
        if low >= 0 and high <= 255:
            span = 255.0
        elif low >= 0 and high <= 65535:
            span = 65535.0
        else:  # no known range: stretch
            offset, span = low, max(high - low, 1e-30)

    def channel(i: int | None) -> np.ndarray:  # one channel at a time keeps memory low
        x = arr if i is None else arr[:, :, i]
        return np.clip((x.astype(np.float32) - np.float32(offset)) / np.float32(span), 0, 1)

    if arr.ndim == 2 or arr.shape[2] == 1:
        return channel(None if arr.ndim == 2 else 0)
    luma = channel(0) * 0.299 + channel(1) * 0.587 + channel(2) * 0.114
    if arr.shape[2] == 3:
        return luma
    alpha = channel(3)
    on_white, on_black = luma * alpha + (1.0 - alpha), luma * alpha
    # Dark drawing on a transparent canvas goes on white paper; only light ink that would
    # vanish on white (a white brush on a transparent canvas) goes on black.
    if np.ptp(on_white) < 0.2 and np.ptp(on_black) > np.ptp(on_white):
        return on_black
    return on_white


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, cut at the borders; cost independent of r."""
    for ax in (0, 1):
        n = a.shape[ax]
        pad = [(0, 0), (0, 0)]
        pad[ax] = (r + 1, r)
        c = np.cumsum(np.pad(a, pad), axis=ax)
        hi, lo = np.arange(2 * r + 1, n + 2 * r + 1), np.arange(n)
        s = np.take(c, hi, axis=ax) - np.take(c, lo, axis=ax)
        cnt = np.cumsum(np.pad(np.ones(n), (r + 1, r)))
        cnt = cnt[2 * r + 1 :] - cnt[:n]
        a = s / (cnt[:, None] if ax == 0 else cnt[None, :])
    return a


def _rank(a: np.ndarray, r: int, fn) -> np.ndarray:
    """Square min or max filter of radius r (grey erosion / dilation)."""
    if r < 1:
        return a
    p = np.pad(a, r, mode="edge")
    p = fn(sliding_window_view(p, 2 * r + 1, axis=0), axis=-1)
    return fn(sliding_window_view(p, 2 * r + 1, axis=1), axis=-1)


def _pool(a: np.ndarray, d: int, fn) -> np.ndarray:
    """Reduce d x d blocks with fn (the last partial blocks padded with edge values)."""
    h, w = a.shape
    a = np.pad(a, ((0, -h % d), (0, -w % d)), mode="edge")
    return fn(a.reshape(a.shape[0] // d, d, a.shape[1] // d, d), axis=(1, 3))


def _resize(a: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    return np.asarray(img.resize((max(1, width), max(1, height)), method), dtype=np.float64)


def _components(mask: np.ndarray) -> np.ndarray:
    """8-connected labels (label = flat index of a member pixel; background = mask.size)."""
    h, w = mask.shape
    lab = np.where(mask, np.arange(mask.size).reshape(h, w), mask.size)
    while True:
        p = np.pad(lab, 1, constant_values=mask.size)
        new = lab.copy()
        for dy in range(3):
            for dx in range(3):
                np.minimum(new, p[dy : dy + h, dx : dx + w], out=new)
        new = np.where(mask, new, mask.size)
        flat, on = new.ravel(), mask.ravel()
        flat[on] = flat[flat[on]]  # pointer jumping: follow a label to its own label
        if np.array_equal(new, lab):
            return lab
        lab = new


def _otsu(x: np.ndarray) -> float:
    hist, edges = np.histogram(x, bins=128)
    p = hist / max(hist.sum(), 1)
    mids = (edges[:-1] + edges[1:]) / 2
    w0, m0 = np.cumsum(p), np.cumsum(p * mids)
    between = (m0[-1] * w0 - m0) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    return float(edges[int(np.argmax(between[:-1])) + 1])


def _looks_mnist(a: np.ndarray) -> bool:
    ring = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return bool(a.min() >= 0 and a.max() <= 1 and ring.mean() < 0.1 and np.median(a) < 0.1)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Picture of one digit (2-D grayscale, or HxWx3/4) -> float32 (28, 28) in [0, 1], white
    ink on black. A 28x28 array already in MNIST style (dark background) is returned as is."""
    try:
        a = _array_to_gray(np.asarray(gray))
        if a.shape == (28, 28) and _looks_mnist(a) and a.max() > 0:
            return a
        return _to_mnist(a).astype(np.float32)
    except PreprocessError:
        raise
    except Exception as error:  # contract: only PreprocessError escapes
        raise PreprocessError(f"internal error ({type(error).__name__}: {error})") from None


def _to_mnist(a: np.ndarray) -> np.ndarray:
    if np.ptp(a) < _MIN_CONTRAST:
        raise NoDigitError("no digit found: the image is blank (uniform, no ink)")
    h, w = a.shape
    scale = min(_WORK_MAX / max(h, w), max(1.0, _WORK_MIN / max(h, w)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    a = _resize(a, round(w * scale), round(h * scale), method) if scale != 1 else a.astype(float)
    h, w = a.shape
    a = _box(_box(a, 1), 1)  # light blur: pixel noise and JPEG blocking
    side = min(h, w)
    # Polarity: ink is the sparse tail of the detail layer, so its skew points to the ink side;
    # the gradient of uneven lighting has gone into the blur.
    detail = a - _box(a, max(1, side // 3))
    if np.mean(detail**3) < 0:
        a = 1.0 - a  # dark ink on light paper (photo, scan)
    # Background (paper, lighting, shadows) = grey opening with a window wider than any stroke,
    # done on a min-pooled copy for speed, then smoothed and brought back to full size.
    d = max(1, max(h, w) // 64)
    k = max(1, side // (6 * d))
    bg = _box(_rank(_rank(_pool(a, d, np.min), k, np.min), k, np.max), max(1, k // 2))
    v = a - _resize(bg, bg.shape[1] * d, bg.shape[0] * d, Image.Resampling.BILINEAR)[:h, :w]
    med = float(np.median(v))
    sigma = 1.4826 * float(np.median(np.abs(v - med)))  # noise, texture, leftover lighting
    hp = a - _box(a, 1)
    noise = 1.4826 * float(np.median(np.abs(hp - np.median(hp))))  # pixel noise only
    peak = float(v.max())
    if peak - med < max(_MIN_CONTRAST, 8 * sigma, _NOISE_FACTOR * noise):
        raise NoDigitError("no digit found: no ink stands out from the background")
    cand = v[v > med + 3 * sigma]
    t = max(_otsu(cand) if cand.size > 1 else peak, med + 4 * sigma, med + 0.25 * (peak - med))
    mask = v > t
    ink = float(np.percentile(v[mask], 60))
    lo = med + max(3 * sigma, 0.15 * (ink - med))
    out = np.clip((v - lo) / max(ink - lo, 1e-6), 0.0, 1.0)  # keeps anti-aliased edges
    mask = _keep_digit(mask, out)
    out *= _rank(mask.astype(np.float64), 2, np.max) > 0
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Stroke width (2 * area / boundary) into MNIST's typical range, 9-12% of the box by this
    # estimate: thin pens and light fonts are thickened, heavy fonts thinned. Blending two
    # radii keeps the result continuous in the measured width.
    size = max(y1 - y0, x1 - x0)
    crop = mask[y0:y1, x0:x1]
    edge = crop & ~(_rank(np.pad(crop, 1).astype(np.float64), 1, np.min)[1:-1, 1:-1] > 0)
    width = 2.0 * crop.sum() / max(edge.sum(), 1)
    radius = (np.clip(width, _WIDTH_LO * size, _WIDTH_HI * size) - width) / 2
    radius = max(radius, -_THIN_MAX * width)  # keep hairlines of high-contrast fonts
    fn = np.max if radius > 0 else np.min
    r, frac = int(abs(radius)), abs(radius) - int(abs(radius))
    y0, y1, x0, x1 = max(0, y0 - r - 2), min(h, y1 + r + 2), max(0, x0 - r - 2), min(w, x1 + r + 2)
    crop = out[y0:y1, x0:x1]
    crop = (1 - frac) * _rank(crop, r, fn) + frac * _rank(crop, r + 1, fn)
    return _frame(deslant(crop))


def _slant_and_row_centre(a: np.ndarray) -> tuple[float, float]:
    total = float(a.sum())
    if total <= 0:
        return 0.0, 0.0
    ys, xs = np.arange(a.shape[0]), np.arange(a.shape[1])
    rows, cols = a.sum(axis=1), a.sum(axis=0)
    cy, cx = (rows * ys).sum() / total, (cols * xs).sum() / total
    var_y = (rows * (ys - cy) ** 2).sum() / total
    if var_y <= 0:
        return 0.0, float(cy)
    return float((a * np.outer(ys - cy, xs - cx)).sum() / total / var_y), float(cy)


def slant(a: np.ndarray) -> float:
    """Horizontal shift of the ink per row down (cov(x, y) / var(y) of the ink's mass)."""
    return _slant_and_row_centre(a)[0]


def deslant(crop: np.ndarray) -> np.ndarray:
    """White-on-black digit slanted beyond MNIST's central range (a tilted photo, backhand or
    steep italic writing) -> the same digit sheared to the nearest edge of that range, on a
    canvas widened to keep all of it; a digit inside the range is returned as it is.

    Measured on MNIST's test digits rotated by up to 15 degrees, it lifts the tutorial model's
    accuracy from 97.3% to 97.7% (benchmarks/README.md, "Predicting realistic pictures")."""
    s, cy = _slant_and_row_centre(crop)
    shift = float(np.clip(s, *SLANT_RANGE)) - s
    if abs(shift) < 1e-3:
        return crop
    h, w = crop.shape
    pad = int(np.ceil(abs(shift) * max(cy, h - cy))) + 1
    # Output pixel (X, Y) samples the input at (X - pad - shift * (Y - cy), Y).
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    coefficients = (1.0, -shift, shift * cy - pad, 0.0, 1.0, 0.0)
    sheared = img.transform(
        (w + 2 * pad, h), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
    )
    return np.asarray(sheared, dtype=np.float64)


def _keep_digit(mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Drop specks: components far lighter than the main stroke, or far away from it."""
    h, w = mask.shape
    d = max(1, max(h, w) // 128)  # label on a <=128 px copy: fast, and bridges 1-px gaps
    small, weight = _pool(mask, d, np.any), _pool(out * mask, d, np.sum)
    lab = _components(small)
    ids, inv = np.unique(lab[small], return_inverse=True)
    ys, xs = np.nonzero(small)
    n = ids.size
    mass = np.bincount(inv, weights=weight[small], minlength=n)
    y0, x0 = np.full(n, ys.max()), np.full(n, xs.max())
    y1, x1 = np.zeros(n, dtype=ys.dtype), np.zeros(n, dtype=xs.dtype)
    np.minimum.at(y0, inv, ys)
    np.minimum.at(x0, inv, xs)
    np.maximum.at(y1, inv, ys)
    np.maximum.at(x1, inv, xs)
    i = int(np.argmax(mass))
    reach = 0.5 * max(y1[i] - y0[i], x1[i] - x0[i], 1)
    near = (y0 <= y1[i] + reach) & (y1 >= y0[i] - reach)
    near &= (x0 <= x1[i] + reach) & (x1 >= x0[i] - reach)
    keep = np.isin(lab, ids[near & (mass >= _SPECK_FRACTION * mass[i])])
    return mask & np.repeat(np.repeat(keep, d, axis=0), d, axis=1)[:h, :w]


def _frame(crop: np.ndarray) -> np.ndarray:
    """Fit into 20x20 (aspect kept), paste into 28x28 with the centre of mass at (14, 14)."""
    ys, xs = np.nonzero(crop > 0.05)
    if ys.size == 0:
        raise NoDigitError("no digit found: the ink vanished after cleaning")
    crop = crop[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    box = np.clip(_resize(crop, round(w * scale), round(h * scale), Image.Resampling.LANCZOS), 0, 1)
    bh, bw = box.shape
    total = box.sum()
    if total <= 0:
        raise NoDigitError("no digit found: the ink vanished after resizing")
    cy = (box.sum(axis=1) * np.arange(bh)).sum() / total
    cx = (box.sum(axis=0) * np.arange(bw)).sum() / total
    oy = int(np.clip(round(14 - cy), 0, 28 - bh))
    ox = int(np.clip(round(14 - cx), 0, 28 - bw))
    out = np.zeros((28, 28))
    out[oy : oy + bh, ox : ox + bw] = box
    return out / out.max()


def preprocess(source: Source | np.ndarray, *, name: str | None = None) -> np.ndarray:
    """Image file, bytes, stream or array -> float32 (28, 28) MNIST-style input in [0, 1]."""
    if isinstance(source, np.ndarray):
        label, gray = name, source
    else:
        label = _label(source, name)
        gray = load_image(source, name=label)
    try:
        return to_mnist(gray)
    except PreprocessError as error:
        raise type(error)(f"{label}: {error}" if label else str(error)) from None
