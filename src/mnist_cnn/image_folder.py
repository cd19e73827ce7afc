"""Your own labelled pictures as a training set: `load_image_folder(DIR)` for `train --images`.

DIR holds one folder per class, named by its digit (`0/`, `1/`, ... `9/`; absent digits are
allowed), of pictures in any format predict reads. Each picture is prepared exactly as
`mnist-cnn predict` prepares it (preprocess.py), so that the model learns from what it will
later see. A file that cannot be read or holds no digit is listed and skipped, never fatal.
A seeded share of every class is held out as the test split, on which train then reports.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import NUM_CLASSES, Dataset, Split, load_mnist
from mnist_cnn.predict import IMAGE_SUFFIXES

logger = logging.getLogger(__name__)
# Share of each class's pictures held out to measure the model on (at least one picture of a
# class with two or more): a fifth, the usual 80/20 split.
HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0  # the split depends on the file names only, not on the training seed


class ImageFolderError(MnistCnnError):
    """The folder does not hold labelled pictures in the expected layout."""


@dataclass(frozen=True)
class Skipped:
    file: str
    reason: str


def _class_folders(root: Path) -> dict[int, Path]:
    if not root.is_dir():
        raise ImageFolderError(f"{root}: not a directory (expected one folder per digit, 0-9)")
    folders = {}
    for child in sorted(root.iterdir()):
        digit = child.name.isascii() and child.name.isdigit()  # not "²" or "٣"
        if child.is_dir() and digit and int(child.name) < NUM_CLASSES:
            folders[int(child.name)] = child
    if not folders:
        found = ", ".join(sorted(c.name for c in root.iterdir() if c.is_dir())[:5]) or "none"
        raise ImageFolderError(
            f"{root}: no class folders named 0 to 9 (found folders: {found}); put each "
            "picture in the folder of its digit, e.g. 7/photo.jpg"
        )
    return folders


def _held_out(count: int, digit: int) -> np.ndarray:
    """Indices of a class's pictures held out for testing (seeded, by class)."""
    if count < 2:
        return np.array([], dtype=int)
    size = max(1, round(HELD_OUT_FRACTION * count))
    return np.random.default_rng([SPLIT_SEED, digit]).choice(count, size, replace=False)


def load_image_folder(root: str | Path) -> tuple[Dataset, list[Skipped]]:
    """(dataset of the pictures, prepared as predict does, split train/test; skipped files)."""
    from mnist_cnn.preprocess import PreprocessError, preprocess

    root = Path(root)
    images: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    digest = hashlib.sha256()
    skipped = []
    for digit, folder in _class_folders(root).items():
        prepared = []
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            data = path.read_bytes()  # read once: prepared and fingerprinted
            try:
                prepared.append(preprocess(data, name=str(path)))
            except PreprocessError as error:
                skipped.append(Skipped(str(path), str(error).removeprefix(f"{path}: ")))
                continue
            digest.update(f"{digit}/{path.name}\n".encode())
            digest.update(data)
        test = set(_held_out(len(prepared), digit).tolist())
        for index, image in enumerate(prepared):
            split = "test" if index in test else "train"
            images[split].append(np.round(image * 255).astype(np.uint8))
            labels[split].append(digit)
    for item in skipped:
        logger.warning("%s: skipped (%s)", item.file, item.reason)
    if not images["train"] or not images["test"]:
        raise ImageFolderError(
            f"{root}: {len(images['train']) + len(images['test'])} usable pictures; "
            "need at least 2 in some class, one to train on and one to test on"
        )
    fingerprint = {"images": digest.hexdigest()}
    splits = {
        name: Split(
            images=np.stack(images[name]) if images[name] else np.zeros((0, 28, 28), np.uint8),
            labels=np.array(labels[name], dtype=np.uint8),
            sha256=fingerprint,
        )
        for name in ("train", "test")
    }
    return Dataset(train=splits["train"], test=splits["test"], source=str(root.resolve())), skipped


def training_data(config: TrainConfig) -> Dataset:
    """The data a config trains on: its image folder, else its IDX directory (default the
    packaged MNIST). Evaluate and report read a run's test split through this too."""
    if config.images_dir is not None:
        return load_image_folder(config.images_dir)[0]
    return load_mnist(config.data_dir)
