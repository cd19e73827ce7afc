"""runtime: the training input pipeline and thread settings."""

import os
import subprocess
import sys

import numpy as np

import mnist_cnn  # noqa: F401  (sets the TensorFlow environment before TensorFlow loads)
from mnist_cnn import runtime


def epochs_of(batches, count: int) -> list[np.ndarray]:
    """Labels seen per epoch (each label is the image's index, so order is visible)."""
    return [np.concatenate([labels.numpy() for _, labels in batches]) for _ in range(count)]


def test_training_batches_cover_every_image_once_per_epoch_in_a_new_order():
    images = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    labels = np.arange(100, dtype=np.int64)
    batches = runtime.training_batches(images, labels, batch_size=32, seed=3)
    first, second = epochs_of(batches, 2)
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert not np.array_equal(first, second)  # reshuffled every epoch
    assert not np.array_equal(first, np.arange(100))  # shuffled at all
    sizes = [len(labels) for _, labels in batches]
    assert sizes == [32, 32, 32, 4]
    for batch_images, batch_labels in batches:  # images stay paired with their labels
        assert np.array_equal(batch_images.numpy().reshape(-1), batch_labels.numpy())


def test_training_batches_same_seed_same_order_other_seed_other_order():
    images = np.zeros((64, 1, 1, 1), dtype=np.float32)
    labels = np.arange(64)
    runs = [epochs_of(runtime.training_batches(images, labels, 16, seed), 2) for seed in (5, 5, 6)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not np.array_equal(runs[0][0], runs[2][0])


def onednn_setting(environment: dict[str, str]) -> str:
    code = "import os, mnist_cnn; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip()


def test_onednn_is_on_by_default_and_the_user_can_turn_it_off():
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert onednn_setting(environment) == "1"
    assert onednn_setting({**environment, "TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"
