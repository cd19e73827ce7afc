"""Tests for mnist_cnn.preprocess: decoding guards, MNIST-style framing, robustness."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

import mnist_cnn
from mnist_cnn.preprocess import (
    ALLOWED_FORMATS,
    MAX_PIXELS,
    SLANT_RANGE,
    NoDigitError,
    PreprocessError,
    deslant,
    load_image,
    preprocess,
    slant,
    to_mnist,
)
from tests.realistic import find_fonts, generate_realistic_images

MNIST_DIRS = [
    Path(mnist_cnn.__file__).parent / "datasets" / "mnist",
    Path("/work/shared/data/mnist"),
]


def _idx(name: str, offset: int) -> np.ndarray:
    for folder in MNIST_DIRS:
        if (folder / name).is_file():
            return np.frombuffer(gzip.open(folder / name).read(), np.uint8, offset=offset)
    pytest.skip(f"MNIST file {name} not found")


@pytest.fixture(scope="module")
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    images = _idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:200]
    labels = _idx("t10k-labels-idx1-ubyte.gz", 8)[:200]
    return images, labels


def _encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _seven(size: int = 120, ink: int = 0, paper: int = 255, mode: str = "L") -> Image.Image:
    """A thick hand-drawn-looking 7, dark on light by default."""
    img = Image.new(mode, (size, size), paper)
    draw = ImageDraw.Draw(img)
    s = size / 120
    draw.line([(30 * s, 25 * s), (90 * s, 25 * s), (55 * s, 100 * s)], fill=ink, width=int(10 * s))
    return img


def _com(out: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0:28, 0:28]
    return float((out * ys).sum() / out.sum()), float((out * xs).sum() / out.sum())


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two 28x28 digits after a 3x3 blur, best over +-1 px shifts: MNIST's
    integer centring can move a digit by a pixel when its centre of mass sits near .5."""

    def blur(x: np.ndarray) -> np.ndarray:
        p = np.pad(np.asarray(x, dtype=np.float64), 1)
        return sum(p[dy : dy + 28, dx : dx + 28] for dy in range(3) for dx in range(3)) / 9

    a, b = blur(a), blur(b)
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return max(float(np.corrcoef(np.roll(a, s, (0, 1)).ravel(), b.ravel())[0, 1]) for s in shifts)


def _check_output(out: np.ndarray) -> None:
    assert out.shape == (28, 28)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0


def _check_mnist_frame(out: np.ndarray) -> None:
    _check_output(out)
    assert out.max() == pytest.approx(1.0)
    cy, cx = _com(out)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0, (cy, cx)
    ys, xs = np.nonzero(out)
    assert ys.max() - ys.min() < 20 + 1 and xs.max() - xs.min() < 20 + 1
    assert (out > 0.5).mean() < 0.4  # white ink on black, not the other way round


# --- decoding guards -------------------------------------------------------------------------


def test_allowlist_rejects_other_formats() -> None:
    assert "TIFF" not in ALLOWED_FORMATS
    data = _encode(_seven(), "TIFF")
    with pytest.raises(PreprocessError, match=r"^seven\.tif: not an image"):
        preprocess(data, name="seven.tif")
    for fmt in sorted(ALLOWED_FORMATS):
        img = _seven().convert("RGB") if fmt == "JPEG" else _seven()
        _check_mnist_frame(preprocess(_encode(img, fmt)))


def test_not_an_image_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.txt"
    path.write_text("meow")
    with pytest.raises(PreprocessError, match=r"^cat\.txt: not an image \(cannot identify"):
        preprocess(path)
    with pytest.raises(PreprocessError, match=r"^cat\.txt: not an image"):
        load_image(str(path))


def test_zero_bytes_and_missing_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(PreprocessError, match=r"^empty\.png: empty file"):
        preprocess(empty)
    with pytest.raises(PreprocessError, match="empty file"):
        preprocess(b"")
    with pytest.raises(PreprocessError, match=r"^nope\.png: cannot read"):
        preprocess(tmp_path / "nope.png")


def test_truncated_png() -> None:
    data = _encode(_seven(400).convert("RGB"))
    with pytest.raises(PreprocessError, match=r"^x\.png: truncated or corrupt"):
        preprocess(data[: len(data) // 2], name="x.png")


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [7000, 30000])  # over MAX_PIXELS; over Pillow's own limit
def test_decompression_bomb(side: int) -> None:
    assert side * side > MAX_PIXELS
    with pytest.raises(PreprocessError, match=r"^bomb\.png: image too large"):
        preprocess(_png_header_only(side, side), name="bomb.png")


def test_sources_path_bytes_stream(tmp_path: Path) -> None:
    data = _encode(_seven())
    path = tmp_path / "seven.png"
    path.write_bytes(data)
    expected = load_image(data)
    assert expected.dtype == np.float32 and expected.shape == (120, 120)
    assert 0.0 <= expected.min() and expected.max() <= 1.0
    for source in (path, str(path), io.BytesIO(data), bytearray(data)):
        np.testing.assert_array_equal(load_image(source), expected)


def test_gif_animation_uses_first_frame() -> None:
    frames = [_seven().convert("P"), Image.new("P", (120, 120), 0)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    gray = load_image(buf.getvalue())
    np.testing.assert_allclose(gray, np.asarray(_seven(), dtype=np.float32) / 255, atol=1e-6)


# --- decoding semantics ----------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (60, 40), 255)
    ImageDraw.Draw(img).rectangle((5, 5, 20, 12), fill=0)  # a mark near the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    gray = load_image(_encode(img, "PNG", exif=exif))
    plain = np.asarray(img, dtype=np.float32) / 255
    assert gray.shape == (60, 40)
    np.testing.assert_allclose(gray, np.rot90(plain, k=-1), atol=1e-6)


def test_transparent_canvas_drawing_is_not_black() -> None:
    # A browser canvas export: transparent (0,0,0,0) background, opaque black strokes.
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(50, 40), (150, 40), (90, 170)], fill=(0, 0, 0, 255), width=14)
    gray = load_image(_encode(rgba))
    assert np.median(gray) == pytest.approx(1.0)  # background became white paper
    assert gray.min() == pytest.approx(0.0)  # ink stayed black
    out = preprocess(_encode(rgba))
    _check_mnist_frame(out)
    assert (out > 0.5).sum() > 40  # the 7 is there
    # A white brush on a transparent canvas must not vanish either.
    light = Image.new("RGBA", (200, 200), (255, 255, 255, 0))
    ImageDraw.Draw(light).line([(50, 40), (150, 40), (90, 170)], fill=(255, 255, 255), width=14)
    assert _similarity(preprocess(_encode(light)), out) > 0.97
    # Palette image whose background index is transparent and black (GIF-style).
    pal = Image.new("P", (200, 200), 0)
    pal.putpalette([0, 0, 0, 0, 0, 0])
    ImageDraw.Draw(pal).line([(50, 40), (150, 40), (90, 170)], fill=1, width=14)
    assert _similarity(preprocess(_encode(pal, "GIF", transparency=0)), out) > 0.97


def test_16_bit_is_scaled_not_clipped() -> None:
    gray8 = np.asarray(_seven(paper=230, ink=30), dtype=np.float64) / 255
    img16 = Image.fromarray(np.uint16(np.round(gray8 * 65535)))
    assert img16.mode == "I;16"
    gray = load_image(_encode(img16))
    np.testing.assert_allclose(gray, gray8, atol=1e-4)
    assert _similarity(preprocess(_encode(img16)), preprocess(gray8)) > 0.99


def test_colour_and_palette_modes_agree() -> None:
    base = _seven(paper=240, ink=20)
    reference = preprocess(_encode(base))
    for mode in ("RGB", "P", "1", "LA", "RGBA", "CMYK"):
        fmt = "JPEG" if mode == "CMYK" else "PNG"
        img = base.convert(mode, dither=Image.Dither.NONE)
        data = _encode(img, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        assert _similarity(preprocess(data), reference) > 0.97, mode


def test_colour_arrays_match_files() -> None:
    rgb = _seven(paper=235, ink=25).convert("RGB")
    reference = preprocess(_encode(rgb))
    np.testing.assert_allclose(preprocess(np.asarray(rgb)), reference, atol=1e-6)
    np.testing.assert_allclose(preprocess(np.asarray(rgb) / 255.0), reference, atol=1e-5)
    rgba = np.asarray(rgb.convert("RGBA"))
    np.testing.assert_allclose(preprocess(rgba), reference, atol=1e-6)


@pytest.mark.parametrize("source", [123, None, [[0, 1]], object(), "bad\0name.png"])
def test_unsupported_inputs_raise_preprocess_error(source) -> None:
    with pytest.raises(PreprocessError):
        preprocess(source)


# --- MNIST framing ---------------------------------------------------------------------------


def test_mnist_arrays_pass_through_unchanged(mnist_digits) -> None:
    images, _ = mnist_digits
    for digit in images[:50]:
        x = digit.astype(np.float32) / 255
        np.testing.assert_array_equal(preprocess(x), x)
        np.testing.assert_array_equal(to_mnist(x), x)
        np.testing.assert_array_equal(preprocess(digit), x)  # uint8 0..255 is scaled first


def _photo_of(digit: np.ndarray, rng: np.random.Generator, invert: bool = True) -> bytes:
    """An MNIST digit re-rendered as ink on lit paper, upscaled, off-centre, JPEG."""
    ink = Image.fromarray(digit).resize((140, 140), Image.Resampling.BICUBIC)
    cover = np.zeros((260, 330))
    y, x = rng.integers(0, 120), rng.integers(0, 190)
    cover[y : y + 140, x : x + 140] = np.asarray(ink) / 255
    yy, xx = np.mgrid[0:260, 0:330]
    paper = 0.9 - 0.25 * xx / 330 - 0.1 * yy / 260
    gray = paper * (1 - cover) + 0.1 * cover if invert else 0.1 + 0.8 * cover
    gray = np.clip(gray + rng.normal(0, 0.03, gray.shape), 0, 1)
    return _encode(Image.fromarray(np.uint8(gray * 255)), "JPEG", quality=70)


def _deslanted(digit: np.ndarray) -> np.ndarray:
    """A 28x28 MNIST digit with its slant brought into MNIST's central range, as preprocess
    does: the same columns, the digit's centre kept."""
    out = deslant(digit.astype(np.float64) / 255)
    left = (out.shape[1] - 28) // 2
    return out[:, left : left + 28]


def test_photographed_mnist_digit_is_recovered(mnist_digits) -> None:
    images, _ = mnist_digits
    rng = np.random.default_rng(0)
    for digit in images[:12]:
        original = _deslanted(digit)
        for invert in (True, False):
            out = preprocess(_photo_of(digit, rng, invert))
            _check_mnist_frame(out)
            assert _similarity(out, original) > 0.9


def _bar(shift_per_row: float) -> np.ndarray:
    """A white stroke on black, 160 rows tall, moving `shift_per_row` px right per row down."""
    a = np.zeros((200, 260))
    for y in range(20, 180):
        x = 100 + round(shift_per_row * (y - 100))
        a[y, x : x + 18] = 1.0
    return a


@pytest.mark.parametrize("shift", [-0.8, -0.45, 0.0, 0.3, 0.8])
def test_slant_outside_mnist_range_is_brought_to_its_edge(shift: float) -> None:
    assert slant(_bar(shift)) == pytest.approx(shift, abs=0.01)
    edge = min(max(shift, SLANT_RANGE[0]), SLANT_RANGE[1])
    assert slant(deslant(_bar(shift))) == pytest.approx(edge, abs=1e-3)
    out = preprocess(1.0 - _bar(shift))  # dark on light, through the whole pipeline
    _check_mnist_frame(out)
    assert slant(out) == pytest.approx(edge, abs=0.03)


def test_slant_inside_mnist_range_is_kept(mnist_digits) -> None:
    images, _ = mnist_digits
    kept = [d for d in images if SLANT_RANGE[0] < slant(d.astype(np.float64)) < SLANT_RANGE[1]]
    assert len(kept) > 50  # about half of MNIST lies inside its quartiles
    for digit in kept[:20]:
        a = digit.astype(np.float64)
        np.testing.assert_array_equal(deslant(a), a)


def test_polarity_both_ways_gives_the_same_digit(mnist_digits) -> None:
    images, _ = mnist_digits
    for digit in images[:10]:
        dark_on_light = (
            1.0
            - np.asarray(
                Image.fromarray(digit).resize((150, 150), Image.Resampling.BICUBIC),
                dtype=np.float64,
            )
            / 255
        )
        a, b = preprocess(dark_on_light), preprocess(1.0 - dark_on_light)
        assert _similarity(a, b) > 0.99


def test_centre_of_mass_and_box_on_realistic_images(mnist_digits) -> None:
    images, labels = mnist_digits
    for name, data, _ in generate_realistic_images(
        12, seed=7, mnist_images=images, mnist_labels=labels
    ):
        out = preprocess(data, name=name)
        _check_mnist_frame(out)


def test_specks_are_ignored() -> None:
    clean = _seven(300)
    dirty = clean.copy()
    draw = ImageDraw.Draw(dirty)
    for x, y in [(10, 280), (280, 290), (270, 10), (150, 280)]:
        draw.ellipse((x, y, x + 4, y + 4), fill=0)
    assert _similarity(preprocess(_encode(dirty)), preprocess(_encode(clean))) > 0.97


@pytest.mark.parametrize(
    "gray",
    [
        np.ones((100, 100)),
        np.zeros((100, 100)),
        np.full((50, 80), 0.5),
        np.ones((1, 1)),
        np.zeros((28, 28)),
        np.clip(0.8 + np.random.default_rng(0).normal(0, 0.05, (300, 300)), 0, 1),
        np.tile(np.linspace(0.4, 0.9, 400), (300, 1)),  # lighting gradient, no ink
    ],
    ids=["white", "black", "grey", "1x1", "black28", "noisy-paper", "gradient"],
)
def test_blank_images_raise_no_digit(gray: np.ndarray) -> None:
    with pytest.raises(NoDigitError, match="no digit"):
        preprocess(gray)


def test_blank_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (250, 250, 245)).save(path)
    with pytest.raises(NoDigitError, match=r"^blank\.png: no digit found"):
        preprocess(path)


@pytest.mark.parametrize(
    "array",
    [
        np.full((40, 40), np.nan),
        np.array([[np.inf, 0.0], [0.0, 1.0]]),
        np.zeros((3, 3, 3, 3)),
        np.zeros((0, 10)),
        np.zeros((10, 10, 2)),
        np.array([["a", "b"]]),
        np.zeros(10),
        np.zeros((5, 5), dtype=complex),
    ],
)
def test_bad_arrays_raise_preprocess_error(array: np.ndarray) -> None:
    with pytest.raises(PreprocessError):
        preprocess(array)


def test_font_digits_available() -> None:
    assert find_fonts(), "no TrueType fonts with digits (install fonts-dejavu-core)"


# --- properties: any input gives a 28x28 output or a PreprocessError, nothing else --------------

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(call) -> None:
    try:
        out = call()
    except PreprocessError as error:
        assert "internal error" not in str(error), error
        return
    _check_output(out)


def _random_pixels(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "noise":
        return rng.random(shape)
    if kind == "constant":
        return np.full(shape, rng.random())
    if kind == "blob":
        base = np.full(shape, rng.random())
        h, w = shape[:2]
        y, x = rng.integers(0, h), rng.integers(0, w)
        base[y : y + max(1, h // 3), x : x + max(1, w // 5)] = rng.random()
        return base
    return (rng.random(shape) < 0.02).astype(np.float64)  # sparse specks


@FAST
@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    channels=st.sampled_from([0, 1, 3, 4]),
    dtype=st.sampled_from(["uint8", "uint16", "float32", "float64", "bool", "int32"]),
    kind=st.sampled_from(["noise", "constant", "blob", "specks"]),
    poison=st.sampled_from([None, np.nan, np.inf, -1.0, 300.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_array_gives_output_or_preprocess_error(h, w, channels, dtype, kind, poison, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    pixels = _random_pixels(rng, shape, kind)
    if dtype in ("uint8", "int32"):
        arr = np.round(pixels * 255).astype(dtype)
    elif dtype == "uint16":
        arr = np.round(pixels * 65535).astype(dtype)
    else:
        arr = pixels.astype(dtype)
    if poison is not None and arr.dtype.kind == "f":
        arr.flat[rng.integers(arr.size)] = poison
    _outcome(lambda: preprocess(arr))


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "I", "CMYK"]


@FAST
@given(
    h=st.integers(1, 200),
    w=st.integers(1, 200),
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"]),
    kind=st.sampled_from(["noise", "constant", "blob", "specks"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_image_file_gives_output_or_preprocess_error(h, w, mode, fmt, kind, seed):
    rng = np.random.default_rng(seed)
    pixels = np.uint8(_random_pixels(rng, (h, w, 4), kind) * 255)
    img = Image.fromarray(pixels, "RGBA")
    img = img.convert("I;16") if mode == "I;16" else img.convert(mode)
    try:
        data = _encode(img, fmt)
    except (OSError, ValueError, KeyError):
        data = _encode(img.convert("RGB"), fmt)  # this format cannot store that mode
    _outcome(lambda: preprocess(data, name=f"x.{fmt.lower()}"))


@FAST
@given(
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"BM", b"RIFF"]),
    body=st.binary(max_size=2000),
)
def test_random_bytes_give_preprocess_error_or_output(prefix: bytes, body: bytes) -> None:
    _outcome(lambda: preprocess(prefix + body))


@FAST
@given(
    fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "WEBP"]),
    cuts=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
    truncate=st.floats(0.1, 1.0),
)
def test_corrupted_files_give_preprocess_error_or_output(fmt, cuts, truncate) -> None:
    data = bytearray(_encode(_seven(64).convert("RGB"), fmt))
    for where, value in cuts:
        data[int(where * (len(data) - 1))] = value
    _outcome(lambda: preprocess(bytes(data[: max(1, int(len(data) * truncate))])))
