"""fit_epochs: train's own seeded order of the images, epoch by epoch."""

from __future__ import annotations

import numpy as np

from mnist_cnn.config import TrainConfig
from mnist_cnn.fit_epochs import epoch_order, steps_per_epoch


def test_each_epoch_is_a_new_permutation_that_a_new_process_can_recompute():
    first, second = epoch_order(seed=3, epoch=0, count=100), epoch_order(3, 1, 100)
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert not np.array_equal(first, second)  # reshuffled every epoch
    assert not np.array_equal(first, np.arange(100))  # shuffled at all
    assert np.array_equal(first, epoch_order(3, 0, 100))  # the same seed and epoch, same order
    assert not np.array_equal(first, epoch_order(4, 0, 100))  # another seed, another order


def test_the_last_batch_of_an_epoch_may_be_short():
    assert steps_per_epoch(TrainConfig(batch_size=32), 100) == 4
    assert steps_per_epoch(TrainConfig(batch_size=25), 100) == 4
