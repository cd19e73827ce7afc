"""The tutorial network: build_model(config) -> keras.Model."""

from __future__ import annotations

import keras
from keras import layers

from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES

TUTORIAL_PARAMETERS = 3_274_634  # the count the tutorial's model.summary() printed


def input_shape(data_format: str) -> tuple[int, int, int]:
    if data_format == "channels_first":
        return (1, IMAGE_SIZE, IMAGE_SIZE)
    return (IMAGE_SIZE, IMAGE_SIZE, 1)


def build_model(
    data_format: str = "channels_last",
    dtype_policy: str | None = None,
    dense_layer: type[layers.Dense] = layers.Dense,
) -> keras.Model:
    """Conv(32,5x5) -> pool -> Conv(64,5x5) -> pool -> Dense(1024) -> Dense(10) softmax.

    Layer outputs (channels_first): 32x28x28 -> 32x14x14 -> 64x14x14 -> 64x7x7 -> 3136 -> 1024
    -> 10. The layout only changes where the channel axis sits, not the weights' count.
    `dtype_policy` (e.g. "mixed_bfloat16") sets the hidden layers' arithmetic; the softmax
    layer computes in float32 either way. `dense_layer` builds the 1,024-unit layer (train
    passes one with a faster backward pass, dense_gradient.py; the weights are the same).
    """
    hidden = {} if dtype_policy is None else {"dtype": dtype_policy}
    conv = {"kernel_size": 5, "strides": 1, "padding": "same", "data_format": data_format}
    pool = {"pool_size": 2, "strides": 2, "padding": "same", "data_format": data_format}
    return keras.Sequential(
        [
            keras.Input(shape=input_shape(data_format), name="image"),
            layers.Conv2D(32, activation="relu", name="conv1", **conv, **hidden),
            layers.MaxPooling2D(name="pool1", **pool, **hidden),
            layers.Conv2D(64, activation="relu", name="conv2", **conv, **hidden),
            layers.MaxPooling2D(name="pool2", **pool, **hidden),
            layers.Flatten(data_format=data_format, name="flatten", **hidden),
            dense_layer(1024, activation="relu", name="dense", **hidden),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities", dtype="float32"),
        ],
        name="tutorial_cnn",
    )


def plain_copy(model: keras.Model, data_format: str) -> keras.Model:
    """The trained network as an ordinary float32 model, to evaluate, export and save like any
    other: one model for a multi-worker run (not one per replica), float32 for a bf16 one,
    and without the optimizer, which plain Keras cannot load when it is FusedAdam."""
    copy = build_model(data_format)
    copy.set_weights(model.get_weights())
    return copy
