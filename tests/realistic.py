"""Realistic digit pictures for tests: photos/scans/canvas drawings, deterministic from a seed.

Two sources of digit shapes: the TrueType fonts installed on this machine (Debian packages
fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf give a good spread), and MNIST digits
passed in as arrays, re-rendered as dark ink on paper. Each picture then gets a random canvas,
placement, rotation, paper and ink colour, lighting, noise, blur and file encoding.
"""

from __future__ import annotations

import functools
import glob
import io
import os
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_GLOBS = ("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/**/*.otf", "~/.fonts/**/*.ttf")
_RENDER_PX = 160  # font size used to rasterise a glyph before scaling it to the picture


@functools.cache
def find_fonts() -> tuple[str, ...]:
    """Installed fonts whose ten digits render as ten distinct glyphs (sorted, deterministic)."""
    paths = sorted(
        {p for g in FONT_GLOBS for p in glob.glob(os.path.expanduser(g), recursive=True)}
    )
    usable = []
    for path in paths:
        try:
            font = ImageFont.truetype(path, 48)
            glyphs = {_glyph(font, str(d), 0).tobytes() for d in range(10)}
        except OSError:
            continue
        if len(glyphs) == 10:  # a font without digits draws the same .notdef box ten times
            usable.append(path)
    return tuple(usable)


def _glyph(font: ImageFont.FreeTypeFont, text: str, stroke: int) -> Image.Image:
    """Coverage mask (mode L, 255 = ink) of `text`, cropped to its ink."""
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    img = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(img).text(
        (4 - left, 4 - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    box = img.getbbox()
    if box is None:
        raise OSError("glyph renders empty")
    return img.crop(box)


@functools.cache
def _plain_zero_fonts() -> tuple[str, ...]:
    """Fonts whose 0 has no dot or slash inside (MNIST has no such zeros)."""
    plain = []
    for path in find_fonts():
        zero = np.asarray(_glyph(ImageFont.truetype(path, 100), "0", 0)) > 128
        h, w = zero.shape
        if zero[h * 3 // 8 : h * 5 // 8, w * 3 // 8 : w * 5 // 8].mean() < 0.2:
            plain.append(path)
    return tuple(plain) or find_fonts()


def _font_digit(rng: np.random.Generator, digit: int) -> Image.Image:
    fonts = _plain_zero_fonts() if digit == 0 else find_fonts()
    font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], _RENDER_PX)
    stroke = int(rng.choice([0, 0, 0, 2, 4, 7]))  # extra weight, as a marker pen would give
    return _glyph(font, str(digit), stroke)


def _mnist_digit(rng: np.random.Generator, image: np.ndarray) -> Image.Image:
    arr = np.asarray(image, dtype=np.float64)
    arr = arr / 255.0 if arr.max() > 1.0 else arr
    mask = Image.fromarray(np.uint8(np.clip(arr, 0, 1) * 255))
    box = mask.getbbox() or (0, 0, 28, 28)
    mask = mask.crop(box)
    factor = float(rng.uniform(4, 8))
    size = (max(1, round(mask.width * factor)), max(1, round(mask.height * factor)))
    return mask.resize(size, Image.Resampling.BICUBIC)


def _canvas(rng: np.random.Generator) -> tuple[int, int]:
    side = float(np.exp(rng.uniform(np.log(40), np.log(1000))))
    aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
    return max(40, min(1000, round(side * aspect))), max(40, min(1000, round(side)))


def _place(
    rng: np.random.Generator, glyph: Image.Image, width: int, height: int, angle: float
) -> np.ndarray:
    """Coverage array (height, width) in [0,1] with the glyph, rotated by `angle` degrees
    counter-clockwise, somewhere on it."""
    glyph = glyph.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    # Digit height in px; at least MNIST's own 20 px, below which a picture holds no digit.
    target = max(float(rng.uniform(0.3, 0.85)) * min(width, height), 20.0)
    scale = min(target / glyph.height, 0.9 * width / glyph.width)
    size = (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale)))
    glyph = glyph.resize(size, Image.Resampling.LANCZOS)
    x = int(rng.integers(0, max(1, width - glyph.width) + 1))
    y = int(rng.integers(0, max(1, height - glyph.height) + 1))
    cover = Image.new("L", (width, height), 0)
    cover.paste(glyph, (x, y))
    return np.asarray(cover, dtype=np.float64) / 255.0


def _colours(rng: np.random.Generator, light_ink: bool) -> tuple[np.ndarray, np.ndarray]:
    paper = rng.uniform(0.78, 1.0) - rng.uniform(0, 0.12, size=3)  # white, cream or tinted
    inks = [(0.05, 0.05, 0.05), (0.1, 0.12, 0.45), (0.55, 0.05, 0.05), (0.05, 0.3, 0.1)]
    ink = np.array(inks[int(rng.integers(len(inks)))]) + rng.uniform(0, 0.12, size=3)
    if light_ink:  # chalk on a blackboard, white pen on a dark screen
        paper, ink = 1.0 - paper * rng.uniform(0.85, 1.0), 1.0 - ink * 0.5
    return paper, ink


def _light(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative illumination: a linear gradient or a vignette, up to ~35% darker."""
    yy, xx = np.mgrid[0:height, 0:width]
    yy, xx = yy / max(height - 1, 1), xx / max(width - 1, 1)
    strength = float(rng.uniform(0, 0.35))
    if rng.random() < 0.5:
        angle = float(rng.uniform(0, 2 * np.pi))
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
        return 1.0 - strength * ramp
    cy, cx = rng.uniform(0.2, 0.8, size=2)
    return 1.0 - strength * np.clip(((yy - cy) ** 2 + (xx - cx) ** 2) / 0.5, 0, 1)


def _encode(
    rng: np.random.Generator, rgb: np.ndarray, cover: np.ndarray, ink: np.ndarray
) -> tuple[str, bytes]:
    u8 = np.uint8(np.clip(rgb * 255 + 0.5, 0, 255))
    img = Image.fromarray(u8, "RGB")
    kind = str(rng.choice(["jpeg", "jpeg", "jpeg", "L", "RGB", "RGBA", "P", "I;16", "other"]))
    buf = io.BytesIO()
    if kind == "jpeg":
        img.save(buf, "JPEG", quality=int(rng.integers(25, 96)))
        return "jpg", buf.getvalue()
    if kind == "RGBA":  # canvas export: transparent (0,0,0,0) background, opaque ink
        rgba = np.zeros(cover.shape + (4,), dtype=np.uint8)
        rgba[..., :3] = np.uint8(np.clip(ink * 255, 0, 255))
        rgba[..., 3] = np.uint8(np.clip(cover * 255 + 0.5, 0, 255))
        rgba[cover == 0] = 0
        Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    elif kind == "I;16":
        gray = rgb @ np.array([0.299, 0.587, 0.114])
        Image.fromarray(np.uint16(np.clip(gray * 65535 + 0.5, 0, 65535))).save(buf, "PNG")
    elif kind == "P":
        img.quantize(int(rng.integers(8, 256))).save(buf, "PNG")
    elif kind in ("L", "RGB"):
        img.convert(kind).save(buf, "PNG")
    else:
        fmt = str(rng.choice(["GIF", "BMP", "WEBP"]))
        img.save(buf, fmt, **({"quality": 80} if fmt == "WEBP" else {}))
        return fmt.lower(), buf.getvalue()
    return "png", buf.getvalue()


class Picture(NamedTuple):
    name: str  # NNNN_<font|mnistJ>_<dark|light>_<digit>.<ext>
    data: bytes  # the encoded file
    digit: int  # the true digit
    mnist_index: int | None  # J: index into the MNIST arrays given; None for a font digit
    angle: float  # degrees counter-clockwise the digit was rotated by, in [-15, 15]


def realistic_pictures(
    count: int,
    seed: int,
    mnist_images: np.ndarray | None = None,
    mnist_labels: np.ndarray | None = None,
) -> list[Picture]:
    """`count` pictures with what made them, deterministic from `seed`.

    Half come from fonts and half from MNIST digits when both are available; otherwise all
    come from whichever is available (light: light ink on a dark ground).
    """
    have_fonts = bool(find_fonts())
    have_mnist = mnist_images is not None and mnist_labels is not None and len(mnist_images) > 0
    if not (have_fonts or have_mnist):
        raise RuntimeError("no TrueType fonts with digits found and no MNIST images given")
    rng = np.random.default_rng(seed)
    result = []
    for i in range(count):
        use_mnist = have_mnist and (not have_fonts or i % 2 == 1)
        if use_mnist:
            j = int(rng.integers(len(mnist_images)))
            digit, glyph = int(mnist_labels[j]), _mnist_digit(rng, mnist_images[j])
            source, mnist_index = f"mnist{j}", j
        else:
            digit = int(rng.integers(10))
            glyph, source, mnist_index = _font_digit(rng, digit), "font", None
        width, height = _canvas(rng)
        angle = float(rng.uniform(-15, 15))
        cover = _place(rng, glyph, width, height, angle)
        light_ink = bool(rng.random() < 0.15)
        paper, ink = _colours(rng, light_ink)
        rgb = paper * (1 - cover[..., None]) + ink * cover[..., None]
        rgb *= _light(rng, height, width)[..., None]
        img = Image.fromarray(np.uint8(np.clip(rgb * 255, 0, 255)), "RGB")
        radius = float(rng.choice([0, 0, 0.6, 1.2])) * max(1.0, min(width, height) / 200)
        if radius:
            img = img.filter(ImageFilter.GaussianBlur(radius))
        rgb = np.asarray(img, dtype=np.float64) / 255.0
        rgb = rgb + rng.normal(0, float(rng.choice([0, 0.02, 0.05])), size=rgb.shape)
        ext, data = _encode(rng, np.clip(rgb, 0, 1), cover, ink)
        name = f"{i:04d}_{source}_{'light' if light_ink else 'dark'}_{digit}.{ext}"
        result.append(Picture(name, data, digit, mnist_index, angle))
    return result


def generate_realistic_images(
    count: int,
    seed: int,
    mnist_images: np.ndarray | None = None,
    mnist_labels: np.ndarray | None = None,
) -> list[tuple[str, bytes, int]]:
    """`count` pictures as (file name, encoded bytes, true digit): `realistic_pictures`
    without what made them."""
    pictures = realistic_pictures(count, seed, mnist_images, mnist_labels)
    return [(picture.name, picture.data, picture.digit) for picture in pictures]


def rotated_source(image: np.ndarray, angle: float) -> np.ndarray:
    """An MNIST digit rotated by `angle` degrees in its own 28x28 frame, float32 in [0, 1].

    The picture's digit without its rendering (scale, paper, ink, light, noise, blur,
    encoding): what the model reads when preprocess undoes all of that but the rotation.
    """
    arr = np.asarray(image, dtype=np.float32)
    arr = arr / 255.0 if arr.max() > 1.0 else arr
    rotated = Image.fromarray(arr, "F").rotate(angle, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(rotated, dtype=np.float32), 0, 1)


def naive_resize(data: bytes) -> np.ndarray:
    """Baseline: decode, grayscale, resize straight to 28x28, scale to [0, 1]; nothing else."""
    img = Image.open(io.BytesIO(data))
    img.seek(0)
    gray = img.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.float32) / 255.0
