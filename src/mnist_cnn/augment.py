"""Training-time augmentation: MNIST digits made to look the way captured digits do after
preprocessing (blurred, thicker or thinner, fainter, warped, tilted).

Everything here is computed from the MNIST training images themselves: no typeface, no
corpus picture. Keras's own layers do the perspective, rotation, zoom and shift; the small
layers below do the stroke width (grey dilation/erosion), the blur and the ink gamma (each
renormalised as the preprocessor would) and the elastic warp. All are active in training
only, so the saved model is the plain network.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mnist_cnn import preprocess
from mnist_cnn.config import TrainConfig

# Share of the images given each capture effect (independently; 8% get none), so the
# accuracy on clean digits holds (99.5% goal on MNIST test).
CAPTURE_PROBABILITY = 0.4
# Gaussian blur sigmas at 28x28, in pixels, one drawn per blurred image: a photo blurred by
# 2-8% of the digit's height is 0.4-1.6 px once the digit is fitted into MNIST's 20x20 box.
BLUR_SIGMAS = (0.5, 0.8, 1.1, 1.4)
BLUR_RADIUS = 3  # kernel half-width: over 2 sigma of the largest blur
# Gamma on the 0-1 ink ramp: < 1 fattens the anti-aliased edges (soft pencil, blur after
# the preprocessor's normalisation), > 1 sharpens them (thin pen, high-contrast print).
GAMMA_RANGE = (0.6, 1.7)
# Elastic distortion (Simard et al. 2003 for MNIST): a random displacement drawn on a coarse
# grid of control points and smoothly (bicubic) interpolated to every pixel; its standard
# deviation in pixels at 28x28. Mild, so a 4 stays a 4: Simard's alpha 34 / sigma 4 gives
# displacements of about this size. (Keras's RandomElasticTransform was measured to wreck
# a fifth of the images when fed from tf.data, as train does: 81% accuracy for a 99% model.)
ELASTIC_GRID, ELASTIC_PIXELS = 4, 1.0
# Low-resolution scans: the 28x28 frame area-averaged to one of these sides and enlarged
# again, so MNIST's 20 px digit box lands on a 7-10 px grid. The scans go down to an
# 8 px grid; a digit that small after binarising and counting 4x4 blocks (UCI optdigits' 8x8
# cells, or MNIST tune-split digits counted that way) was read with 95-97% accuracy and left 6-20%
# unanswered by the model trained without this (benchmarks/README.md, "Handwriting from other
# writers").
LOW_RESOLUTION_SIDES = (10, 11, 12, 14)
# Blocky enlargements are smoothed by this sigma (px at 28x28), as the preprocessor's own
# smoothing and its Lanczos fit into 20x20 soften a scan's square cells.
BLOCK_SOFTENING_SIGMA = 0.8
# The preprocessor's ink ramp, its own constants: full ink at a percentile of the pixels above
# a fraction of the peak (its mask), rising from a floor at a fraction of that.
RAMP_PERCENTILE = preprocess._INK_PERCENTILE / 100
RAMP_MASK_FRACTION = preprocess._MASK_MIN_PEAK_FRACTION
RAMP_FLOOR_FRACTION = preprocess._RAMP_FLOOR_FRACTION
PERSPECTIVE_SCALE = 0.15  # corners moved up to 15% of the side: a phone held off square
FILL = {"fill_value": 0.0}  # MNIST's background is 0


def _peak_to_one(images):
    """Each image divided by its brightest pixel, as the preprocessor normalises pictures."""
    peak = ops.max(images, axis=(1, 2, 3), keepdims=True)
    return images / ops.maximum(peak, 1e-6)


def _gaussian(images, sigma: float):
    """Separable Gaussian blur of channels_last (N, H, W, 1) images, zero outside."""
    offsets = np.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=np.float32)
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    weights /= weights.sum()
    rows = ops.conv(images, weights.reshape(-1, 1, 1, 1), padding="same")
    return ops.conv(rows, weights.reshape(1, -1, 1, 1), padding="same")


def _ink_ramp(images):
    """The preprocessor's ramp per image (see RAMP_*): a soft, enlarged scan's strokes come
    out of preprocessing saturated, wider than the grey blur the enlargement leaves."""
    images = _peak_to_one(images)
    pixels = images.shape[1] * images.shape[2]
    flat = ops.reshape(images, (-1, pixels))
    masked = ops.sum(ops.cast(flat > RAMP_MASK_FRACTION, "int32"), axis=1)
    rank = pixels - ops.cast(
        ops.round((1 - RAMP_PERCENTILE) * ops.cast(masked, "float32")), "int32"
    )
    top = ops.take_along_axis(ops.sort(flat, axis=1), ops.clip(rank, 0, pixels - 1)[:, None], 1)
    top = ops.reshape(top, (-1, 1, 1, 1))
    floor = RAMP_FLOOR_FRACTION * top
    return ops.clip((images - floor) / ops.maximum(top - floor, 1e-6), 0.0, 1.0)


class StrokeWidth(layers.Layer):
    """Per image, at random: grey dilation with a 3x3 window (one pixel each side at 28x28: a
    marker against a fine pen), a half-strength erosion (thinner, without breaking MNIST's
    2-3 px strokes), or nothing."""

    def __init__(self, probability: float, seed: int, data_format: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.probability = probability
        self.data_format = data_format
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        pool = {"pool_size": 3, "strides": 1, "padding": "same", "data_format": self.data_format}
        thicker = ops.max_pool(images, **pool)
        thinner = 0.5 * (images - ops.max_pool(-images, **pool))
        batch = ops.shape(images)[0]
        draw = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        share = self.probability / 2
        return ops.where(draw < share, thicker, ops.where(draw < 2 * share, thinner, images))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, seed=0, data_format=self.data_format)
        return config


class Blur(layers.Layer):
    """Per image, with `probability`: a Gaussian blur with a sigma drawn from `sigmas`, then
    the brightest pixel back to 1 (the preprocessor normalises every picture that way)."""

    def __init__(self, probability: float, sigmas: tuple[float, ...], seed: int, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.sigmas = tuple(sigmas)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        batch = ops.shape(images)[0]
        draw = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        share = self.probability / len(self.sigmas)
        result = images
        for index, sigma in enumerate(self.sigmas):
            chosen = (draw >= index * share) & (draw < (index + 1) * share)
            result = ops.where(chosen, _gaussian(images, sigma), result)
        return _peak_to_one(result)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, sigmas=self.sigmas, seed=0)
        return config


class LowResolution(layers.Layer):
    """Per image, with `probability`: a scan on a coarse grid. The frame is area-averaged to a
    side drawn from `sides`, enlarged again smoothly (bilinear) or blockily (nearest, then
    softened), and given the preprocessor's ink ramp. channels_last (N, 28, 28, 1)."""

    def __init__(self, probability: float, sides: tuple[int, ...], seed: int, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.sides = tuple(sides)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        frame = (images.shape[1], images.shape[2])
        batch = ops.shape(images)[0]
        draw = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        blocky = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < 0.5
        share = self.probability / len(self.sides)
        enlarged = images
        for index, side in enumerate(self.sides):
            small = ops.image.resize(images, (side, side), interpolation="area")
            smooth = ops.image.resize(small, frame, interpolation="bilinear")
            block = ops.image.resize(small, frame, interpolation="nearest")
            chosen = (draw >= index * share) & (draw < (index + 1) * share)
            enlarged = ops.where(chosen, ops.where(blocky, block, smooth), enlarged)
        softened = ops.where(blocky, _gaussian(enlarged, BLOCK_SOFTENING_SIGMA), enlarged)
        return ops.where(draw < self.probability, _ink_ramp(softened), images)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, sides=self.sides, seed=0)
        return config


class InkGamma(layers.Layer):
    """Per image, with `probability`: ink ** gamma, gamma log-uniform in `gamma_range`, then
    the brightest pixel back to 1 (what the preprocessor's normalisation does)."""

    def __init__(self, probability: float, gamma_range: tuple[float, float], seed: int, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.gamma_range = tuple(gamma_range)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        batch = ops.shape(images)[0]
        low, high = ops.log(self.gamma_range[0]), ops.log(self.gamma_range[1])
        log_gamma = keras.random.uniform(
            (batch, 1, 1, 1), minval=low, maxval=high, seed=self.seed_generator
        )
        apply = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        gamma = ops.where(apply < self.probability, ops.exp(log_gamma), 1.0)
        images = ops.clip(images, 0.0, 1.0)
        return _peak_to_one(ops.power(images + 1e-6, gamma))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, gamma_range=self.gamma_range, seed=0)
        return config


class Elastic(layers.Layer):
    """Per image, with `probability`: a smooth random displacement field (see ELASTIC_*),
    resampled bilinearly, zero outside the frame."""

    def __init__(self, probability: float, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.probability = probability
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        batch = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]
        field = keras.random.normal(
            (batch, ELASTIC_GRID, ELASTIC_GRID, 2), stddev=ELASTIC_PIXELS, seed=self.seed_generator
        )
        field = ops.image.resize(field, (height, width), interpolation="bicubic")
        apply = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        field = ops.where(apply < self.probability, field, 0.0)
        rows = ops.cast(ops.arange(height), "float32")[None, :, None] + field[..., 0]
        columns = ops.cast(ops.arange(width), "float32")[None, None, :] + field[..., 1]
        return _bilinear(images[..., 0], rows, columns)[..., None]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(probability=self.probability, seed=0)
        return config


def _bilinear(images, rows, columns):
    """images (N, H, W) sampled at fractional (rows, columns), each (N, H, W); 0 outside.
    (ops.image.map_coordinates cannot take the unknown batch size of a training graph.)"""
    batch = ops.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    flat = ops.reshape(images, (-1,))
    offset = (ops.arange(batch) * height * width)[:, None, None]
    top, left = ops.floor(rows), ops.floor(columns)
    result = ops.zeros_like(rows)
    for row, row_weight in ((top, 1 - (rows - top)), (top + 1, rows - top)):
        for column, column_weight in ((left, 1 - (columns - left)), (left + 1, columns - left)):
            inside = (row >= 0) & (row <= height - 1) & (column >= 0) & (column <= width - 1)
            row_index = ops.cast(ops.clip(row, 0, height - 1), "int32")
            column_index = ops.cast(ops.clip(column, 0, width - 1), "int32")
            values = ops.take(flat, offset + row_index * width + column_index)
            result = result + ops.where(inside, values * row_weight * column_weight, 0.0)
    return result


def augmenter(config: TrainConfig) -> keras.Sequential:
    """The augmentation `config` asks for, in capture order: the pen (stroke width), the
    lens (blur), the sensor (gamma), then the geometry (elastic, perspective, rotation, zoom,
    shift). Black (0) fills the edges."""
    fill = {"fill_mode": "constant", "data_format": config.data_format, **FILL}
    seed = config.seed
    steps: list[keras.Layer] = []
    if config.capture:
        data_format = config.data_format
        steps.append(StrokeWidth(CAPTURE_PROBABILITY, seed + 3, data_format, name="stroke"))
        if config.low_resolution > 0:
            steps.append(
                LowResolution(config.low_resolution, LOW_RESOLUTION_SIDES, seed + 8, name="grid")
            )
        steps.append(Blur(CAPTURE_PROBABILITY, BLUR_SIGMAS, seed + 4, name="blur"))
        steps.append(InkGamma(CAPTURE_PROBABILITY, GAMMA_RANGE, seed + 5, name="gamma"))
        steps.append(Elastic(CAPTURE_PROBABILITY, seed + 6, name="elastic"))
        steps.append(
            layers.RandomPerspective(
                factor=CAPTURE_PROBABILITY,
                scale=PERSPECTIVE_SCALE,
                data_format=data_format,
                seed=seed + 7,
                **FILL,
            )
        )
    if config.rotation_degrees > 0:
        factor = config.rotation_degrees / 360  # Keras takes a fraction of a full turn
        steps.append(layers.RandomRotation(factor, seed=seed, **fill))
    if config.zoom > 0:
        steps.append(layers.RandomZoom(config.zoom, seed=seed + 1, **fill))
    if config.shift > 0:
        steps.append(layers.RandomTranslation(config.shift, config.shift, seed=seed + 2, **fill))
    return keras.Sequential(steps, name="augment")
