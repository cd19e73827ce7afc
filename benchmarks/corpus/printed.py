"""Printed digit classes: a glyph from the split's typefaces, photographed on paper.

One class per typeface style (serif, sans, mono, condensed, italic, bold, script), plus
`printed_other`: any of the split's typefaces, a third photographed plainly, a third faint as
if in pencil or a pale printer, a third out of focus. `letters` (a non-digit class) uses the
same photographed look.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from benchmarks.corpus import Rejected, capture, geometry, typefaces
from benchmarks.corpus.picture import Accepted, Picture, accept, join_source
from benchmarks.corpus.sources import DIGITS, Sources

PRINTED_HEIGHT_PX = (40, 200)  # glyph height in the picture, drawn log-uniformly
PRINTED_FILL = (0.35, 0.85)  # fraction of the picture's height the glyph takes
PRINTED_MAX_DEGREES = 6  # a page or label photographed a little askew
PRINTED_PERSPECTIVE = (0.0, 0.03)  # corner displacement, fraction of the side
CAMERA_BLUR_PX = (0.3, 0.7)  # lens and demosaicing blur of an in-focus photo, sigma in px
FOCUS_BLUR_FRACTION = (0.0, 0.012)  # slight defocus in a "sharp" photo, sigma / glyph height
DEFOCUS_FRACTION = (0.02, 0.08)  # the out-of-focus third: sigma / glyph height
FAINT_DARKNESS = (0.12, 0.40)  # the faint third: ink luma below the paper
SENSOR_NOISE = (0.005, 0.03)
LIGHT_STRENGTH = (0.0, 0.3)
GREY_SHARE = 0.3  # share of pictures saved greyscale
JPEG_SHARE = 0.2  # share saved as JPEG, as phones do, at JPEG_QUALITY
JPEG_QUALITY = (75, 95)
VARIANTS_OTHER = ("plain", "faint", "out_of_focus")
# O, o, I and l are left out of `letters`: many typefaces draw them exactly like 0 and 1, so
# a model reading them as digits would be right.
EXCLUDED_LETTERS = "OoIl"
LETTERS = "".join(c for c in string.ascii_letters if c not in EXCLUDED_LETTERS)


def print_photo(rng: np.random.Generator, glyph: np.ndarray, variant: str = "plain") -> Picture:
    """A printed glyph (coverage) photographed on paper: size, tilt, paper, light, focus."""
    low, high = np.log(PRINTED_HEIGHT_PX[0]), np.log(PRINTED_HEIGHT_PX[1])
    height = int(round(np.exp(rng.uniform(low, high))))
    tilted, rotation = geometry.transform(
        geometry.scale_to_height(glyph, height),
        rng,
        max_degrees=PRINTED_MAX_DEGREES,
        perspective=rng.uniform(*PRINTED_PERSPECTIVE),
    )
    coverage = geometry.frame(tilted, rng, fill=PRINTED_FILL, aspect=(0.8, 1.3))
    paper = capture.everyday_paper(rng)
    if variant == "faint":
        darkness = rng.uniform(*FAINT_DARKNESS)
        ink = np.clip(np.full(3, 1.0 - darkness / paper.mean()), 0, 1)
        detail = f"darkness={darkness:.2f}"
    else:
        ink = capture.dark_ink(rng)
        detail = ""
    if variant == "out_of_focus":
        blur = rng.uniform(*DEFOCUS_FRACTION) * height
        detail = f"blur_sigma={blur:.1f}px"
    else:
        blur = rng.uniform(*CAMERA_BLUR_PX) + rng.uniform(*FOCUS_BLUR_FRACTION) * height
    picture = capture.photograph(
        coverage,
        rng,
        paper=paper,
        ink=ink,
        grey=rng.random() < GREY_SHARE,
        light_strength=rng.uniform(*LIGHT_STRENGTH),
        blur_sigma=blur,
        noise_sigma=rng.uniform(*SENSOR_NOISE),
    )
    quality = None
    if rng.random() < JPEG_SHARE:
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        detail = join_source(detail, f"quality={quality}")
    source = join_source(f"height={height}px", rotation, detail)
    return Picture(capture.to_image(picture), source, coverage=coverage, jpeg_quality=quality)


def _glyph_picture(
    rng: np.random.Generator, fonts: tuple[str, ...], character: str, variant: str
) -> Picture:
    path = fonts[int(rng.integers(len(fonts)))]
    glyph = typefaces.glyph(path, character)
    if glyph is None:
        raise Rejected(f"{Path(path).name} has no {character!r}")
    picture = print_photo(rng, glyph, variant)
    return dataclasses.replace(
        picture, source=join_source(f"font:{Path(path).name}", picture.source)
    )


def from_fonts(style: str | None, variants: tuple[str, ...] = ("plain",)):
    """A class generator: digits 0-9 in turn from the split's `style` fonts (None: all), each
    label going through `variants` in turn."""

    def generate(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
        fonts = sources.all_fonts if style is None else sources.fonts[style]
        for item in range(count):
            label, variant = item % DIGITS, variants[(item // DIGITS) % len(variants)]

            def build(label=label, variant=variant) -> Picture:
                picture = _glyph_picture(rng, fonts, str(label), variant)
                if len(variants) > 1:
                    picture = dataclasses.replace(
                        picture, source=join_source(picture.source, variant)
                    )
                return dataclasses.replace(picture, label=label)

            yield accept(build)

    return generate


def letters(rng: np.random.Generator, count: int, sources: Sources) -> Iterator[Accepted]:
    """Letters A-Z, a-z except EXCLUDED_LETTERS, in turn, from all of the split's fonts."""
    for item in range(count):
        character = LETTERS[item % len(LETTERS)]

        def build(character=character) -> Picture:
            picture = _glyph_picture(rng, sources.all_fonts, character, "plain")
            source = join_source(
                picture.source, f"char={character}", f"excluded={EXCLUDED_LETTERS}"
            )
            return dataclasses.replace(picture, source=source)

        yield accept(build)


CLASSES = {f"printed_{style}": from_fonts(style) for style in typefaces.STYLES}
CLASSES["printed_other"] = from_fonts(None, VARIANTS_OTHER)
