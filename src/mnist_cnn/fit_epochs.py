"""fit_epochs: train one epoch per `fit` call in train's own seeded order, from any step.

Keras's `shuffle=True` draws each epoch's order from TensorFlow's global random state,
which a new process cannot put back where an interrupted one was. Here epoch e's order is
`epoch_order(seed, e)`, a NumPy permutation, so a resumed run recomputes it and skips the
batches the interrupted run had done: it trains on exactly the batches, in exactly the
order, of an uninterrupted run.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from mnist_cnn import MnistCnnError, runtime
from mnist_cnn.config import TrainConfig


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order of the `count` training images in epoch `epoch` (0-based) of seed `seed`."""
    return np.random.default_rng([seed, epoch]).permutation(count)


def steps_per_epoch(config: TrainConfig, count: int) -> int:
    return math.ceil(count / config.batch_size)


def fit_epochs(
    trained: keras.Model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    config: TrainConfig,
    *,
    start_epoch: int = 0,
    start_step: int = 0,
    callbacks: list[keras.callbacks.Callback],
    distributed: bool = False,
) -> None:
    """Fit epochs `start_epoch` to `config.epochs - 1`, the first from batch `start_step`.

    With `fast_kernels` the batches are gathered by runtime.batches_in_order, otherwise Keras
    slices the reordered NumPy arrays (the tutorial's own pipeline, without its shuffle).
    `distributed` (a multi-worker run): always the former, each worker taking its share of
    every global batch of `config.batch_size`.
    """
    batches = None
    if config.fast_kernels or distributed:
        batches = runtime.batches_in_order(x_train, y_train, config.batch_size)
    if distributed:
        from mnist_cnn.distributed import shard_by_data

        in_order = batches

        def batches(order: np.ndarray):
            return shard_by_data(in_order(order))

    for epoch in range(start_epoch, config.epochs):
        order = epoch_order(config.seed, epoch, len(x_train))
        if epoch == start_epoch:
            order = order[start_step * config.batch_size :]
        if batches is not None:
            data = {"x": batches(order)}
        else:
            data = {"x": x_train[order], "y": y_train[order], "batch_size": config.batch_size}
        history = trained.fit(
            **data,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            callbacks=callbacks,
            verbose=0,  # progress.py's callbacks report progress, with the run's epoch count
        )
        if trained.stop_training or not np.isfinite(history.history["loss"][-1]):
            raise MnistCnnError("training diverged (loss became NaN); try a lower --learning-rate")
        # The last update can turn the weights NaN after a finite loss: such a model is no
        # run to save (it was saved, with NaN test figures and no model.onnx).
        if not all(np.isfinite(weight).all() for weight in trained.get_weights()):
            raise MnistCnnError(
                "training diverged (the weights became NaN or infinite); try a lower "
                "--learning-rate"
            )
