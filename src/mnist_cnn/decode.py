"""Read an image (path, bytes, binary stream or array) into a 2-D grayscale float32 array.

The guards here run before any MNIST-style work: a byte limit on what is read, a pixel limit
checked from the header before any pixel is decoded (decompression bombs), an allowlist of
formats, EXIF orientation applied, and alpha composited onto paper. NumPy + Pillow only.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_cnn import MnistCnnError

# Formats Pillow may open; everything else (TIFF, PSD, EPS, ...) is refused before decoding.
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})
# Decompression-bomb guard, in pixels (width x height), checked from the header before any
# pixel is decoded. The value's origin is not recorded; one float32 grayscale copy of an image
# this large takes 160 MB.
MAX_PIXELS = 40_000_000
MAX_BYTES = 64 * 1024 * 1024  # largest file read, in bytes (64 MiB; origin not recorded)
# Longest side allowed, from the header: the largest phone sensors give 16,384 px. A picture
# 1 px wide and 40 million tall passes MAX_PIXELS, yet Pillow holds a pointer and more per
# row: 828 MB to predict one such 78 KB PNG.
MAX_SIDE = 16_384
# Scans (SOS markers) a JPEG may hold. Progressive JPEGs have about 10 (libjpeg's default
# script) and every scan is decoded in full; one scan repeated 2,000 times made a 1.3 MB file
# that took 37 s to decode. 0xFFDA cannot occur inside entropy-coded data (a 0xFF there is
# followed by 0x00), so counting it counts the scans, an embedded EXIF thumbnail's included.
MAX_JPEG_SCANS = 100

# JPEGs are decoded reduced by 2, 4 or 8 (libjpeg's draft mode) while both sides stay at least
# this many pixels: preprocess's working copy (its longest side at most 512 px), so nothing it
# uses is lost. A 12-megapixel photo then decodes at 1008x756: 38 ms to a model input, against
# 359 ms with the earlier 2048 px floor (benchmarks/phone_photo.py).
_JPEG_DRAFT_SIDE = 512
# Decoded pictures with a longer side than this are box-reduced by a whole factor (Pillow's
# reduce) to at most it before any float copy is made: four times preprocess's working copy
# (512 px) and twice the side blocky.py smooths at (1,024 px), so nothing either uses is lost.
# A 6000x6000 1-bit PNG (11 KB on disk) took 812 MB to predict without it, 234 MB with it
# (benchmarks/hostile_memory.py); tests/test_decode.py bounds the arrays it makes.
_DECODE_MAX_SIDE = 2048
# Modes Pillow's reduce takes (others, "1", "P" and 16-bit, are converted first).
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})
# File signatures of the allowed formats: data that starts with one but does not decode is a
# corrupt file of that format, not "not an image".
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
}
# Pillow warns on stderr about EXIF it cannot parse; the pixels are kept as stored (see
# load_image), so the warning tells the user nothing.
warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning)
# Luma weights of ITU-R BT.601 (red, green, blue), the ones Pillow's convert("L") uses.
_LUMA_RED, _LUMA_GREEN, _LUMA_BLUE = 0.299, 0.587, 0.114
# An image with alpha that, composited onto white, spans less than this (0-1 scale) and spans
# more on black is light ink on a transparent canvas (a white brush): it goes onto black.
# Origin not recorded; tests/test_decode.py checks dark and light canvas drawings.
_FLAT_ON_WHITE_CONTRAST = 0.2


class PreprocessError(MnistCnnError, ValueError):
    """The input cannot be turned into a digit image; the message names the problem."""


class NoDigitError(PreprocessError):
    """The image holds no ink (blank page, uniform colour), or nothing that can be a digit."""


Source = str | os.PathLike | bytes | bytearray | BinaryIO


def source_label(source: object, name: str | None) -> str:
    """The name error messages use: `name`, else the file's base name, else "image"."""
    if name:
        return name
    if isinstance(source, str | os.PathLike):
        return os.path.basename(os.fspath(source)) or str(source)
    stream_name = getattr(source, "name", None)
    return os.path.basename(stream_name) if isinstance(stream_name, str) else "image"


def _read_bytes(source: Source, label: str) -> bytes:
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
        elif isinstance(source, str | os.PathLike):
            mode = os.stat(source).st_mode  # before open(): opening a FIFO waits for a writer
            if not stat.S_ISREG(mode):
                kind = "a directory" if stat.S_ISDIR(mode) else "a pipe or device"
                raise PreprocessError(f"{label}: not a regular file ({kind})")
            with open(source, "rb") as file:
                data = file.read(MAX_BYTES + 1)
        elif callable(getattr(source, "read", None)):
            data = source.read(MAX_BYTES + 1)
        else:
            data = None
    except PreprocessError:
        raise
    except (OSError, ValueError, TypeError) as error:  # ValueError: NUL in path, closed file
        reason = getattr(error, "strerror", None) or error
        raise PreprocessError(f"{label}: cannot read ({reason})") from None
    if not isinstance(data, bytes):
        kind = type(source).__name__
        raise PreprocessError(f"{label}: expected a path, bytes or binary file, got {kind}")
    if not data:
        raise PreprocessError(f"{label}: empty file (zero bytes)")
    if len(data) > MAX_BYTES:
        raise PreprocessError(f"{label}: file too large (over {MAX_BYTES} bytes)")
    return data


def load_image(source: Source, *, name: str | None = None) -> np.ndarray:
    """Decode an image file (path, bytes or binary stream) to grayscale float32 in [0, 1].

    Large JPEGs come back reduced by libjpeg (by 2, 4 or 8, both sides at least 512 px), and
    any picture with a side over 2,048 px box-reduced to at most that: plenty for a digit.
    """
    label = source_label(source, name)
    data = _read_bytes(source, label)
    try:
        # Pillow itself refuses > 2x its MAX_IMAGE_PIXELS in open(); our tighter limit is
        # checked from the header before any pixel is decoded.
        image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        width, height = image.size
        if width * height > MAX_PIXELS:
            size = f"{width}x{height}"
            raise PreprocessError(f"{label}: image too large ({size} pixels, limit {MAX_PIXELS})")
        if max(width, height) > MAX_SIDE:
            size = f"{width}x{height}"
            raise PreprocessError(
                f"{label}: image too large ({size}, longest side limit {MAX_SIDE})"
            )
        image.seek(0)  # first frame of an animation
        if image.format == "JPEG":
            if (scans := data.count(b"\xff\xda")) > MAX_JPEG_SCANS:
                limit = f"limit {MAX_JPEG_SCANS}"
                raise PreprocessError(f"{label}: JPEG with {scans} scans refused ({limit})")
            image.draft(image.mode, (_JPEG_DRAFT_SIDE, _JPEG_DRAFT_SIDE))
        image.load()
        try:
            ImageOps.exif_transpose(image, in_place=True)  # no copy of an upright picture
        except Exception:  # unreadable EXIF: keep the pixels as stored
            pass
        return _pil_to_gray(image)
    except PreprocessError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # warning if -W error
        raise PreprocessError(f"{label}: image too large (decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise PreprocessError(f"{label}: {_unidentified(data)}") from None
    except (OSError, SyntaxError, EOFError, ValueError, IndexError, KeyError):
        raise PreprocessError(f"{label}: truncated or corrupt image data") from None
    except Exception as error:  # Pillow plugins raise assorted types on hostile input
        raise PreprocessError(f"{label}: cannot decode image ({type(error).__name__})") from None


def identify(data: bytes) -> str | None:
    """Format name from the header only, any format Pillow knows (no pixels decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format
    except Exception:  # any failure means "not identified"
        return None


def _unidentified(data: bytes) -> str:
    """Why data no allowed format's decoder opened is refused: another format, a corrupt file
    of an allowed one, or not an image at all."""
    allowed = ", ".join(sorted(ALLOWED_FORMATS))
    found = identify(data)
    if found is not None and found not in ALLOWED_FORMATS:
        return f"unsupported image format {found} (allowed formats: {allowed})"
    signature = next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)
    if signature is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        signature = "WEBP"
    if signature is not None:
        return f"corrupt {signature} data (its header does not decode)"
    return f"not an image (cannot identify image file; allowed formats: {allowed})"


def _reduced(image: Image.Image) -> Image.Image:
    """A picture over _DECODE_MAX_SIDE box-reduced by the smallest whole factor that fits."""
    factor = -(-max(image.size) // _DECODE_MAX_SIDE)  # ceiling division
    return image.reduce(factor) if factor > 1 else image


def _pil_to_gray(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I;16"):  # full 16-bit range, whatever the pixels use
        wide = _reduced(image.convert("I"))  # reduce has no 16-bit mode; "I" holds the values
        return np.asarray(wide).astype(np.float32) / np.float32(65535)
    if image.mode in _REDUCIBLE_MODES:  # reduced before any conversion copies it
        image = _reduced(image)
    if image.mode in ("I", "F"):  # 32-bit; a 16-bit PNG may decode as "I"
        return array_to_gray(np.asarray(image))
    if "transparency" in image.info or image.mode in ("LA", "La", "PA", "RGBa", "RGBA"):
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")  # a quarter of RGB's memory, the same luma
    elif image.mode != "L":
        image = image.convert("RGB")  # palette, CMYK, YCbCr
    return array_to_gray(np.asarray(_reduced(image)))


def array_to_gray(array: np.ndarray) -> np.ndarray:
    """Any 2-D or HxWx{1,3,4} numeric array -> 2-D float32 in [0, 1]; alpha composited.

    Integers and floats above 1 or below 0 are read as 0-255 or 0-65535 when they fit, else
    stretched to [0, 1]; floats within [0, 1] are taken as they are.
    """
    if array.dtype == bool:
        array = array.view(np.uint8)
    if array.dtype.kind not in "uif" or array.ndim not in (2, 3) or array.size == 0:
        raise PreprocessError(
            f"expected a 2-D or HxWxC numeric array, got {array.dtype} {array.shape}"
        )
    has_bad_channels = array.ndim == 3 and array.shape[2] not in (1, 3, 4)
    if has_bad_channels or array.shape[0] * array.shape[1] > MAX_PIXELS:
        raise PreprocessError(f"unsupported array shape {array.shape} (1, 3 or 4 channels)")
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise PreprocessError("array holds NaN or infinite values")
    offset, span = 0.0, 1.0  # assumed range of the values
    if array.dtype.kind in "ui" or high > 1.0 or low < 0.0:
        if low >= 0 and high <= 255:
            span = 255.0
        elif low >= 0 and high <= 65535:
            span = 65535.0
        else:  # no known range: stretch
            offset, span = low, max(high - low, 1e-30)

    def channel(index: int | None) -> np.ndarray:  # one channel at a time keeps memory low
        values = array if index is None else array[:, :, index]
        scaled = (values.astype(np.float32) - np.float32(offset)) / np.float32(span)
        return np.clip(scaled, 0, 1)

    if array.ndim == 2 or array.shape[2] == 1:
        return channel(None if array.ndim == 2 else 0)
    luma = channel(0) * _LUMA_RED + channel(1) * _LUMA_GREEN + channel(2) * _LUMA_BLUE
    if array.shape[2] == 3:
        return luma
    alpha = channel(3)
    on_white, on_black = luma * alpha + (1.0 - alpha), luma * alpha
    # Dark drawing on a transparent canvas goes on white paper; only light ink that would
    # vanish on white (a white brush on a transparent canvas) goes on black.
    if np.ptp(on_white) < _FLAT_ON_WHITE_CONTRAST and np.ptp(on_black) > np.ptp(on_white):
        return on_black
    return on_white
