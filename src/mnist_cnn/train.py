"""train(config, output_dir) -> TrainResult: fit the tutorial network and save the run atomically.

The run directory's files are run.py's (`model.keras`, `model.onnx` checked against Keras,
`config.json`, `metrics.json`, `history.csv`, and `batches.csv` every `log_every` batches, so
that even a single epoch draws a training curve).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_cnn import MnistCnnError, runtime
from mnist_cnn.augment import augmenter
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import Dataset, load_mnist, one_hot, to_model_input
from mnist_cnn.evaluate import evaluate_model
from mnist_cnn.export import ExportError, onnx_model
from mnist_cnn.model import build_model
from mnist_cnn.run import run_document, save_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    metrics: dict[str, Any]
    model: keras.Model
    calibration: dict[str, Any] | None = None  # fit_confidence's records, when images held out


class BatchLogger(keras.callbacks.Callback):
    """Records the running loss and accuracy every `every` batches (Keras logs per epoch).

    With steps_per_execution > 1 Keras calls back once per group of batches, so a row is
    written at the first call at or past each multiple of `every`.
    """

    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.rows: list[dict[str, float]] = []
        self.epoch = 0
        self.steps_before_epoch = 0
        self.steps_done = 0
        self.next_log = every

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.steps_before_epoch = self.steps_done

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps_done = self.steps_before_epoch + batch + 1
        if logs and self.steps_done >= self.next_log:
            self.rows.append(
                {
                    "step": self.steps_done,
                    "epoch": self.epoch + 1,
                    "loss": float(logs["loss"]),
                    "accuracy": float(logs["accuracy"]),
                }
            )
            self.next_log = (self.steps_done // self.every + 1) * self.every


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


def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise MnistCnnError(f"{output_dir}: exists and is not a directory")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise MnistCnnError(
            f"{output_dir}: directory is not empty (pass --overwrite to replace its run)"
        )


def learning_rate(
    config: TrainConfig, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    if config.schedule == "constant":
        return config.learning_rate
    warmup_steps = int(config.warmup_fraction * total_steps)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup_steps else config.learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        warmup_target=config.learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def compile_model(model: keras.Model, config: TrainConfig, total_steps: int) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate(config, total_steps)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
        # XLA: TensorFlow's Eigen CPU kernels cannot train channels_first convolutions
        # ("Conv2DCustomBackpropInputOp only supports NHWC"); XLA's can, for either layout.
        # With fast_kernels, channels_last runs without XLA: oneDNN's kernels measured
        # 1.3-1.6x faster than XLA (benchmarks/README.md).
        jit_compile=not config.fast_kernels or config.data_format == "channels_first",
    )


def _epoch_rows(history: keras.callbacks.History) -> list[dict[str, Any]]:
    keys = list(history.history)
    return [
        {"epoch": epoch + 1, **{key: float(history.history[key][epoch]) for key in keys}}
        for epoch in range(len(history.epoch))
    ]


def train(
    config: TrainConfig,
    output_dir: str | Path,
    *,
    overwrite: bool = False,
    dataset: Dataset | None = None,
    verbose: str | int = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Train `config` on MNIST, evaluate on the 10,000 test images, save the run to `output_dir`.

    Data and the output directory are checked before anything is written. Extra `callbacks`
    run after the built-in ones (the benchmarks use this to probe accuracy during training).
    """
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite)
    if config.data_dir is not None:  # the run is read from elsewhere later: no relative paths
        config = config.replace(data_dir=str(Path(config.data_dir).resolve()))
    if dataset is None:
        dataset = load_mnist(config.data_dir)
    runtime.configure(config.seed)

    train_images, train_labels = held_out_split(dataset, config)[0]
    if config.limit is not None:
        train_images, train_labels = train_images[: config.limit], train_labels[: config.limit]
    x_train = to_model_input(train_images, config.data_format)
    y_train = one_hot(train_labels)

    model = build_model(config.data_format)
    steps_per_epoch = math.ceil(len(x_train) / config.batch_size)
    # Augmentation wraps the model for training only: the saved model is the plain network.
    trained = keras.Sequential([augmenter(config), model]) if config.augments else model
    compile_model(trained, config, steps_per_epoch * config.epochs)
    batch_logger = BatchLogger(config.log_every)
    callbacks = [batch_logger, keras.callbacks.TerminateOnNaN(), *(callbacks or [])]

    if config.fast_kernels:
        if os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "1":
            warnings.warn(
                "fast_kernels: TF_ENABLE_ONEDNN_OPTS is not 1 in this process, so unless this "
                "CPU has AVX-512 VNNI/BF16 or AMX, TensorFlow trains on its slower kernels (call "
                "mnist_cnn.enable_onednn() before TensorFlow loads)",
                stacklevel=2,
            )
        batches = runtime.training_batches(x_train, y_train, config.batch_size, config.seed)
        data = {"x": batches, "shuffle": False}  # training_batches shuffles every epoch
    else:  # the tutorial's own way: NumPy arrays, Keras shuffles
        data = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}

    started = time.perf_counter()
    history = trained.fit(**data, epochs=config.epochs, callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - started
    if trained.stop_training or not np.isfinite(history.history["loss"][-1]):
        raise MnistCnnError("training diverged (loss became NaN); try a lower --learning-rate")

    started = time.perf_counter()
    evaluation = evaluate_model(model, dataset.test, config.data_format)
    evaluate_seconds = time.perf_counter() - started

    metrics = {
        "test_loss": evaluation["test_loss"],
        "test_accuracy": evaluation["test_accuracy"],
        "train_seconds": train_seconds,
        "evaluate_seconds": evaluate_seconds,
        "train_images": len(train_images),
        "validation_images": config.validation_images,
        "images_per_second": len(train_images) * config.epochs / train_seconds,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "per_class_accuracy": evaluation["per_class_accuracy"],
        "confusion_matrix": evaluation["confusion_matrix"],
    }
    try:
        onnx_data, onnx_record = onnx_model(model, config.data_format)
    except ExportError as error:  # the Keras model is still good: save the run without it
        logger.warning("%s; the run is saved without model.onnx (predict uses Keras)", error)
        onnx_data, onnx_record = None, None
    document = run_document(
        config,
        versions=runtime.library_versions(),
        data_source=dataset.source,
        data_sha256=dataset.sha256,
        onnx_record=onnx_record,
        dataset=dataset.identity,
    )
    save_run(
        output_dir,
        save_model=model.save,
        onnx_model=onnx_data,
        document=document,
        metrics=metrics,
        history_rows=_epoch_rows(history),
        batch_rows=batch_logger.rows,
    )
    calibration = None
    if config.validation_images and onnx_data is not None:
        from mnist_cnn.fit_confidence import calibrate_run

        calibration = calibrate_run(output_dir)
    return TrainResult(output_dir=output_dir, metrics=metrics, model=model, calibration=calibration)
