"""The two typeface sets (A for tune, B for eval), found on this machine, and glyph rendering.

Families are grouped by *design*: clones of one design (URW's Nimbus Roman, TeX Gyre Termes,
FreeSerif and Liberation Serif are all Times) stay in one set, so tuning never sees the shapes
evaluation is scored on. Each entry names a font file by its stem; `fc-list` says where it is
installed. A missing file is skipped with a warning; a style left with no file is an error.
"""

from __future__ import annotations

import functools
import subprocess
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

STYLES = ("serif", "sans", "mono", "condensed", "italic", "bold", "script")
FONT_SUFFIXES = (".ttf", ".otf")  # Type 1 copies of the URW fonts (.pfb, .t1) are skipped
GLYPH_RENDER_PX = 200  # font size a glyph is rasterised at before it is scaled to the picture
# A code point no font here has (plane 16 private use): it renders the font's .notdef glyph,
# the "tofu" box a font draws for characters it lacks.
MISSING_CHARACTER = "\U0010fffd"


class Typeface(NamedTuple):
    design: str  # the design the file belongs to; no design is in both sets
    stem: str  # font file name without its suffix
    style: str  # one of STYLES


def _set(design: str, style_stems: dict[str, tuple[str, ...]]) -> list[Typeface]:
    return [Typeface(design, stem, style) for style, stems in style_stems.items() for stem in stems]


TYPEFACE_SETS: dict[str, tuple[Typeface, ...]] = {
    "A": tuple(
        _set(
            "Bitstream Vera (DejaVu, Hack)",
            {
                "serif": ("DejaVuSerif",),
                "sans": ("DejaVuSans",),
                "mono": ("DejaVuSansMono", "Hack-Regular"),
                "condensed": ("DejaVuSansCondensed", "DejaVuSerifCondensed"),
                "italic": ("DejaVuSerif-Italic", "DejaVuSans-Oblique", "Hack-Italic"),
                "bold": ("DejaVuSans-Bold", "DejaVuSerif-Bold", "DejaVuSansCondensed-Bold"),
            },
        )
        + _set(
            "Palatino (P052, TeX Gyre Pagella)",
            {
                "serif": ("P052-Roman", "texgyrepagella-regular"),
                "italic": ("P052-Italic", "texgyrepagella-italic"),
                "bold": ("P052-Bold", "texgyrepagella-bold"),
            },
        )
        + _set(
            "Bookman (URW Bookman, TeX Gyre Bonum)",
            {
                "serif": ("URWBookman-Light", "texgyrebonum-regular"),
                "italic": ("URWBookman-LightItalic",),
                "bold": ("URWBookman-Demi",),
            },
        )
        + _set(
            "Garamond (EB Garamond)",
            {
                "serif": ("EBGaramond12-Regular",),
                "italic": ("EBGaramond12-Italic",),
                "bold": ("EBGaramond12-Bold",),
            },
        )
        + _set(
            "Cambo (Caladea)",
            {
                "serif": ("Caladea-Regular",),
                "italic": ("Caladea-Italic",),
                "bold": ("Caladea-Bold",),
            },
        )
        + _set(
            "Lato (Lato, Carlito)",
            {
                "sans": ("Lato-Regular", "Carlito-Regular"),
                "italic": ("Lato-Italic", "Carlito-Italic"),
                "bold": ("Lato-Bold", "Lato-Black"),
            },
        )
        + _set("Cantarell", {"sans": ("Cantarell-Regular",), "bold": ("Cantarell-Bold",)})
        + _set(
            "Avant Garde (URW Gothic, TeX Gyre Adventor)",
            {
                "sans": ("URWGothic-Book", "texgyreadventor-regular"),
                "italic": ("URWGothic-BookOblique",),
                "bold": ("URWGothic-Demi",),
            },
        )
        + _set(
            "Roboto (Roboto, Roboto Condensed, Roboto Slab)",
            {
                "sans": ("Roboto-Regular",),
                "serif": ("RobotoSlab-Regular",),
                "condensed": ("RobotoCondensed-Regular", "RobotoCondensed-Bold"),
                "italic": ("Roboto-Italic",),
                "bold": ("Roboto-Bold", "RobotoSlab-Bold"),
            },
        )
        + _set(
            "JetBrains Mono", {"mono": ("JetBrainsMono-Regular",), "bold": ("JetBrainsMono-Bold",)}
        )
        + _set(
            "Comic Neue",
            {
                "script": (
                    "ComicNeue-Regular",
                    "ComicNeue-Bold",
                    "ComicNeue-Light",
                    "ComicNeue-Italic",
                )
            },
        )
    ),
    "B": tuple(
        _set(
            "Times (Nimbus Roman, TeX Gyre Termes, FreeSerif, Liberation Serif)",
            {
                "serif": (
                    "NimbusRoman-Regular",
                    "texgyretermes-regular",
                    "FreeSerif",
                    "LiberationSerif-Regular",
                ),
                "italic": (
                    "NimbusRoman-Italic",
                    "texgyretermes-italic",
                    "FreeSerifItalic",
                    "LiberationSerif-Italic",
                ),
                "bold": ("NimbusRoman-Bold", "FreeSerifBold", "LiberationSerif-Bold"),
            },
        )
        + _set(
            "Helvetica (Nimbus Sans, TeX Gyre Heros, FreeSans, Liberation Sans)",
            {
                "sans": (
                    "NimbusSans-Regular",
                    "texgyreheros-regular",
                    "FreeSans",
                    "LiberationSans-Regular",
                ),
                "condensed": (
                    "NimbusSansNarrow-Regular",
                    "texgyreheroscn-regular",
                    "LiberationSansNarrow-Regular",
                    "NimbusSansNarrow-Bold",
                ),
                "italic": ("NimbusSans-Italic", "LiberationSans-Italic"),
                "bold": (
                    "NimbusSans-Bold",
                    "texgyreheros-bold",
                    "FreeSansBold",
                    "LiberationSans-Bold",
                ),
            },
        )
        + _set(
            "Courier (Nimbus Mono, TeX Gyre Cursor, FreeMono, Liberation Mono, Courier Prime)",
            {
                "mono": (
                    "NimbusMonoPS-Regular",
                    "texgyrecursor-regular",
                    "FreeMono",
                    "LiberationMono-Regular",
                    "Courier Prime",
                ),
                "bold": ("NimbusMonoPS-Bold", "Courier Prime Bold"),
            },
        )
        + _set(
            "Century Schoolbook (C059, TeX Gyre Schola)",
            {
                "serif": ("C059-Roman", "texgyreschola-regular"),
                "italic": ("C059-Italic", "texgyreschola-italic"),
                "bold": ("C059-Bold",),
            },
        )
        + _set(
            "Linux Libertine (Libertine, Biolinum, Libertine Mono)",
            {
                "serif": ("LinLibertine_R",),
                "sans": ("LinBiolinum_R",),
                "mono": ("LinLibertine_M",),
                "italic": ("LinLibertine_RI", "LinBiolinum_RI"),
                "bold": ("LinLibertine_RB", "LinBiolinum_RB"),
            },
        )
        + _set(
            "Open Sans",
            {
                "sans": ("OpenSans-Regular",),
                "condensed": ("OpenSans-CondLight", "OpenSans-CondBold"),
                "italic": ("OpenSans-Italic",),
                "bold": ("OpenSans-Bold", "OpenSans-ExtraBold"),
            },
        )
        + _set("Quicksand", {"sans": ("Quicksand-Regular",), "bold": ("Quicksand-Bold",)})
        + _set("Inconsolata", {"mono": ("Inconsolata",)})
        + _set(
            "Zapf Chancery (Z003, TeX Gyre Chorus)",
            {"script": ("Z003-MediumItalic", "texgyrechorus-mediumitalic")},
        )
        + _set("Humor Sans", {"script": ("Humor-Sans",)})
    ),
}
SPLIT_TYPEFACE_SET = {"tune": "A", "eval": "B"}


def _check_disjoint() -> None:
    designs = [{face.design for face in faces} for faces in TYPEFACE_SETS.values()]
    stems = [{face.stem for face in faces} for faces in TYPEFACE_SETS.values()]
    if designs[0] & designs[1] or stems[0] & stems[1]:
        raise ValueError(f"typeface sets overlap: {designs[0] & designs[1] or stems[0] & stems[1]}")


_check_disjoint()


@functools.cache
def installed_fonts() -> dict[str, str]:
    """Font file stem -> path of every TrueType/OpenType file fontconfig knows (`fc-list`)."""
    try:
        listing = subprocess.run(
            ["fc-list", "--format", "%{file}\n"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError(f"fc-list failed ({error}); install fontconfig") from None
    found = {}
    for line in sorted(set(listing.splitlines())):
        path = Path(line)
        if path.suffix.lower() in FONT_SUFFIXES:
            found.setdefault(path.stem, str(path))
    return found


@functools.cache
def fonts_for_split(split: str) -> dict[str, tuple[str, ...]]:
    """Style -> installed font paths of the split's set; warns on missing files."""
    installed = installed_fonts()
    by_style: dict[str, list[str]] = {style: [] for style in STYLES}
    for face in TYPEFACE_SETS[SPLIT_TYPEFACE_SET[split]]:
        if face.stem in installed:
            by_style[face.style].append(installed[face.stem])
        else:
            warnings.warn(
                f"font {face.stem!r} ({face.design}) is not installed; skipped", stacklevel=2
            )
    empty = [style for style, paths in by_style.items() if not paths]
    if empty:
        raise RuntimeError(f"split {split!r}: no installed font for style(s) {empty}")
    return {style: tuple(paths) for style, paths in by_style.items()}


@functools.cache
def _font(path: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, GLYPH_RENDER_PX)


def _render(path: str, character: str) -> np.ndarray:
    font = _font(path)
    left, top, right, bottom = font.getbbox(character)
    border = GLYPH_RENDER_PX // 4  # room for overhangs getbbox leaves out (italics, script)
    image = Image.new("L", (right - left + 2 * border, bottom - top + 2 * border), 0)
    ImageDraw.Draw(image).text((border - left, border - top), character, font=font, fill=255)
    return np.asarray(image, np.float32) / 255.0


@functools.cache
def glyph(path: str, character: str) -> np.ndarray | None:
    """Coverage of `character` in the font at `path`, cropped to its ink; None when the font
    renders it empty or as its .notdef box (tofu)."""
    coverage = _render(path, character)
    box = Image.fromarray((coverage > 0).astype(np.uint8)).getbbox()
    if box is None:
        return None
    missing = _render(path, MISSING_CHARACTER)
    if coverage.shape == missing.shape and np.array_equal(coverage, missing):
        return None
    left, top, right, bottom = box
    return coverage[top:bottom, left:right]
