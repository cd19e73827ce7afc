"""Non-digit classes: what a digit reader is shown by mistake and should not call a digit.

Letters (printed.py), Fashion-MNIST test images, pen scribbles, textures filling the picture,
blank paper and nearly blank paper. Labels are empty. `CLASSES` maps names to generators.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from benchmarks.corpus import capture, geometry, printed, strokes, textures
from benchmarks.corpus.picture import Accepted, Picture, accept
from benchmarks.corpus.sources import FASHION_NAMES, Sources
from PIL import Image, ImageDraw

FASHION_HEIGHT_PX = (100, 200)  # Fashion-MNIST's 28 px images scaled to photo-like sizes
FASHION_FILL = (0.6, 0.95)
SCRIBBLE_HEIGHT_PX = (80, 220)
SCRIBBLE_STROKES = (1, 4)
# Total pen path as a multiple of the scribble's size: a digit's path is 1-3 times its
# height, so 4 and more reads as scribbling, not as a figure.
SCRIBBLE_LENGTH = (4.0, 9.0)
SCRIBBLE_STEP = 0.02  # pen movement per step, fraction of the size
SCRIBBLE_TURN = (0.05, 0.3)  # steady turn per step (radians): loops of 0.07-0.4 of the size
SCRIBBLE_WIDTH = (0.01, 0.04)  # pen width, fraction of the size
TEXTURE_SIDE_PX = (64, 300)
BLANK_SIDE_PX = (28, 400)
BLANK_JPEG_SHARE = 1 / 3
SPECK_FRACTION = (0.003, 0.015)  # one speck's radius, fraction of the shorter side
DUST_SPECKS = (5, 60)
SENSOR_NOISE = (0.0, 0.02)
GREY_SHARE = 0.3  # share of pictures saved greyscale
ASPECT = (0.7, 1.4)  # width / height of the generated pictures
FASHION_INK = (0.02, 0.5)  # reflectance of the garment, per channel: dark to mid colours
FASHION_LIGHT = (0.0, 0.35)
FASHION_BLUR_PX = (0.3, 1.2)
FASHION_NOISE = (0.005, 0.03)
SCRIBBLE_START = (0.2, 0.8)  # where a stroke starts, fraction of the square
SCRIBBLE_WOBBLE = 0.15  # random turn per step (radians, spread), on top of the steady turn
SCRIBBLE_REVERSAL = 0.05  # chance per step that the hand starts turning the other way
SCRIBBLE_BORDER = 0.05  # strokes stay this fraction of the size away from the edge
SCRIBBLE_FILL = (0.5, 0.9)  # scribble height / picture height
SCRIBBLE_COLOURS = ("black", "black", "blue", "red", "green")
SCRIBBLE_LIGHT = (0.0, 0.3)
SCRIBBLE_BLUR_PX = (0.0, 1.0)
# Blank sheets, walls, tables and screens: white twice (the commonest), tinted stationery,
# grey, any colour, dark.
BLANK_KINDS = ("white", "white", "tinted", "grey", "coloured", "dark")
BLANK_GREY_LEVEL = (0.3, 0.8)
BLANK_DARK_LEVEL = (0.0, 0.2)
BLANK_LIGHT = (0.0, 0.08)
BLANK_FIBRE = (0.0, 0.02)
BLANK_BLUR_PX = (0.0, 0.8)
BLANK_JPEG_QUALITY = (50, 95)
SPECK_REFLECTANCE = (0.0, 0.5)  # specks and dust darken the paper to this fraction
SPECK_ALPHA = (60, 255)  # how opaque a speck is, 8-bit
NEAR_BLANK_SIDE_PX = (64, 400)
NEAR_BLANK_GRADIENT = (0.1, 0.35)  # light strength of the faint-gradient third
NEAR_BLANK_LIGHT = (0.0, 0.1)  # light strength of the speck and dust thirds
DUST_RADIUS_PX = (0.3, 1.2)


def _side(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _shape(rng: np.random.Generator, bounds: tuple[int, int]) -> tuple[int, int]:
    height = _side(rng, bounds)
    return height, max(bounds[0], round(height * rng.uniform(*ASPECT)))


def fashion(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    """Half photographed dark on light paper (items on a table), half as Fashion-MNIST has
    them (light on black), scaled up smoothly."""
    indices, images, labels = sources.fashion
    order = rng.permutation(len(indices))
    for item in range(count):
        position = int(order[item % len(order)])
        shape = images[position].astype(np.float32) / 255.0
        as_photo = item % 2 == 0
        name = f"fashion_mnist_test:{indices[position]}; class={FASHION_NAMES[labels[position]]}"

        def build(shape=shape, as_photo=as_photo, name=name) -> Picture:
            height = _side(rng, FASHION_HEIGHT_PX)
            if not as_photo:
                image = Image.fromarray(np.round(shape * 255).astype(np.uint8))
                return Picture(
                    image.resize((height, height), Image.Resampling.BICUBIC), f"{name}; as_is"
                )
            coverage = geometry.frame(
                geometry.scale_to_height(shape, height), rng, fill=FASHION_FILL
            )
            picture = capture.photograph(
                coverage,
                rng,
                paper=capture.everyday_paper(rng),
                ink=rng.uniform(*FASHION_INK, 3),
                grey=rng.random() < GREY_SHARE,
                light_strength=rng.uniform(*FASHION_LIGHT),
                blur_sigma=rng.uniform(*FASHION_BLUR_PX),
                noise_sigma=rng.uniform(*FASHION_NOISE),
            )
            return Picture(capture.to_image(picture), f"{name}; photo")

        yield accept(build)


def scribble_coverage(rng: np.random.Generator, size: int) -> tuple[np.ndarray, int]:
    """Pen strokes wandering in a `size` square: steady turns (loops) with random wobble."""
    big = size * strokes.SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    stroke_count = _side(rng, SCRIBBLE_STROKES)
    steps = int(rng.uniform(*SCRIBBLE_LENGTH) / SCRIBBLE_STEP / stroke_count)
    width = max(1, round(rng.uniform(*SCRIBBLE_WIDTH) * big))
    for _ in range(stroke_count):
        position = rng.uniform(*SCRIBBLE_START, 2) * big
        heading = rng.uniform(0, 2 * np.pi)
        turn = rng.uniform(*SCRIBBLE_TURN) * rng.choice([-1, 1])
        points = [tuple(position)]
        for _ in range(steps):
            if rng.random() < SCRIBBLE_REVERSAL:
                turn = -turn
            heading += turn + rng.normal(0, SCRIBBLE_WOBBLE)
            position = position + SCRIBBLE_STEP * big * np.array([np.cos(heading), np.sin(heading)])
            low, high = SCRIBBLE_BORDER * big, (1 - SCRIBBLE_BORDER) * big
            if ((position < low) | (position > high)).any():  # head back towards the middle
                heading = np.arctan2(big / 2 - position[1], big / 2 - position[0])
                position = np.clip(position, low, high)
            points.append(tuple(position))
        draw.line(points, fill=255, width=width, joint="curve")
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0, stroke_count


def scribbles(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    del sources  # made from nothing but the generator
    for _ in range(count):

        def build() -> Picture:
            coverage, stroke_count = scribble_coverage(rng, _side(rng, SCRIBBLE_HEIGHT_PX))
            coverage = geometry.frame(coverage, rng, fill=SCRIBBLE_FILL)
            colour = str(rng.choice(SCRIBBLE_COLOURS))
            picture = capture.photograph(
                coverage,
                rng,
                paper=capture.everyday_paper(rng),
                ink=capture.pen_ink(rng, colour),
                grey=rng.random() < GREY_SHARE,
                light_strength=rng.uniform(*SCRIBBLE_LIGHT),
                blur_sigma=rng.uniform(*SCRIBBLE_BLUR_PX),
                noise_sigma=rng.uniform(*SENSOR_NOISE),
            )
            source = f"generator:scribble; strokes={stroke_count}; colour={colour}"
            return Picture(capture.to_image(picture), source, coverage=coverage)

        yield accept(build)


def texture_class(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    del sources
    for item in range(count):
        kind = textures.KINDS[item % len(textures.KINDS)]

        def build(kind=kind) -> Picture:
            picture = textures.texture_picture(
                rng, kind, _shape(rng, TEXTURE_SIDE_PX), grey=rng.random() < GREY_SHARE
            )
            return Picture(capture.to_image(picture), f"generator:texture; kind={kind}")

        yield accept(build)


def _paper(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Any colour a blank sheet, wall, table or screen might have."""
    kind = str(rng.choice(BLANK_KINDS))
    if kind == "white":
        return capture.paper_colour(rng), kind
    if kind == "tinted":
        return capture.paper_colour(rng, saturation=rng.uniform(0.3, 1.0)), kind
    if kind == "grey":
        grey = np.full(3, rng.uniform(*BLANK_GREY_LEVEL))
        return grey + rng.normal(0, capture.PAPER_CAST_JITTER, 3), kind
    if kind == "coloured":
        return rng.uniform(0, 1, 3), kind
    return rng.uniform(*BLANK_DARK_LEVEL, 3), kind


def _plain(
    rng: np.random.Generator, shape: tuple[int, int], light: float, specks: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    paper, kind = _paper(rng)
    coverage = np.zeros(shape, np.float32) if specks is None else specks
    picture = capture.photograph(
        coverage,
        rng,
        paper=np.clip(paper, 0, 1),
        ink=rng.uniform(*SPECK_REFLECTANCE, 3),
        grey=rng.random() < GREY_SHARE,
        fibre_strength=rng.uniform(*BLANK_FIBRE),
        light_strength=light,
        blur_sigma=rng.uniform(*BLANK_BLUR_PX),
        noise_sigma=rng.uniform(*SENSOR_NOISE),
    )
    return picture, kind


def _finish_plain(rng: np.random.Generator, picture: np.ndarray, source: str) -> Picture:
    quality = None
    if rng.random() < BLANK_JPEG_SHARE:
        quality = int(rng.integers(BLANK_JPEG_QUALITY[0], BLANK_JPEG_QUALITY[1] + 1))
        source += f"; quality={quality}"
    return Picture(capture.to_image(picture), source, jpeg_quality=quality)


def blank(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    del sources
    for _ in range(count):

        def build() -> Picture:
            picture, kind = _plain(rng, _shape(rng, BLANK_SIDE_PX), rng.uniform(*BLANK_LIGHT))
            return _finish_plain(rng, picture, f"generator:blank; paper={kind}")

        yield accept(build)


def _specks(
    rng: np.random.Generator, shape: tuple[int, int], count: int, radius_px: tuple[float, float]
) -> np.ndarray:
    big = (shape[1] * strokes.SUPERSAMPLE, shape[0] * strokes.SUPERSAMPLE)
    canvas = Image.new("L", big, 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        x, y = rng.uniform(0, 1) * big[0], rng.uniform(0, 1) * big[1]
        radius = rng.uniform(*radius_px) * strokes.SUPERSAMPLE
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            fill=int(rng.integers(SPECK_ALPHA[0], SPECK_ALPHA[1] + 1)),
        )
    small = canvas.resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0


def near_blank(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    """A third faint gradient, a third one tiny speck, a third dust: nothing digit-sized."""
    del sources
    for item in range(count):
        kind = ("gradient", "speck", "dust")[item % 3]

        def build(kind=kind) -> Picture:
            shape = _shape(rng, NEAR_BLANK_SIDE_PX)
            specks = None
            if kind == "speck":
                radius = max(0.6, rng.uniform(*SPECK_FRACTION) * min(shape))
                specks = _specks(rng, shape, 1, (radius, radius))
            elif kind == "dust":
                specks = _specks(rng, shape, _side(rng, DUST_SPECKS), DUST_RADIUS_PX)
            strength = NEAR_BLANK_GRADIENT if kind == "gradient" else NEAR_BLANK_LIGHT
            light = rng.uniform(*strength)
            picture, paper = _plain(rng, shape, light, specks)
            return _finish_plain(rng, picture, f"generator:near_blank; {kind}; paper={paper}")

        yield accept(build)


CLASSES = {
    "letters": printed.letters,
    "fashion": fashion,
    "scribbles": scribbles,
    "textures": texture_class,
    "blank": blank,
    "near_blank": near_blank,
}
