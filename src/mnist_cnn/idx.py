"""The IDX file format (yann.lecun.com/exdb/mnist): reading gzipped or raw files, parsing
and checking their headers. Every failure raises `DataError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn import MnistCnnError

# IDX magic numbers: 0x0000 + type code (0x08 unsigned byte, 0x0C int32) + number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
# QMNIST's labels: int32 rows of 8 fields (class, NIST writer, ...); the class is field 0.
INT_LABELS_MAGIC = 0x00000C02
NUM_CLASSES = 10
GZIP_MAGIC = b"\x1f\x8b"


class DataError(MnistCnnError):
    """A data file is missing, malformed or not the data it claims to be."""


@dataclass(frozen=True)
class IdxFile:
    path: Path
    content: bytes  # decompressed
    file_sha256: str  # of the bytes on disk (the published .gz, when downloaded as is)
    sha256: str  # of the decompressed bytes


def find_idx_file(directory: Path, name: str) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory / name}[.gz]: missing (expected the IDX file {name})")


def read_idx_file(directory: Path, stem: str) -> IdxFile:
    """`directory/stem.gz` or `directory/stem`, read and decompressed, with both hashes."""
    path = find_idx_file(directory, stem)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    content = decompress(raw, path)
    return IdxFile(
        path, content, hashlib.sha256(raw).hexdigest(), hashlib.sha256(content).hexdigest()
    )


def decompress(raw: bytes, path: Path) -> bytes:
    """The bytes of a file, decompressed when they start with the gzip magic bytes."""
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from None


def parse_idx(data: bytes, path: Path, *, magic: int, ndim: int, dtype: str = "u1") -> np.ndarray:
    """Parse IDX bytes into an array of `dtype` (big-endian), checking magic number and length."""
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(
            f"{path}: truncated header (expected at least {header_size} bytes, found {len(data)})"
        )
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise DataError(
            f"{path}: wrong magic number (expected {magic:#010x}, found {found_magic:#010x})"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    item = np.dtype(f">{dtype}")
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * item.itemsize
    if len(data) != expected:
        problem = "truncated data" if len(data) < expected else "trailing bytes"
        raise DataError(
            f"{path}: {problem} (header says shape {shape}: expected {expected} bytes, "
            f"found {len(data)})"
        )
    return np.frombuffer(data, dtype=item, offset=header_size).reshape(shape)


def parse_labels(file: IdxFile) -> np.ndarray:
    """IDX1 unsigned bytes, or QMNIST's IDX2 int32 rows whose first field is the class."""
    if int.from_bytes(file.content[:4], "big") == INT_LABELS_MAGIC:
        rows = parse_idx(file.content, file.path, magic=INT_LABELS_MAGIC, ndim=2, dtype="i4")
        classes = rows[:, 0] if rows.ndim == 2 and rows.shape[1] else rows.reshape(-1)
        if len(classes) and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
            bad = int(np.argmax((classes < 0) | (classes >= NUM_CLASSES)))
            raise DataError(
                f"{file.path}: label outside 0-9 (expected 0..9, found {classes[bad]} "
                f"at index {bad})"
            )
        return classes.astype(np.uint8)
    return parse_idx(file.content, file.path, magic=LABELS_MAGIC, ndim=1)
