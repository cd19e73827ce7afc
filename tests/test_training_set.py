"""The arrays a recipe trains on: held-out split, flagged 1s, outliers, seeded."""

import dataclasses

import numpy as np
import pytest

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset, Split
from mnist_cnn.training_set import held_out_split, training_set


@pytest.fixture(scope="module")
def small(mnist):
    train = Split(mnist.train.images[:1000], mnist.train.labels[:1000], {})
    test = Split(mnist.test.images[:10], mnist.test.labels[:10], {})
    return Dataset(train=train, test=test, source="memory", name="mnist")


def test_the_last_images_are_held_out(small):
    (images, labels), (held_images, held_labels) = held_out_split(
        small, TrainConfig(validation_images=100)
    )
    assert len(images) == 900 and len(held_images) == 100
    np.testing.assert_array_equal(held_labels, small.train.labels[900:])
    with pytest.raises(MnistCnnError, match="leaves no training images"):
        held_out_split(small, TrainConfig(validation_images=1000))


def test_outliers_follow_the_digits_with_uniform_targets(small):
    config = TrainConfig(validation_images=100, outliers=0.1)
    training = training_set(small, config)
    assert (training.digit_images, training.outlier_images) == (900, 90)
    assert training.inputs.shape[0] == training.targets.shape[0] == 990
    np.testing.assert_allclose(training.targets[900:], 0.1)
    np.testing.assert_array_equal(training.targets[:900].argmax(axis=1), small.train.labels[:900])


def test_flagged_ones_change_only_ones_and_the_same_way_each_time(small):
    plain = training_set(small, TrainConfig())
    flagged = training_set(small, TrainConfig(flagged_ones=0.5))
    changed = (plain.inputs != flagged.inputs).reshape(1000, -1).any(axis=1)
    assert changed.any()
    assert (small.train.labels[changed] == 1).all()
    np.testing.assert_array_equal(flagged.targets, plain.targets)
    np.testing.assert_array_equal(
        flagged.inputs, training_set(small, TrainConfig(flagged_ones=0.5)).inputs
    )


def test_flagged_ones_are_refused_for_other_classes(small):
    clothing = dataclasses.replace(small, name="fashion-mnist", class_names=tuple("ABCDEFGHIJ"))
    with pytest.raises(MnistCnnError, match="flagged_ones applies to the digits"):
        training_set(clothing, TrainConfig(flagged_ones=0.5))
