"""Shared fixtures: tiny MNIST-format data sets and a tiny trained run.

Tests that need `tutorial_run` are marked `slow`, those that drive Chromium `browser`
(markers declared in pyproject.toml); deselect them with `-m "not slow and not browser"`.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.data import IMAGES_MAGIC, LABELS_MAGIC, SPLIT_FILES, load_mnist

# A fixture that trains for minutes, and the marker every test using it must carry, so that
# `-m "not slow"` deselects all of them: an unmarked one is a collection error, not a surprise.
MARKER_OF_FIXTURE = {"tutorial_run": "slow"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        f"{item.nodeid} uses {fixture} but lacks @pytest.mark.{marker}"
        for item in items
        for fixture, marker in MARKER_OF_FIXTURE.items()
        if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None
    ]
    if unmarked:
        raise pytest.UsageError("\n".join(unmarked))


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_dir(
    directory: Path,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    compress: bool = True,
) -> Path:
    """Write images/labels per split under the canonical MNIST file names."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, (images, labels) in splits.items():
        image_name, label_name = SPLIT_FILES[split]
        for name, array, magic in (
            (image_name, images, IMAGES_MAGIC),
            (label_name, labels, LABELS_MAGIC),
        ):
            data = idx_bytes(array, magic)
            if compress:
                (directory / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
            else:
                (directory / name).write_bytes(data)
    return directory


@pytest.fixture(scope="session")
def mnist():
    return load_mnist()


@pytest.fixture(scope="session")
def tiny_splits(mnist):
    """512 training and 200 test images of the real MNIST (structurally valid, not pinned)."""
    return {
        "train": (mnist.train.images[:512], mnist.train.labels[:512]),
        "test": (mnist.test.images[:200], mnist.test.labels[:200]),
    }


@pytest.fixture
def tiny_data_dir(tmp_path, tiny_splits) -> Path:
    return write_idx_dir(tmp_path / "tiny-mnist", tiny_splits)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_splits) -> Path:
    """A run trained for one epoch on 512 images (seconds): for evaluate/predict/report tests."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import train

    data_dir = write_idx_dir(tmp_path_factory.mktemp("data") / "tiny", tiny_splits)
    output = tmp_path_factory.mktemp("runs") / "tiny"
    # One batch per compiled call, so that a row is logged every 2 of the 8 batches (with the
    # default 16 per call, Keras calls back once per 16).
    config = TrainConfig(
        data_dir=str(data_dir),
        batch_size=64,
        learning_rate=1e-3,
        log_every=2,
        steps_per_execution=1,
    )
    train(config, output, verbose=0)
    return output


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run, free to lose or regain its model.onnx."""
    import shutil

    return shutil.copytree(tiny_run, tmp_path / "run")


@pytest.fixture(scope="session")
def images(mnist) -> np.ndarray:
    """300 MNIST test images, (N, 28, 28) float32 in [0, 1]."""
    return mnist.test.images[:300].astype(np.float32) / 255.0


@pytest.fixture(scope="session")
def tutorial_run(tmp_path_factory) -> Path:
    """The full tutorial recipe (minutes): trained once per session, for the slow tests."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import train

    output = tmp_path_factory.mktemp("runs") / "tutorial"
    train(TrainConfig(), output, verbose=2)
    return output


@pytest.fixture(scope="session")
def good_run(tmp_path_factory) -> Path:
    """One epoch on 12,000 images (~30 s, ~96% test accuracy): reads hand-drawn digits."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import train

    output = tmp_path_factory.mktemp("runs") / "good"
    train(TrainConfig(limit=12000, batch_size=128, learning_rate=1e-3), output, verbose=0)
    return output


@pytest.fixture(scope="session")
def calibrated_run(tmp_path_factory, tiny_splits) -> Path:
    """The tiny run with its last 200 training images held out, so train calibrates it.
    Three epochs: one (5 steps on the 312 left) gives a model near chance, whose answered
    share swings with the data order (0.55-0.56 over seeds 0-2, against 0.83-0.88 with three)."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import train

    data_dir = write_idx_dir(tmp_path_factory.mktemp("data") / "tiny", tiny_splits)
    output = tmp_path_factory.mktemp("runs") / "calibrated"
    config = TrainConfig(
        data_dir=str(data_dir), batch_size=64, learning_rate=1e-3, validation_images=200, epochs=3
    )
    train(config, output, verbose=0)
    return output
