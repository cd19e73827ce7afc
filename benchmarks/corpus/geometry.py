"""Where the ink goes: scaling, rotation, perspective and framing of a coverage array.

Every step acts on the coverage alone (float32 (H, W), 1 = ink), padding first so nothing is
lost, and `frame` places the ink at least FRAME_MARGIN_PX inside the picture: no digit is cut.
"""

from __future__ import annotations

import numpy as np
from benchmarks.corpus import Rejected
from PIL import Image

UNTOUCHED_COVERAGE = 0.02  # coverage below which a pixel is paper
FRAME_MARGIN_PX = 2  # ink never comes closer than this to the picture's edge
# Paper added before a rotation, fraction of the longer side per edge: a 20-degree turn of a
# tall digit needs about a quarter; perspective adds its own corner displacement on top.
ROTATION_PAD = 0.35
# `make --fill`: one range of ink height / picture height for every class, instead of each
# class's own (a digit photographed small on a large sheet, say); None keeps the classes' own.
fill_override: tuple[float, float] | None = None


def ink_box(coverage: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the ink, bottom/right exclusive; Rejected when empty."""
    rows = np.flatnonzero(coverage.max(axis=1) > UNTOUCHED_COVERAGE)
    cols = np.flatnonzero(coverage.max(axis=0) > UNTOUCHED_COVERAGE)
    if len(rows) == 0:
        raise Rejected("no ink")
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def resize(coverage: np.ndarray, width: int, height: int, smooth: bool = True) -> np.ndarray:
    """Resize a float array (bicubic when `smooth`, else nearest neighbour)."""
    image = Image.fromarray(coverage.astype(np.float32))
    method = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    return np.clip(np.asarray(image.resize((max(width, 1), max(height, 1)), method)), 0, 1)


def crop_to_ink(coverage: np.ndarray) -> np.ndarray:
    top, left, bottom, right = ink_box(coverage)
    return coverage[top:bottom, left:right]


def scale_to_height(coverage: np.ndarray, height: int) -> np.ndarray:
    """Crop to the ink and scale it (aspect kept) so the ink is `height` pixels tall."""
    ink = crop_to_ink(coverage)
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    return resize(ink, width, height)


def pad(coverage: np.ndarray, fraction: float) -> np.ndarray:
    """Add empty paper around the coverage, `fraction` of its longer side on every edge."""
    border = int(np.ceil(max(coverage.shape) * fraction)) + 1
    return np.pad(coverage, border)


def transform(
    coverage: np.ndarray, rng: np.random.Generator, *, max_degrees: float, perspective: float = 0.0
) -> tuple[np.ndarray, str]:
    """Rotate by up to `max_degrees` and tilt the view (corners moved by up to `perspective`
    of the side); returns the new coverage, padded so nothing is lost, and a description."""
    padded = pad(coverage, ROTATION_PAD + perspective)
    degrees = rng.uniform(-max_degrees, max_degrees)
    image = Image.fromarray(padded.astype(np.float32)).rotate(degrees, Image.Resampling.BICUBIC)
    if perspective > 0:
        height, width = padded.shape
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
        moved = corners + rng.uniform(-perspective, perspective, (4, 2)) * [width, height]
        image = image.transform(
            (width, height),
            Image.Transform.PERSPECTIVE,
            _perspective_coefficients(corners, moved),
            Image.Resampling.BICUBIC,
        )
    return np.clip(np.asarray(image), 0, 1), f"rotation={degrees:.1f}"


def _perspective_coefficients(output: np.ndarray, source: np.ndarray) -> tuple[float, ...]:
    """Pillow's 8 PERSPECTIVE coefficients mapping each `output` corner to its `source`."""
    rows = []
    for (x, y), (u, v) in zip(output, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return tuple(np.linalg.solve(np.array(rows), source.ravel()))


def frame(
    coverage: np.ndarray,
    rng: np.random.Generator,
    *,
    fill: tuple[float, float],
    aspect: tuple[float, float] = (0.8, 1.25),
    margin_px: int = FRAME_MARGIN_PX,
) -> np.ndarray:
    """Place the ink in a picture it fills `fill` of (in height), at a random position.

    The picture's width is its height times a draw from `aspect`, widened if the ink needs it;
    the ink stays at least `margin_px` from every edge, so nothing is cut off. A
    `fill_override` set by `make --fill` replaces `fill`.
    """
    fill = fill if fill_override is None else fill_override
    ink = crop_to_ink(coverage)
    ink_height, ink_width = ink.shape
    height = max(ink_height + 2 * margin_px, round(ink_height / rng.uniform(*fill)))
    width = max(ink_width + 2 * margin_px, round(height * rng.uniform(*aspect)))
    top = rng.integers(margin_px, height - ink_height - margin_px + 1)
    left = rng.integers(margin_px, width - ink_width - margin_px + 1)
    canvas = np.zeros((height, width), np.float32)
    canvas[top : top + ink_height, left : left + ink_width] = ink
    return canvas
