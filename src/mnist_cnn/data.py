"""IDX datasets: reading, validation and identification by SHA-256, fully offline.

The four canonical MNIST files travel inside the package (`datasets/mnist/`), so an installed
mnist-cnn trains with no network. Any other directory of IDX files is identified by its files'
hashes against the registry (dataset_registry.py): a known dataset must match all its pinned
hashes, unknown IDX data is checked structurally only. Every failure raises `DataError` naming
the file and what was expected versus found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.dataset_registry import (
    DATASETS,
    DIGITS,
    STANDARD_FILES,
    DatasetInfo,
    find_by_file_names,
    find_by_hash,
)
from mnist_cnn.idx import (  # noqa: F401  (re-exported: the IDX names callers use)
    IMAGES_MAGIC,
    LABELS_MAGIC,
    NUM_CLASSES,
    DataError,
    IdxFile,
    parse_idx,
    parse_labels,
    read_idx_file,
)

PACKAGED_DIR = Path(__file__).parent / "datasets" / "mnist"
IMAGE_SIZE = 28

SPLIT_FILES = STANDARD_FILES

# SHA-256 of the decompressed canonical MNIST files (shared/data/mnist/SHA256SUMS.raw): they
# identify the data whatever the compression.
MNIST_SHA256 = {
    item.stem: item.raw_sha256 for item in DATASETS["mnist"].remote_files if item.raw_sha256
}

# How a dataset was recognised: by its pinned hashes, by its own file names only (EMNIST's
# members have no published hash), or not at all (unknown IDX data, checked structurally).
BY_HASH, BY_FILE_NAMES, UNIDENTIFIED = "sha256", "file names", "none"


@dataclass(frozen=True)
class Split:
    """One split: images uint8 (N, 28, 28), white on black, upright; labels uint8 (N,) 0..9."""

    images: np.ndarray
    labels: np.ndarray
    sha256: dict[str, str]  # file name -> SHA-256 of its decompressed bytes


@dataclass(frozen=True)
class Dataset:
    train: Split
    test: Split
    source: str  # directory the files were read from
    name: str | None = None  # registry name; None for unknown IDX data
    class_names: tuple[str, ...] = DIGITS
    identified_by: str = UNIDENTIFIED  # BY_HASH, BY_FILE_NAMES or UNIDENTIFIED

    @property
    def sha256(self) -> dict[str, str]:
        return {**self.train.sha256, **self.test.sha256}

    @property
    def identity(self) -> dict[str, object]:
        """What a run records about its data (run.py's `dataset` record)."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "identified_by": self.identified_by,
        }


def _naming(directory: Path) -> dict[str, tuple[str, str]]:
    """The split file names present: the standard ones, else one dataset's own (QMNIST...)."""
    for files in (STANDARD_FILES, *(info.split_files for info in DATASETS.values())):
        stems = [stem for pair in files.values() for stem in pair]
        if all(
            (directory / f"{stem}.gz").is_file() or (directory / stem).is_file() for stem in stems
        ):
            return files
    return STANDARD_FILES  # none complete: read_idx_file names the first missing file


def _split(image: IdxFile, label: IdxFile, *, transposed: bool) -> Split:
    images = parse_idx(image.content, image.path, magic=IMAGES_MAGIC, ndim=3)
    labels = parse_labels(label)
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{image.path}: wrong image size (expected {IMAGE_SIZE}x{IMAGE_SIZE}, "
            f"found {images.shape[1]}x{images.shape[2]})"
        )
    if len(images) == 0:
        raise DataError(f"{image.path}: no images (expected at least 1, found 0)")
    if len(images) != len(labels):
        raise DataError(
            f"{label.path}: label count does not match {image.path.name} "
            f"(expected {len(images)} labels, found {len(labels)})"
        )
    if labels.max() >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(
            f"{label.path}: label outside 0-9 (expected 0..9, found {labels[bad]} at index {bad})"
        )
    if transposed:  # EMNIST stores each image column by column
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    hashes = {_stem(image.path): image.sha256, _stem(label.path): label.sha256}
    return Split(images=images, labels=labels, sha256=hashes)


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz")


def _identify(
    files: dict[tuple[str, int], IdxFile], naming: dict[str, tuple[str, str]]
) -> tuple[DatasetInfo | None, str]:
    """The registry dataset these files are, checked against every pinned hash it has."""
    matched = {
        info.name: info
        for file in files.values()
        for digest in (file.file_sha256, file.sha256)
        for info, _ in find_by_hash(digest)
    }
    if len(matched) > 1:
        raise DataError(
            f"{next(iter(files.values())).path.parent}: files of different datasets "
            f"(expected the four files of one, found files of {', '.join(sorted(matched))})"
        )
    if not matched:
        info = find_by_file_names({stem for pair in naming.values() for stem in pair})
        return (info, BY_FILE_NAMES) if info is not None else (None, UNIDENTIFIED)
    (info,) = matched.values()
    for (split, index), file in files.items():
        published = info.remote_file(info.split_files[split][index])
        if published is None or file.file_sha256 == published.sha256:
            continue
        if published.raw_sha256 is None:
            raise DataError(
                f"{file.path}: SHA-256 mismatch for the pinned {info.name} file "
                f"{published.name} (expected {published.sha256}, found {file.file_sha256}; "
                "no hash of its decompressed bytes is pinned, so only the published .gz "
                "can be checked)"
            )
        if file.sha256 != published.raw_sha256:
            raise DataError(
                f"{file.path}: SHA-256 mismatch for the pinned {info.name} file "
                f"(expected {published.raw_sha256}, found {file.sha256}); the file is corrupt "
                f"or not {info.name}'s"
            )
    return info, BY_HASH


def load_idx_dataset(data_dir: str | Path, *, expected: str | None = None) -> Dataset:
    """Load both splits of the IDX files (gzipped or raw) in `data_dir`, identified by hash.

    Files matching a registry dataset's hashes must match all of that dataset's pinned hashes;
    unknown IDX data is checked structurally only. `expected` (a registry name) refuses any
    other data.
    """
    directory = Path(data_dir)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (expected the four IDX files)")
    naming = _naming(directory)
    files = {
        (split, index): read_idx_file(directory, stem)
        for split, pair in naming.items()
        for index, stem in enumerate(pair)
    }
    info, identified_by = _identify(files, naming)
    if expected is not None and (info is None or info.name != expected):
        raise DataError(
            f"{directory}: not the {expected} files (expected their pinned SHA-256, found "
            f"{'files of ' + info.name if info else 'data no registry hash matches'})"
        )
    transposed = info is not None and info.transposed
    splits = {
        split: _split(files[split, 0], files[split, 1], transposed=transposed) for split in naming
    }
    return Dataset(
        train=splits["train"],
        test=splits["test"],
        source=str(directory),
        name=info.name if info else None,
        class_names=info.class_names if info else DIGITS,
        identified_by=identified_by,
    )


def load_mnist(data_dir: str | Path | None = None) -> Dataset:
    """The packaged MNIST (always verified against its pinned hashes), or `data_dir`'s data:
    any IDX dataset, identified by hash (see load_idx_dataset)."""
    if data_dir is None:
        return load_idx_dataset(PACKAGED_DIR, expected="mnist")
    return load_idx_dataset(data_dir)


def load_split(directory: Path, split: str, *, verify: bool) -> Split:
    """One split under the standard file names; `verify` checks the pinned MNIST hashes."""
    image, label = (read_idx_file(directory, stem) for stem in SPLIT_FILES[split])
    for file in (image, label):
        if verify and file.sha256 != MNIST_SHA256[_stem(file.path)]:
            raise DataError(
                f"{file.path}: SHA-256 mismatch for the pinned mnist file "
                f"(expected {MNIST_SHA256[_stem(file.path)]}, found {file.sha256})"
            )
    return _split(image, label, transposed=False)


def to_model_input(images: np.ndarray, data_format: str = "channels_last") -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 in [0, 1] with the channel axis the model expects."""
    scaled = images.astype(np.float32) / 255.0  # scale pixels to the [0, 1] range
    axis = 1 if data_format == "channels_first" else -1
    return np.expand_dims(scaled, axis)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]
