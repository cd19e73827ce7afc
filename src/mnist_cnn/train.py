"""train(config, output_dir) -> TrainResult: fit the tutorial network and save the run atomically.

The run directory's files are run.py's (`model.keras`, `model.onnx` checked against Keras,
`config.json`, `metrics.json`, `history.csv`, and `batches.csv` every `log_every` batches, so
that even a single epoch draws a training curve).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_cnn import MnistCnnError, runtime
from mnist_cnn.augment import augmenter
from mnist_cnn.checkpoint import Checkpointer, restore_training, start_or_resume
from mnist_cnn.config import TrainConfig, bf16_by_default
from mnist_cnn.data import Dataset
from mnist_cnn.dense_gradient import FastGradientDense
from mnist_cnn.distributed import build_before_fit, join_cluster
from mnist_cnn.evaluate import evaluate_model
from mnist_cnn.export import onnx_model_or_none
from mnist_cnn.fit_epochs import fit_epochs, steps_per_epoch
from mnist_cnn.fused_adam import FusedAdam
from mnist_cnn.image_folder import training_data
from mnist_cnn.inference import load_keras_model
from mnist_cnn.model import build_model, plain_copy
from mnist_cnn.progress import BatchLogger, progress_callbacks
from mnist_cnn.run import checkpoint_dir, read_run, read_started_run, run_document, save_run
from mnist_cnn.training_set import training_set

logger = logging.getLogger(__name__)
MIXED_BF16 = "mixed_bfloat16"  # Keras's policy: bfloat16 compute, float32 variables
# Why a multi-worker run cannot be channels_first: TensorFlow's CPU kernels train those
# convolutions only under XLA, and XLA cannot compile the workers' collectives on CPU.
CHANNELS_FIRST_WHY = (
    "TensorFlow's CPU kernels train channels_first convolutions only under XLA, and XLA cannot "
    "compile collectives on CPU"
)


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path | None  # None on workers other than 0
    metrics: dict[str, Any]
    model: keras.Model
    calibration: dict[str, Any] | None = None  # fit_confidence's records, when images held out
    worker: int = 0  # index in a multi-worker cluster: only worker 0 saves a run


def check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise MnistCnnError(f"{output_dir}: exists and is not a directory")
    for parent in output_dir.absolute().parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise MnistCnnError(f"{output_dir}: {parent} is not a directory")
            break
    checkpoint = checkpoint_dir(output_dir)
    if checkpoint.exists() and not checkpoint.is_dir():
        raise MnistCnnError(f"{checkpoint}: exists and is not a directory (move it away)")
    if checkpoint_dir(output_dir).is_dir() and not overwrite:
        raise MnistCnnError(
            f"{output_dir}: holds an interrupted run: finish it with 'mnist-cnn train --resume "
            f"{output_dir}', or pass --overwrite to start again"
        )
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


def compile_model(
    model: keras.Model, config: TrainConfig, total_steps: int, *, distributed: bool = False
) -> None:
    optimizer = FusedAdam if config.fused_adam else keras.optimizers.Adam
    model.compile(
        optimizer=optimizer(learning_rate=learning_rate(config, total_steps)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
        steps_per_execution=config.steps_per_execution,
        # XLA: TensorFlow's Eigen CPU kernels cannot train channels_first convolutions
        # ("Conv2DCustomBackpropInputOp only supports NHWC"); XLA's can, for either layout.
        # With fast_kernels, channels_last runs without XLA: oneDNN's kernels measured
        # 1.3-1.6x faster than XLA (benchmarks/README.md).
        # Multi-worker: never, XLA cannot compile collectives on CPU (distributed.py).
        jit_compile=not distributed
        and (not config.fast_kernels or config.data_format == "channels_first"),
    )


def _absolute_paths(config: TrainConfig) -> TrainConfig:
    """The run is read from elsewhere later: no relative paths in its config."""
    changes = {
        name: str(Path(value).resolve())
        for name in ("data_dir", "images_dir", "init_from")
        if (value := getattr(config, name)) is not None
    }
    return config.replace(**changes)


def initial_weights(config: TrainConfig) -> list[np.ndarray]:
    """The weights of the run `config.init_from`, which must have the same layout."""
    source = read_run(config.init_from)
    if source.config.data_format != config.data_format:
        raise MnistCnnError(
            f"--init-from {config.init_from}: its model is {source.config.data_format}, this "
            f"run {config.data_format}; pass --data-format {source.config.data_format}"
        )
    return load_keras_model(source).get_weights()


def train(
    config: TrainConfig,
    output_dir: str | Path,
    *,
    overwrite: bool = False,
    dataset: Dataset | None = None,
    verbose: str | int = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train `config` on MNIST, evaluate on the 10,000 test images, save the run to `output_dir`.

    Data and the output directory are checked before anything is written. Extra `callbacks`
    run after the built-in ones (the benchmarks use this to probe accuracy during training).
    `verbose`: see progress.progress_callbacks. `resume=True` continues the unfinished run in
    `output_dir` from its newest checkpoint (use resume_run, which reads its config).
    """
    output_dir = Path(output_dir)
    config = _absolute_paths(config)
    runtime.configure(config.seed)  # before TensorFlow starts (joining a cluster starts it)
    cluster = join_cluster()
    if cluster is not None and resume:
        raise MnistCnnError("--resume of a multi-worker run is not supported; resume it alone")
    if cluster is not None and config.data_format != "channels_last":
        raise MnistCnnError(f"multi-worker training needs channels_last ({CHANNELS_FIRST_WHY})")
    if cluster is not None:  # Keras's multi-batch loop fails under the strategy ("You must
        config = config.replace(steps_per_execution=1)  # feed a value for placeholder tensor")
    if cluster is not None and config.bf16:
        raise MnistCnnError("multi-worker training runs float32: drop --bf16")
    if config.bf16 is None:  # resolved once and recorded: a resumed run keeps the arithmetic
        native = runtime.cpu_has_bf16()
        config = config.replace(bf16=bf16_by_default(config, cluster is not None, resume, native))
    if cluster is not None and not cluster.chief:  # trains its share; worker 0 writes the run
        output_dir = Path(tempfile.mkdtemp(prefix=f"mnist-cnn-worker-{cluster.index}-"))
    if not resume:
        check_output_dir(output_dir, overwrite)
    if dataset is None:
        dataset = training_data(config)
    described = {
        "versions": runtime.library_versions(),
        "data_source": dataset.source,
        "data_sha256": dataset.sha256,
        "dataset": dataset.identity,
    }
    started = run_document(config, **described, onnx_record=None)
    # Checked before start_or_resume writes anything: a bad --init-from or a split that
    # leaves no training images must not leave a started run behind.
    training = training_set(dataset, config)
    # (A resumed run starts from its checkpoint: its --init-from source may be gone by then.)
    start_weights = initial_weights(config) if config.init_from and not resume else None
    state, resumed = start_or_resume(output_dir, started, resume)

    x_train, y_train = training.inputs, training.targets
    steps = steps_per_epoch(config, len(x_train))
    with cluster.strategy.scope() if cluster else contextlib.nullcontext():
        dense_layer = FastGradientDense if config.fast_dense_gradient else keras.layers.Dense
        model = build_model(config.data_format, MIXED_BF16 if config.bf16 else None, dense_layer)
        if config.init_from is not None and state is None:  # a resume without checkpoint
            model.set_weights(start_weights or initial_weights(config))
        # Augmentation wraps the model for training only: the saved model is the plain network.
        trained = keras.Sequential([augmenter(config), model]) if config.augments else model
        compile_model(trained, config, steps * config.epochs, distributed=cluster is not None)
    if cluster is not None:
        first = slice(0, config.batch_size)
        build_before_fit(trained, cluster.strategy, (x_train[first], y_train[first]))
    if state is not None:
        first = slice(0, config.batch_size)
        restore_training(trained, state, x_train[first], y_train[first])
    batch_logger = BatchLogger(config.log_every, state.batch_rows if state else None)
    checkpointer = Checkpointer(
        output_dir, config.checkpoint_every, steps, batch_logger.rows, resumed=state
    )
    callbacks = [
        batch_logger,
        keras.callbacks.TerminateOnNaN(),
        *progress_callbacks(verbose, config.epochs, steps),
        *(callbacks or []),
        checkpointer,  # last: an epoch's checkpoint holds what the others logged of it
    ]

    if config.fast_kernels and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "1":
        warnings.warn(
            "fast_kernels: TF_ENABLE_ONEDNN_OPTS is not 1 in this process, so unless this "
            "CPU has AVX-512 VNNI/BF16 or AMX, TensorFlow trains on its slower kernels (call "
            "mnist_cnn.enable_onednn() before TensorFlow loads)",
            stacklevel=2,
        )
    fit_epochs(
        trained,
        x_train,
        y_train,
        config,
        start_epoch=state.epoch if state else 0,
        start_step=state.step if state else 0,
        callbacks=callbacks,
        distributed=cluster is not None,
    )
    train_seconds = checkpointer.train_seconds()
    if (  # a model any Keras loads
        cluster is not None or config.bf16 or config.fused_adam or config.fast_dense_gradient
    ):
        model = plain_copy(model, config.data_format)
    if cluster is not None and not cluster.chief:
        shutil.rmtree(output_dir, ignore_errors=True)
        cluster.barrier()
        return TrainResult(output_dir=None, metrics={}, model=model, worker=cluster.index)

    started = time.perf_counter()
    evaluation = evaluate_model(model, dataset.test, config.data_format)
    evaluate_seconds = time.perf_counter() - started

    metrics = {
        "test_loss": evaluation["test_loss"],
        "test_accuracy": evaluation["test_accuracy"],
        "train_seconds": train_seconds,
        "evaluate_seconds": evaluate_seconds,
        "train_images": training.digit_images,
        "outlier_images": training.outlier_images,
        "validation_images": config.validation_images,
        "images_per_second": len(x_train) * config.epochs / train_seconds,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "per_class_accuracy": evaluation["per_class_accuracy"],
        "confusion_matrix": evaluation["confusion_matrix"],
    }
    onnx_data, onnx_record = onnx_model_or_none(model, config.data_format, "the run")
    document = run_document(config, **described, onnx_record=onnx_record, resumed=resumed)
    save_run(
        output_dir,
        save_model=model.save,
        onnx_model=onnx_data,
        document=document,
        metrics=metrics,
        history_rows=checkpointer.history_rows,
        batch_rows=batch_logger.rows,
    )
    calibration = None
    if config.validation_images and onnx_data is not None:
        from mnist_cnn.fit_confidence import calibrate_run

        calibration = calibrate_run(output_dir)
    if cluster is not None:
        cluster.barrier()
    return TrainResult(output_dir=output_dir, metrics=metrics, model=model, calibration=calibration)


def resume_run(
    output_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    verbose: str | int = "auto",
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> TrainResult:
    """Continue the interrupted run in `output_dir` with the config it was started with."""
    config = read_started_run(output_dir)[0]
    return train(
        config, output_dir, dataset=dataset, verbose=verbose, callbacks=callbacks, resume=True
    )
