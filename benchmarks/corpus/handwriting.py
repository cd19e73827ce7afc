"""Handwritten digit classes: MNIST *test* digits captured as a phone or scanner would.

Each recipe starts from one MNIST test digit (white on black, 28x28), treats it as pen ink,
scales it smoothly to a realistic size and applies its class's capture: low resolution,
defocus, uneven light, perspective, coloured pens or JPEG. The classes that redraw the digit
along its pen path (pencil, marker, hairline pen, browser canvas) are in redrawn.py.
`from_mnist` turns a recipe into a class generator; `CLASSES` maps names to generators.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import numpy as np
from benchmarks.corpus import NoAcceptablePicture, capture, geometry
from benchmarks.corpus.picture import Accepted, Picture, accept, join_source
from benchmarks.corpus.sources import DIGITS, Sources
from PIL import Image

HANDWRITTEN_HEIGHT_PX = (100, 200)  # digit height in the picture (the brief's 100-200 px)
PICTURE_FILL = (0.5, 0.85)  # fraction of the picture's height the digit takes
# MNIST grey levels (0-1) mapped to no ink and to full ink: MNIST's antialiased edges become
# a pen's crisp edge once scaled up, instead of a blurred 28 px raster.
PEN_EDGE_LEVELS = (0.2, 0.6)
LOWRES_DIGIT_PX = (8, 16)  # digit height on the low-resolution grid
LOWRES_OUTPUT_PX = (64, 200)  # picture height once scaled back up
DEFOCUS_FRACTION = (0.02, 0.08)  # blur sigma as a fraction of the digit's height
SENSOR_NOISE = (0.005, 0.03)  # per-pixel noise spread of a phone camera, 0-1
COLOURED_PAPER = (0.4, 1.0)  # `colour`: how far the paper goes towards coloured stationery
UNEVEN_LIGHT_STRENGTH = (0.35, 0.7)
MAX_ROTATION_DEGREES = 20
PERSPECTIVE_STRENGTH = (0.04, 0.12)  # corner displacement, fraction of the side
JPEG_QUALITY = (30, 95)
JPEG_MAX_DEGREES = 8  # a phone held roughly level
JPEG_LIGHT = (0.05, 0.35)
JPEG_BLUR_PX = (0.3, 1.5)  # phone optics and a little hand shake, sigma in px
GREY_SHARE = 0.3  # share of pictures saved greyscale (scanners, "black and white" photos)
PHOTO_LIGHT = (0.0, 0.25)  # light strength of an ordinary photo (capture.lighting)
PHOTO_BLUR_PX = (0.0, 0.8)  # lens blur of an ordinary photo, sigma in px
DEFOCUS_LIGHT = (0.0, 0.3)
LOWRES_FILL = (0.6, 0.85)  # digit height / picture height of a low-resolution crop
LOWRES_GREY_SHARE = 0.5  # old scanners and fax pages: often greyscale
SCANNER_NOISE = (0.0, 0.02)
COLOUR_PENS = ("blue", "red", "green")


def pen_ink(digit: np.ndarray, height: int) -> np.ndarray:
    """MNIST digit (0-1, ink high) scaled smoothly to `height` px, with a pen's crisp edge."""
    scaled = geometry.scale_to_height(digit, height)
    low, high = PEN_EDGE_LEVELS
    ramp = np.clip((scaled - low) / (high - low), 0.0, 1.0)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep


def digit_height(rng: np.random.Generator) -> int:
    return int(rng.integers(HANDWRITTEN_HEIGHT_PX[0], HANDWRITTEN_HEIGHT_PX[1] + 1))


def on_paper(
    rng: np.random.Generator,
    coverage: np.ndarray,
    *,
    ink: np.ndarray | None = None,
    light: tuple[float, float] = PHOTO_LIGHT,
    blur_px: tuple[float, float] = PHOTO_BLUR_PX,
    shadow_share: float = 0.5,
    source: str = "",
    **fields,
) -> Picture:
    """Dark pen (or `ink`) on everyday paper, lit (a shadow `shadow_share` of the time),
    blurred and noisy."""
    paper = capture.everyday_paper(rng)
    picture = capture.photograph(
        coverage,
        rng,
        paper=paper,
        ink=capture.dark_ink(rng) if ink is None else ink,
        grey=rng.random() < GREY_SHARE,
        light_strength=rng.uniform(*light),
        blur_sigma=rng.uniform(*blur_px),
        noise_sigma=rng.uniform(*SENSOR_NOISE),
        shadow_share=shadow_share,
    )
    return Picture(capture.to_image(picture), source, coverage=coverage, **fields)


def lowres(rng: np.random.Generator, digit: np.ndarray, smooth: bool) -> Picture:
    grid_height = int(rng.integers(LOWRES_DIGIT_PX[0], LOWRES_DIGIT_PX[1] + 1))
    small = geometry.frame(
        geometry.scale_to_height(digit, grid_height), rng, fill=LOWRES_FILL, margin_px=1
    )
    paper, ink = capture.everyday_paper(rng), capture.dark_ink(rng)
    picture = capture.photograph(
        small,
        rng,
        paper=paper,
        ink=ink,
        grey=rng.random() < LOWRES_GREY_SHARE,
        noise_sigma=rng.uniform(*SCANNER_NOISE),
    )
    output_height = int(rng.integers(LOWRES_OUTPUT_PX[0], LOWRES_OUTPUT_PX[1] + 1))
    width = round(small.shape[1] * output_height / small.shape[0])
    method = Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST
    image = capture.to_image(picture).resize((width, output_height), method)
    coverage = geometry.resize(small, width, output_height, smooth=smooth)
    source = f"grid={grid_height}px; scale={output_height / small.shape[0]:.1f}"
    return Picture(image, source, coverage=coverage)


def defocus(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    height = digit_height(rng)
    coverage = geometry.frame(pen_ink(digit, height), rng, fill=PICTURE_FILL)
    sigma = rng.uniform(*DEFOCUS_FRACTION) * height
    return on_paper(
        rng,
        coverage,
        light=DEFOCUS_LIGHT,
        blur_px=(sigma, sigma),
        source=f"blur_sigma={sigma:.1f}px",
    )


def uneven_light(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    coverage = geometry.frame(pen_ink(digit, digit_height(rng)), rng, fill=PICTURE_FILL)
    return on_paper(rng, coverage, light=UNEVEN_LIGHT_STRENGTH, shadow_share=1.0)


def perspective(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    tilt = rng.uniform(*PERSPECTIVE_STRENGTH)
    warped, rotation = geometry.transform(
        pen_ink(digit, digit_height(rng)), rng, max_degrees=MAX_ROTATION_DEGREES, perspective=tilt
    )
    coverage = geometry.frame(warped, rng, fill=PICTURE_FILL)
    return on_paper(rng, coverage, source=f"{rotation}; tilt={tilt:.2f}")


def colour(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    coverage = geometry.frame(pen_ink(digit, digit_height(rng)), rng, fill=PICTURE_FILL)
    pen = str(rng.choice(COLOUR_PENS))
    paper = capture.paper_colour(rng, saturation=rng.uniform(*COLOURED_PAPER))
    picture = capture.photograph(
        coverage,
        rng,
        paper=paper,
        ink=capture.pen_ink(rng, pen),
        light_strength=rng.uniform(*PHOTO_LIGHT),
        blur_sigma=rng.uniform(*PHOTO_BLUR_PX),
        noise_sigma=rng.uniform(*SENSOR_NOISE),
    )
    return Picture(capture.to_image(picture), f"pen={pen}", coverage=coverage)


def jpeg(rng: np.random.Generator, digit: np.ndarray) -> Picture:
    turned, rotation = geometry.transform(
        pen_ink(digit, digit_height(rng)), rng, max_degrees=JPEG_MAX_DEGREES
    )
    coverage = geometry.frame(turned, rng, fill=PICTURE_FILL)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    return on_paper(
        rng,
        coverage,
        light=JPEG_LIGHT,
        blur_px=JPEG_BLUR_PX,
        source=f"quality={quality}; {rotation}",
        jpeg_quality=quality,
    )


Recipe = Callable[[np.random.Generator, np.ndarray], Picture]


def _build(
    recipe: Recipe, rng: np.random.Generator, sources: Sources, label: int, index: int
) -> Picture:
    image = sources.mnist_image(index).astype(np.float32)
    digit = image / image.max()  # faint MNIST digits get the same pen as dark ones
    picture = recipe(rng, digit)
    source = join_source(f"mnist_test:{index}", picture.source)
    return dataclasses.replace(picture, label=label, source=source)


Generator = Callable[[np.random.Generator, int, Sources], Iterator[Accepted]]


def from_mnist(recipe: Recipe) -> Generator:
    """A class generator: `count` pictures of the recipe, labels 0-9 in turn."""

    def generate(rng: np.random.Generator, count: int, sources: Sources):
        orders = sources.mnist_orders(rng)
        taken = dict.fromkeys(orders, 0)  # label -> indices used (or skipped) so far
        for item in range(count):
            label = item % DIGITS
            wasted = 0  # draws spent on digits that could not make this class
            for _ in range(len(orders[label])):
                index = int(orders[label][taken[label] % len(orders[label])])
                taken[label] += 1
                try:
                    accepted = accept(functools.partial(_build, recipe, rng, sources, label, index))
                except NoAcceptablePicture as failure:
                    wasted += failure.draws  # this digit cannot: the next one of its label
                    continue
                yield accepted._replace(draws=accepted.draws + wasted)
                break
            else:
                raise NoAcceptablePicture(f"no MNIST test digit {label} makes this class")

    return generate


CLASSES: dict[str, Generator] = {
    "lowres_smooth": from_mnist(lambda rng, digit: lowres(rng, digit, smooth=True)),
    "lowres_blocky": from_mnist(lambda rng, digit: lowres(rng, digit, smooth=False)),
    "blur": from_mnist(defocus),
    "uneven_light": from_mnist(uneven_light),
    "perspective_rotation": from_mnist(perspective),
    "colour": from_mnist(colour),
    "jpeg": from_mnist(jpeg),
}
