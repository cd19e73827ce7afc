"""Patterns that fill a whole picture: noise, stripes, checkerboards, wood, fabric, dots.

Each returns a float32 (H, W) field in [0, 1]; `texture_picture` colours it between two
random colours and photographs it. None of them has a digit-sized figure on a plain ground.
"""

from __future__ import annotations

import numpy as np
from benchmarks.corpus import capture

KINDS = ("noise", "stripes", "checkerboard", "wood", "fabric", "dots")
PERIOD_FRACTION = (0.03, 0.2)  # repeat length of stripes, checks, rings: fraction of the side
NOISE_OCTAVES = 4  # value-noise layers, each half the cell of the one before


def _coordinates(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle: (along, across)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    return (
        np.cos(angle) * cols + np.sin(angle) * rows,
        -np.sin(angle) * cols + np.cos(angle) * rows,
    )


def _period(shape: tuple[int, int], rng: np.random.Generator) -> float:
    return max(3.0, rng.uniform(*PERIOD_FRACTION) * max(shape))


def noise(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    cell = rng.uniform(0.05, 0.3) * max(shape)
    field = sum(
        0.6**octave * capture.smooth_noise(shape, rng, cell / 2**octave)
        for octave in range(NOISE_OCTAVES)
    )
    return 1.0 / (1.0 + np.exp(-1.5 * field / field.std()))


def stripes(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    along, _ = _coordinates(shape, rng)
    wave = np.sin(2 * np.pi * along / _period(shape, rng) + rng.uniform(0, 2 * np.pi))
    hardness = rng.uniform(1, 8)  # 1: soft sinusoid; 8: nearly square bars
    return 0.5 + 0.5 * np.tanh(hardness * wave) / np.tanh(hardness)


def checkerboard(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    along, across = _coordinates(shape, rng)
    period = _period(shape, rng)
    return ((np.floor(along / period) + np.floor(across / period)) % 2).astype(np.float32)


def wood(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Growth rings around a centre off the picture, wobbled by noise."""
    along, across = _coordinates(shape, rng)
    centre_along = rng.uniform(-2, 3) * max(shape)
    stretch = rng.uniform(0.05, 0.4)  # rings seen along the trunk are long ellipses
    radius = np.sqrt(((along - centre_along) * stretch) ** 2 + across**2)
    period = _period(shape, rng) / 2
    radius = radius + period * 1.5 * capture.smooth_noise(shape, rng, max(shape) / 4)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * radius / period)
    grain = 0.1 * capture.smooth_noise(shape, rng, 2.0)
    return np.clip(rings**2 + grain, 0, 1)


def fabric(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Plain weave: warp and weft threads crossing over and under."""
    along, across = _coordinates(shape, rng)
    thread = max(2.0, rng.uniform(0.01, 0.05) * max(shape))
    warp = 0.5 + 0.5 * np.cos(np.pi * across / thread)
    weft = 0.5 + 0.5 * np.cos(np.pi * along / thread)
    over = ((np.floor(along / thread) + np.floor(across / thread)) % 2).astype(np.float32)
    field = over * warp + (1 - over) * weft
    return np.clip(field + 0.15 * capture.smooth_noise(shape, rng, thread * 3), 0, 1)


def dots(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A grid of round dots (halftone, polka dots) or dots scattered over the whole picture."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    period = _period(shape, rng)
    radius = period * rng.uniform(0.15, 0.4)
    if rng.random() < 0.5:
        along, across = _coordinates(shape, rng)
        distance = np.hypot((along % period) - period / 2, (across % period) - period / 2)
    else:
        count = int(shape[0] * shape[1] / period**2)
        centres = rng.uniform(0, 1, (count, 2)) * shape
        distance = np.full(shape, np.inf, np.float32)
        for row, col in centres:
            distance = np.minimum(distance, np.hypot(rows - row, cols - col))
    return np.clip(radius + 0.5 - distance, 0, 1)  # 1 inside a dot, antialiased edge


PATTERNS = {
    "noise": noise,
    "stripes": stripes,
    "checkerboard": checkerboard,
    "wood": wood,
    "fabric": fabric,
    "dots": dots,
}


def texture_picture(
    rng: np.random.Generator, kind: str, shape: tuple[int, int], grey: bool
) -> np.ndarray:
    """The `kind` pattern between two random colours, lightly lit, blurred and noisy."""
    field = PATTERNS[kind](shape, rng).astype(np.float32)[..., None]
    first, second = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    if grey:
        first, second = np.atleast_1d(capture.luma(first)), np.atleast_1d(capture.luma(second))
    scene = first + field * (second - first)
    picture = capture.camera(
        scene,
        rng,
        light_strength=rng.uniform(0, 0.2),
        blur_sigma=rng.uniform(0, 1.0),
        noise_sigma=rng.uniform(0, 0.02),
    )
    return picture[..., 0] if grey else picture
