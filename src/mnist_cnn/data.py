"""MNIST IDX files: reading, validation and SHA-256 verification, fully offline.

The four canonical MNIST files travel inside the package (`datasets/mnist/`), so an installed
mnist-cnn trains with no network. Every failure raises `DataError` naming the file and what was
expected versus found.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn import MnistCnnError

PACKAGED_DIR = Path(__file__).parent / "datasets" / "mnist"
NUM_CLASSES = 10
IMAGE_SIZE = 28

# IDX magic numbers: 0x0000 + type code 0x08 (unsigned byte) + number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the decompressed canonical MNIST files (shared/data/mnist/SHA256SUMS.raw): they
# identify the data whatever the compression.
MNIST_SHA256 = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}
# Item counts of the canonical files: data of exactly this shape claims to be MNIST and is
# verified against the pinned hashes; anything else is unknown data, checked structurally.
MNIST_COUNTS = {"train": 60_000, "test": 10_000}

GZIP_MAGIC = b"\x1f\x8b"


class DataError(MnistCnnError):
    """A data file is missing, malformed or not the data it claims to be."""


@dataclass(frozen=True)
class Split:
    """One split: images uint8 (N, 28, 28), white digit on black; labels uint8 (N,) in 0..9."""

    images: np.ndarray
    labels: np.ndarray
    sha256: dict[str, str]  # file name -> SHA-256 of its decompressed bytes


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    source: str  # directory the files were read from

    @property
    def sha256(self) -> dict[str, str]:
        return {**self.train.sha256, **self.test.sha256}


def _find_file(directory: Path, name: str) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory / name}[.gz]: missing (expected the MNIST file {name})")


def _read_bytes(path: Path) -> bytes:
    """Read a file, decompressing it when it starts with the gzip magic bytes."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from None


def parse_idx(data: bytes, path: Path, *, magic: int, ndim: int) -> np.ndarray:
    """Parse IDX bytes of unsigned bytes into an array, checking magic number and length."""
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
    expected = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated data" if len(data) < expected else "trailing bytes"
        raise DataError(
            f"{path}: {problem} (header says shape {shape}: expected {expected} bytes, "
            f"found {len(data)})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def load_split(directory: Path, split: str, *, verify: bool) -> Split:
    """Load one split from `directory`; `verify` forces the pinned MNIST hash check."""
    image_name, label_name = SPLIT_FILES[split]
    image_path, label_path = _find_file(directory, image_name), _find_file(directory, label_name)
    image_bytes, label_bytes = _read_bytes(image_path), _read_bytes(label_path)
    images = parse_idx(image_bytes, image_path, magic=IMAGES_MAGIC, ndim=3)
    labels = parse_idx(label_bytes, label_path, magic=LABELS_MAGIC, ndim=1)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{image_path}: wrong image size (expected {IMAGE_SIZE}x{IMAGE_SIZE}, "
            f"found {images.shape[1]}x{images.shape[2]})"
        )
    if len(images) == 0:
        raise DataError(f"{image_path}: no images (expected at least 1, found 0)")
    if len(images) != len(labels):
        raise DataError(
            f"{label_path}: label count does not match {image_path.name} "
            f"(expected {len(images)} labels, found {len(labels)})"
        )
    if labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(
            f"{label_path}: label outside 0-9 (expected 0..9, found {labels[bad]} at index {bad})"
        )
    hashes = {}
    for name, path, data in (
        (image_name, image_path, image_bytes),
        (label_name, label_path, label_bytes),
    ):
        digest = hashlib.sha256(data).hexdigest()
        claims_mnist = len(images) == MNIST_COUNTS[split]
        if (verify or claims_mnist) and digest != MNIST_SHA256[name]:
            raise DataError(
                f"{path}: SHA-256 mismatch for the pinned MNIST file "
                f"(expected {MNIST_SHA256[name]}, found {digest}); the file is corrupt"
            )
        hashes[name] = digest
    return Split(images=images, labels=labels, sha256=hashes)


def load_mnist(data_dir: str | Path | None = None) -> Dataset:
    """Load train and test splits from `data_dir` (gzipped or raw IDX), or the packaged MNIST.

    The packaged files are always verified against the pinned hashes. Files in `data_dir` with
    MNIST's exact item counts are too; other data is checked structurally only.
    """
    packaged = data_dir is None
    directory = PACKAGED_DIR if packaged else Path(data_dir)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (expected the four MNIST IDX files)")
    return Dataset(
        train=load_split(directory, "train", verify=packaged),
        test=load_split(directory, "test", verify=packaged),
        source=str(directory),
    )


def to_model_input(images: np.ndarray, data_format: str = "channels_last") -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in [0, 1] with the channel axis the model expects."""
    scaled = images.astype(np.float32) / 255.0  # scale pixels to the [0, 1] range
    axis = 1 if data_format == "channels_first" else -1
    return np.expand_dims(scaled, axis)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]
