"""One corpus picture: its pixels, label and source; its file bytes; the corpus's rules.

The rules are checked on the decoded file, so JPEG and 8-bit rounding count: the ink stays off
the picture's edge and contrasts with the paper around it by at least MIN_INK_CONTRAST.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from benchmarks.corpus import NoAcceptablePicture, Rejected, Unusable
from benchmarks.corpus.capture import gaussian_blur, luma
from benchmarks.corpus.geometry import FRAME_MARGIN_PX, UNTOUCHED_COVERAGE, ink_box
from PIL import Image

# Contrast rule of the corpus: the digit's ink differs from the paper right around it by at
# least this much (0-1 luma), median over the ink's core; below it a picture is no honest
# instance of a digit. Measured on the decoded file, so JPEG and 8-bit rounding count.
MIN_INK_CONTRAST = 0.10
INK_CORE_COVERAGE = 0.5  # coverage (fraction of the strongest) counted as the ink's core
# The paper around the ink: untouched pixels, weighted by a Gaussian of this sigma (fraction
# of the digit's height). Local, so a shadow across the page does not count as contrast.
BACKGROUND_REACH_FRACTION = 0.15
# zlib level of the PNG files: noisy photos barely compress at any level, and level 1 writes
# them several times faster than the default 6.
PNG_COMPRESS_LEVEL = 1
CONTRAST_REDUCTION = 4  # the paper level around the ink is estimated at 1/4 resolution
# Draws from one source picture before taking another: the rules reject at most about a fifth
# of the draws of any class (the faintest pencils), so 40 in a row mean this source cannot
# make the class.
MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class Picture:
    """One corpus picture before it is written."""

    image: Image.Image  # final pixels: mode L, RGB or RGBA
    source: str  # which MNIST index / font file / generator made it, with its main settings
    label: int | None = None  # the digit shown; None for non-digits
    coverage: np.ndarray | None = None  # (H, W) ink coverage, digits only (contrast check)
    jpeg_quality: int | None = None  # set: saved as .jpg at this quality; None: .png
    background: tuple[float, ...] = (1.0, 1.0, 1.0)  # what transparent pixels lie on (RGB)


SOURCE_SEPARATOR = "; "  # between the parts of a manifest's source (font names have spaces)


def join_source(*parts: str) -> str:
    """One manifest `source`: the non-empty parts joined by SOURCE_SEPARATOR."""
    return SOURCE_SEPARATOR.join(part for part in parts if part)


def encode(picture: Picture) -> bytes:
    """The picture's file bytes: JPEG at its quality, else PNG."""
    buffer = io.BytesIO()
    if picture.jpeg_quality is not None:
        picture.image.convert("RGB" if picture.image.mode != "L" else "L").save(
            buffer, "JPEG", quality=picture.jpeg_quality
        )
    else:
        picture.image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def decoded_luma(picture: Picture, data: bytes) -> np.ndarray:
    """(H, W) luma in [0, 1] as a reader of the file sees it: decoded when lossy, transparent
    pixels laid on the picture's background."""
    image = picture.image
    if picture.jpeg_quality is not None:
        image = Image.open(io.BytesIO(data))
        image.load()
    if image.mode in ("L", "RGB"):
        return np.asarray(image.convert("L"), np.float32) / 255.0
    rgba = np.asarray(image.convert("RGBA"), np.float32) / 255.0
    alpha = rgba[..., 3:]
    rgb = rgba[..., :3] * alpha + np.array(picture.background[:3], np.float32) * (1 - alpha)
    return luma(rgb)


def ink_contrast(gray: np.ndarray, coverage: np.ndarray) -> float:
    """Median |paper around the ink - ink| over the ink's core, 0-1 luma (see MIN_INK_CONTRAST).

    The paper's level near each pixel is a Gaussian-weighted mean of untouched pixels,
    computed at 1/CONTRAST_REDUCTION resolution (it varies slowly; this keeps the check cheap).
    """
    top, _, bottom, _ = ink_box(coverage)
    reach = BACKGROUND_REACH_FRACTION * (bottom - top) / CONTRAST_REDUCTION
    paper = (coverage < UNTOUCHED_COVERAGE).astype(np.float32)
    size = (gray.shape[1], gray.shape[0])
    small = (max(1, size[0] // CONTRAST_REDUCTION), max(1, size[1] // CONTRAST_REDUCTION))

    def reduced_blur(array: np.ndarray) -> np.ndarray:
        reduced = Image.fromarray(array).resize(small, Image.Resampling.BOX)
        blurred = gaussian_blur(np.asarray(reduced), reach)
        return np.asarray(Image.fromarray(blurred).resize(size, Image.Resampling.BILINEAR))

    local_paper = reduced_blur(gray * paper) / np.maximum(reduced_blur(paper), 1e-6)
    core = coverage >= INK_CORE_COVERAGE * coverage.max()
    return float(np.median(np.abs(local_paper[core] - gray[core])))


class Accepted(NamedTuple):
    picture: Picture
    data: bytes  # the file's bytes
    draws: int  # pictures drawn to get this one (1: the first passed the rules)
    contrast: float  # measured ink contrast (NaN for pictures without ink coverage)


def accept(build: Callable[[], Picture]) -> Accepted:
    """Draw pictures with `build` until one passes `check_digit`; NoAcceptablePicture after
    MAX_ATTEMPTS rejections, or at once when `build` finds its source Unusable."""
    reasons = []
    for draw in range(1, MAX_ATTEMPTS + 1):
        try:
            picture = build()
            data = encode(picture)
            return Accepted(picture, data, draw, check_digit(picture, data))
        except Unusable as unusable:
            raise NoAcceptablePicture(f"unusable source: {unusable}", draw) from None
        except Rejected as rejection:
            reasons.append(str(rejection))
    raise NoAcceptablePicture(
        f"no acceptable picture in {MAX_ATTEMPTS} draws: {reasons[-5:]}", MAX_ATTEMPTS
    )


def check_digit(picture: Picture, data: bytes) -> float:
    """Raise Rejected unless the digit is inside the picture and contrasts enough."""
    coverage = picture.coverage
    if coverage is None:
        return float("nan")
    if coverage.shape != (picture.image.height, picture.image.width):
        raise ValueError(f"coverage {coverage.shape} does not match the picture's size")
    margin = FRAME_MARGIN_PX - 1
    edges = np.concatenate(
        [
            coverage[:margin].ravel(),
            coverage[-margin:].ravel(),
            coverage[:, :margin].ravel(),
            coverage[:, -margin:].ravel(),
        ]
    )
    if edges.max(initial=0) > UNTOUCHED_COVERAGE:
        raise Rejected("ink touches the edge")
    contrast = ink_contrast(decoded_luma(picture, data), coverage)
    if contrast < MIN_INK_CONTRAST:
        raise Rejected(f"contrast {contrast:.3f}")
    return contrast
