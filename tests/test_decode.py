"""Tests for mnist_cnn.decode: reading sources, size and format guards, grayscale conversion."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from mnist_cnn import decode
from mnist_cnn import preprocess as preprocess_module
from mnist_cnn.decode import (
    ALLOWED_FORMATS,
    MAX_PIXELS,
    PreprocessError,
    load_image,
    source_label,
)
from mnist_cnn.preprocess import preprocess
from tests.test_preprocess import (
    FAST,
    _check_mnist_frame,
    _encode,
    _outcome,
    _random_pixels,
    _seven,
    _similarity,
)

# --- decoding guards -------------------------------------------------------------------------


def test_allowlist_rejects_other_formats() -> None:
    assert "TIFF" not in ALLOWED_FORMATS
    data = _encode(_seven(), "TIFF")
    with pytest.raises(PreprocessError, match=r"^seven\.tif: unsupported image format TIFF"):
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


def test_preprocess_reexports_the_decode_names() -> None:
    # serve.py and predict.py import these from mnist_cnn.preprocess.
    assert preprocess_module.PreprocessError is decode.PreprocessError
    assert preprocess_module.ALLOWED_FORMATS is decode.ALLOWED_FORMATS
    assert issubclass(preprocess_module.NoDigitError, decode.PreprocessError)


def test_file_over_max_bytes_is_refused_after_reading_one_byte_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _encode(_seven())
    monkeypatch.setattr(decode, "MAX_BYTES", 100)
    assert len(data) > 101
    path = tmp_path / "big.png"
    path.write_bytes(data)
    stream = io.BytesIO(data)
    for source in (data, path, stream):
        with pytest.raises(PreprocessError, match=r"^big\.png: file too large \(over 100 bytes\)"):
            preprocess(source, name="big.png")
    assert stream.tell() == 101  # the rest of the stream was never read


def test_max_pixels_is_checked_from_the_header_and_for_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode, "MAX_PIXELS", 100)
    with pytest.raises(
        PreprocessError, match=r"^x\.png: image too large \(11x10 pixels, limit 100"
    ):
        load_image(_png_header_only(11, 10), name="x.png")
    with pytest.raises(PreprocessError, match="unsupported array shape"):
        preprocess(np.zeros((10, 11)))
    assert load_image(_encode(Image.new("L", (10, 10), 255))).shape == (10, 10)


def test_non_sources_are_named_in_the_error() -> None:
    with pytest.raises(
        PreprocessError, match=r"^image: expected a path, bytes or binary file, got int"
    ):
        preprocess(123)


def test_source_label(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    path.write_bytes(b"x")
    assert source_label(str(path), None) == "digit.png"
    assert source_label(path, None) == "digit.png"
    assert source_label(path, "upload.jpg") == "upload.jpg"
    assert source_label(b"bytes", None) == "image"
    with open(path, "rb") as file:
        assert source_label(file, None) == "digit.png"


def test_decoding_imports_no_keras_or_tensorflow() -> None:
    code = (
        "import sys, mnist_cnn.decode, mnist_cnn.preprocess; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- properties: any file or byte string gives a 28x28 output or a PreprocessError ----------

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


def test_corrupt_files_of_an_allowed_format_are_called_corrupt() -> None:
    png = bytearray(_encode(_seven()))
    png[29] ^= 0xFF  # the header chunk's checksum
    with pytest.raises(PreprocessError, match=r"^seven\.png: corrupt PNG data"):
        preprocess(bytes(png), name="seven.png")
    with pytest.raises(PreprocessError, match=r"^x\.jpg: corrupt JPEG data"):
        preprocess(b"\xff\xd8\xff" + b"garbage" * 20, name="x.jpg")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    with pytest.raises(PreprocessError, match=r"^digit\.png: not a regular file"):
        preprocess(fifo)  # open() would block: no one writes
    with pytest.raises(PreprocessError, match=r"not a regular file \(a directory\)"):
        load_image(tmp_path)


def test_corrupt_exif_prints_no_warning(tmp_path: Path) -> None:
    """Pillow warns on stderr about EXIF it cannot parse; the pixels are kept, so the warning
    is noise on the CLI's stderr and in the server's log. (A subprocess: pytest records
    every warning whatever the filters.)"""
    path = tmp_path / "bad-exif.jpg"
    _seven().convert("RGB").save(path, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff")
    code = f"from mnist_cnn.preprocess import preprocess; preprocess({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_a_large_picture_is_reduced_before_any_float_copy() -> None:
    """A 6000x6000 1-bit PNG is 11 KB on disk; decoding it to float32 RGB channels took
    over 400 MB of arrays (831 MB for the whole predict)."""
    image = Image.new("L", (6000, 6000), 255)
    ImageDraw.Draw(image).rectangle((2800, 1000, 3200, 5000), fill=0)
    data = _encode(image.convert("1"))
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        gray = load_image(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert gray.shape == (2000, 2000)  # reduced by 3: the smallest whole factor to 2,048
    assert peak < 60_000_000, peak  # NumPy's allocations: the reduced copies only
    assert gray[1000, 1000] == 0 and gray[100, 100] == 1  # the bar, the paper


def test_a_progressive_jpeg_of_endless_scans_is_refused_before_decoding() -> None:
    """Every scan is decoded in full: one repeated 2,000 times took 37 s for a 1.3 MB file."""
    buffer = io.BytesIO()
    _seven().convert("RGB").save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    _check_mnist_frame(preprocess(data))  # an ordinary progressive JPEG: about 10 scans
    assert data.count(b"\xff\xda") <= decode.MAX_JPEG_SCANS
    last = data.rindex(b"\xff\xda")
    scan = data[last : data.rindex(b"\xff\xd9")]
    bomb = data[:last] + scan * (decode.MAX_JPEG_SCANS + 1) + b"\xff\xd9"
    with pytest.raises(PreprocessError, match=r"^bomb\.jpg: JPEG with \d+ scans refused"):
        preprocess(bomb, name="bomb.jpg")


def test_a_side_over_max_side_is_refused_from_the_header() -> None:
    """1 px by 40 million passes the pixel limit, but Pillow's per-row bookkeeping took 828 MB."""
    side = decode.MAX_SIDE + 1
    with pytest.raises(PreprocessError, match=r"^tall\.png: image too large \(1x16385, longest"):
        preprocess(_png_header_only(1, side), name="tall.png")
