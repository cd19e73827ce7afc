"""Capture effects shared by every corpus class: paper, ink colours, light, blur, noise.

A picture is built in two layers. The *coverage* is a float32 (H, W) array in [0, 1], 1 where
the pen or the print covers the paper; geometry.py shapes and places it. `photograph` then lays
the coverage on paper as ink (reflectance multiplied, as real ink absorbs light), lights it,
blurs it (optics) and adds sensor noise, giving an (H, W, 3) float RGB picture in [0, 1].
NumPy + Pillow only (no SciPy on this machine).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# Paper reflectance (0-1 luma) of ordinary office and notebook paper under room light, before
# the lighting field; the lower end is recycled or greyish paper.
PAPER_LIGHT_RANGE = (0.78, 0.98)
# Colour cast of "white" paper and of the light on it: from cool (-, bluish daylight or LED)
# to warm (+, tungsten light, cream paper), as a fraction taken off blue and added to red.
PAPER_WARMTH = (-0.03, 0.08)
PAPER_CAST_JITTER = 0.008  # any other per-channel cast, fraction of the channel
# Coloured stationery as RGB reflectance: what `saturation` 1 gives.
PAPER_COLOURS = {
    "sticky yellow": (0.98, 0.93, 0.55),
    "pink": (0.98, 0.78, 0.85),
    "light blue": (0.75, 0.88, 0.97),
    "light green": (0.78, 0.95, 0.75),
    "orange": (0.99, 0.80, 0.55),
    "cream": (0.97, 0.93, 0.80),
    "kraft": (0.80, 0.66, 0.48),
    "grey card": (0.72, 0.72, 0.72),
}
STATIONERY_SATURATION = (0.3, 1.0)  # how far coloured paper goes towards PAPER_COLOURS
COLOURED_PAPER_SHARE = 0.2  # of everyday pictures: notes, cards and envelopes, not printer paper
# Dark pens (ballpoint, gel, fineliner, printer toner): reflectance of their ink, 0-1.
DARK_INK_RANGE = (0.03, 0.25)
# Blue, red and green pens as RGB reflectance; each class draws one and jitters it.
PEN_COLOURS = {
    "blue": (0.12, 0.20, 0.62),
    "red": (0.72, 0.10, 0.12),
    "green": (0.10, 0.48, 0.22),
    "black": (0.07, 0.07, 0.09),
}
PEN_COLOUR_JITTER = 0.06  # per-channel spread of a pen colour, 0-1 reflectance
# Cell of the smooth noise that makes paper fibre and uneven light, as a fraction of the
# picture's longer side: fibres are fine, lighting changes over the page.
FIBRE_CELL_FRACTION = 0.02
LIGHT_CELL_FRACTION = 0.5
# Lighting effects, each as the share of `strength` it may take off at its darkest: a linear
# gradient across the page, a vignette towards the corners, a soft-edged shadow (its edge
# OFFSET from the centre and SOFTNESS wide, as fractions of the page) and blotchy noise.
GRADIENT_SHARE = (0.3, 1.0)
VIGNETTE_SHARE = (0.0, 0.8)
SHADOW_SHARE = (0.3, 0.9)
SHADOW_OFFSET = (-0.3, 0.3)
SHADOW_SOFTNESS = (0.05, 0.25)
LIGHT_NOISE = 0.3
LIGHT_RANGE = (0.05, 1.2)  # the light field is kept inside this (never black, little glare)
LIGHT_STEP_PX = 8  # lighting is computed this far apart and interpolated (it varies slowly)
BOX_PASSES = 3  # box filters approximating one Gaussian blur (3: within 3% of its shape)
# Below this sigma (pixels) the blur is a sampled Gaussian (box filters are too coarse for
# sub-pixel camera blur); above it, three box filters.
BOX_BLUR_FROM_SIGMA = 2.0
GAUSSIAN_RADIUS_SIGMAS = 3  # a sampled Gaussian is cut at this many standard deviations
MIN_BLUR_SIGMA = 0.3  # pixels; a narrower Gaussian changes an 8-bit picture by under 1 level


# ----------------------------------------------------------------------------- colours


def paper_colour(rng: np.random.Generator, saturation: float = 0.0) -> np.ndarray:
    """RGB reflectance of a sheet: white with a warm or cool cast, moved `saturation` (0-1)
    of the way towards one of PAPER_COLOURS."""
    warmth = rng.uniform(*PAPER_WARMTH)
    cast = np.array([1 + warmth, 1 + warmth / 4, 1 - warmth]) + rng.normal(
        0.0, PAPER_CAST_JITTER, 3
    )
    white = rng.uniform(*PAPER_LIGHT_RANGE) * cast
    names = sorted(PAPER_COLOURS)
    stationery = np.array(PAPER_COLOURS[names[int(rng.integers(len(names)))]])
    return np.clip(white + saturation * (stationery * white.mean() - white), 0.0, 1.0)


def everyday_paper(rng: np.random.Generator) -> np.ndarray:
    """Mostly white paper; COLOURED_PAPER_SHARE of the time coloured stationery."""
    if rng.random() < COLOURED_PAPER_SHARE:
        return paper_colour(rng, saturation=rng.uniform(*STATIONERY_SATURATION))
    return paper_colour(rng)


def dark_ink(rng: np.random.Generator) -> np.ndarray:
    """Black, blue-black or dark grey ink."""
    level = rng.uniform(*DARK_INK_RANGE)
    return np.clip(level + rng.normal(0.0, PEN_COLOUR_JITTER / 2, 3), 0.0, 1.0)


def pen_ink(rng: np.random.Generator, name: str) -> np.ndarray:
    return np.clip(np.array(PEN_COLOURS[name]) + rng.normal(0, PEN_COLOUR_JITTER, 3), 0.0, 1.0)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB array (last axis), Pillow's convert("L") weights."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


# ----------------------------------------------------------------------------- fields


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, cell_px: float) -> np.ndarray:
    """Zero-mean, unit-spread noise varying over `cell_px` pixels (bicubic value noise)."""
    height, width = shape
    cell_px = max(cell_px, 1.0)
    grid = rng.standard_normal((int(height / cell_px) + 3, int(width / cell_px) + 3))
    grid_image = Image.fromarray(grid.astype(np.float32))
    scale = cell_px
    big = grid_image.resize((int(grid.shape[1] * scale), int(grid.shape[0] * scale)), 3)
    field = np.asarray(big)[:height, :width]
    return (field - field.mean()) / (field.std() + 1e-6)


def fibre(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiplicative paper texture around 1: fine fibres plus blotches, `strength` spread."""
    side = max(shape)
    fine = smooth_noise(shape, rng, side * FIBRE_CELL_FRACTION)
    coarse = smooth_noise(shape, rng, side * FIBRE_CELL_FRACTION * 6)
    return 1.0 + strength * (0.7 * fine + 0.3 * coarse)


def lighting(
    shape: tuple[int, int], rng: np.random.Generator, strength: float, shadow_share: float = 0.5
) -> np.ndarray:
    """Multiplicative light over the page: a gradient, a vignette and maybe a soft shadow.

    `strength` (0-1) is the darkest fraction any one effect takes off; 0 is flat light.
    """
    if strength <= 0:
        return np.ones(shape, np.float32)
    height, width = shape
    # Light varies slowly: computed on a grid LIGHT_STEP_PX apart, then interpolated.
    small_height, small_width = height // LIGHT_STEP_PX + 2, width // LIGHT_STEP_PX + 2
    rows, cols = np.mgrid[0:small_height, 0:small_width].astype(np.float32)
    rows = rows * LIGHT_STEP_PX / max(height - 1, 1) - 0.5
    cols = cols * LIGHT_STEP_PX / max(width - 1, 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * cols + np.sin(angle) * rows  # -0.71..0.71 across the page
    half_diagonal = np.sqrt(0.5)
    gradient = rng.uniform(*GRADIENT_SHARE) * (along + half_diagonal) / (2 * half_diagonal)
    field = 1.0 - strength * gradient
    radius = np.sqrt(rows**2 + cols**2) / half_diagonal  # 0 at the centre, 1 in the corners
    field *= 1.0 - strength * rng.uniform(*VIGNETTE_SHARE) * radius**2
    if rng.random() < shadow_share:  # a hand or phone between lamp and page: a soft edge
        edge_angle = rng.uniform(0, 2 * np.pi)
        distance = (
            np.cos(edge_angle) * cols + np.sin(edge_angle) * rows - rng.uniform(*SHADOW_OFFSET)
        )
        shade = 1.0 / (1.0 + np.exp(-distance / rng.uniform(*SHADOW_SOFTNESS)))
        field *= 1.0 - strength * rng.uniform(*SHADOW_SHARE) * shade
    field *= 1.0 + LIGHT_NOISE * strength * smooth_noise(
        (small_height, small_width), rng, max(small_height, small_width) * LIGHT_CELL_FRACTION
    )
    big = Image.fromarray(np.clip(field, *LIGHT_RANGE).astype(np.float32)).resize(
        (small_width * LIGHT_STEP_PX, small_height * LIGHT_STEP_PX), Image.Resampling.BILINEAR
    )
    return np.asarray(big)[:height, :width]


# ----------------------------------------------------------------------------- filters


def _box_widths(sigma: float) -> list[int]:
    """Odd widths of BOX_PASSES box filters whose sum of variances is sigma^2 (Kutskir)."""
    ideal = np.sqrt(12 * sigma**2 / BOX_PASSES + 1)
    lower = int(np.floor(ideal)) - (int(np.floor(ideal)) % 2 == 0)
    upper = lower + 2
    lower_count = round(
        (12 * sigma**2 - BOX_PASSES * lower**2 - 4 * BOX_PASSES * lower - 3 * BOX_PASSES)
        / (-4 * lower - 4)
    )
    return [lower if index < lower_count else upper for index in range(BOX_PASSES)]


def _box(array: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Mean over `width` (odd) neighbours along `axis`, edges extended by mirroring."""
    radius = width // 2
    if radius == 0:
        return array
    padding = [(0, 0)] * array.ndim
    padding[axis] = (radius + 1, radius)
    mode = "reflect" if radius < array.shape[axis] else "edge"
    sums = np.cumsum(np.pad(array, padding, mode=mode), axis=axis, dtype=np.float32)
    upper = np.take(sums, np.arange(width, sums.shape[axis]), axis=axis)
    lower = np.take(sums, np.arange(0, sums.shape[axis] - width), axis=axis)
    return (upper - lower) / width


def _sampled_gaussian(array: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Exact (sampled) Gaussian along `axis`: a weighted sum of shifted copies."""
    radius = int(np.ceil(GAUSSIAN_RADIUS_SIGMAS * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-(offsets**2) / (2 * sigma**2)).astype(np.float32)
    weights /= weights.sum()
    padding = [(0, 0)] * array.ndim
    padding[axis] = (radius, radius)
    padded = np.pad(array, padding, mode="edge")
    length = array.shape[axis]
    return sum(
        weight * np.take(padded, np.arange(shift, shift + length), axis=axis)
        for shift, weight in enumerate(weights)
    )


def gaussian_blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, C) float array, `sigma` in pixels.

    Three box filters in a row (the approximation Pillow's own GaussianBlur uses): O(pixels)
    whatever the sigma, which matters for defocus blurs of 16 px.
    """
    if sigma < MIN_BLUR_SIGMA:
        return array
    blurred = array.astype(np.float32)
    if sigma < BOX_BLUR_FROM_SIGMA:
        return _sampled_gaussian(_sampled_gaussian(blurred, sigma, 0), sigma, 1)
    for width in _box_widths(sigma):
        blurred = _box(_box(blurred, width, 0), width, 1)
    return blurred


def photograph(
    coverage: np.ndarray,
    rng: np.random.Generator,
    *,
    paper: np.ndarray,
    ink: np.ndarray,
    grey: bool = False,
    fibre_strength: float = 0.02,
    light_strength: float = 0.0,
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    shadow_share: float = 0.5,
) -> np.ndarray:
    """Ink `coverage` on paper, lit, blurred (optics) and noisy (sensor), in [0, 1]:
    (H, W, 3) RGB, or (H, W) luma when `grey` (a greyscale scan or photo)."""
    shape = coverage.shape
    if grey:
        paper, ink = np.atleast_1d(luma(paper)), np.atleast_1d(luma(ink))
    reflectance = paper[None, None, :] * fibre(shape, rng, fibre_strength)[..., None]
    absorbed = 1.0 - coverage[..., None] * (1.0 - ink[None, None, :])
    picture = camera(
        reflectance * absorbed,
        rng,
        light_strength=light_strength,
        blur_sigma=blur_sigma,
        noise_sigma=noise_sigma,
        shadow_share=shadow_share,
    )
    return picture[..., 0] if grey else picture


def camera(
    scene: np.ndarray,
    rng: np.random.Generator,
    *,
    light_strength: float = 0.0,
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    shadow_share: float = 0.5,
) -> np.ndarray:
    """Light, optics and sensor applied to an (H, W, C) reflectance picture (C = 1 or 3);
    `shadow_share` is the chance of a soft shadow across the page."""
    shape = scene.shape[:2]
    picture = scene * lighting(shape, rng, light_strength, shadow_share)[..., None]
    if blur_sigma >= MIN_BLUR_SIGMA:  # Pillow's blur of the 8-bit picture: fast at any sigma
        pixels = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
        image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
        blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(blur_sigma)), np.float32)
        picture = blurred.reshape(pixels.shape) / 255.0
    if noise_sigma > 0:
        picture = picture + rng.standard_normal(shape, np.float32)[..., None] * noise_sigma
        if picture.shape[2] > 1:  # colour sensors add some noise per channel too
            picture = picture + rng.standard_normal(picture.shape, np.float32) * (noise_sigma / 3)
    return np.clip(picture, 0.0, 1.0).astype(np.float32)


def to_image(picture: np.ndarray) -> Image.Image:
    """Float [0, 1] (H, W, 3) or (H, W) -> Pillow image, mode RGB or L."""
    return Image.fromarray(np.round(np.clip(picture, 0.0, 1.0) * 255).astype(np.uint8))
