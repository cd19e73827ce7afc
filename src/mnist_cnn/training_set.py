"""What a recipe trains on: the MNIST training images less those held out for calibration,
with the recipe's flagged 1s (flagged_ones.py) and synthetic outliers (outliers.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import DIGITS, Dataset, one_hot, to_model_input
from mnist_cnn.flagged_ones import flag_ones
from mnist_cnn.outliers import synthetic_outliers, uniform_targets


@dataclass(frozen=True)
class TrainingSet:
    inputs: np.ndarray  # the model's input layout, digits then outliers
    targets: np.ndarray  # one-hot for the digits, uniform for the outliers
    digit_images: int
    outlier_images: int


def held_out_split(
    dataset: Dataset, config: TrainConfig
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (validation images, labels)): the last
    `config.validation_images` training images are held out for calibration."""
    images, labels = dataset.train.images, dataset.train.labels
    keep = len(images) - config.validation_images
    if keep < 1:
        raise MnistCnnError(
            f"validation_images={config.validation_images} leaves no training images "
            f"(the training set has {len(images)})"
        )
    return (images[:keep], labels[:keep]), (images[keep:], labels[keep:])


def training_set(dataset: Dataset, config: TrainConfig) -> TrainingSet:
    """The arrays `config` trains on, the same for the same seed (so a resumed run sees them
    again)."""
    images, labels = held_out_split(dataset, config)[0]
    if config.limit is not None:
        images, labels = images[: config.limit], labels[: config.limit]
    if config.flagged_ones > 0:
        if dataset.class_names != DIGITS:
            raise MnistCnnError(
                f"flagged_ones applies to the digits 0-9, not to {dataset.name or 'this data'}"
            )
        images = flag_ones(images, labels, config.flagged_ones, config.seed)
    outlier_count = round(config.outliers * len(images))
    outliers = synthetic_outliers(
        images, labels, outlier_count, config.seed, letters=config.letter_outliers
    )
    return TrainingSet(
        inputs=to_model_input(np.concatenate([images, outliers]), config.data_format),
        targets=np.concatenate([one_hot(labels), uniform_targets(outlier_count)]),
        digit_images=len(images),
        outlier_images=outlier_count,
    )
