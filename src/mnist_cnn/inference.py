"""Inference backends: ONNX Runtime (the default), the Keras fallback, and their equivalence check.

`Predictor.from_dir(run_dir)` reads `model.onnx` with ONNX Runtime after checking its SHA-256
against the one train/export recorded in config.json, so predict and serve never import
TensorFlow or Keras. A run without `model.onnx` (made before every run carried one) is loaded
through Keras instead, with a warning naming `mnist-cnn export DIR`, which makes it fast.
ONNX Runtime measured fastest on CPU at every batch size (benchmarks/README.md).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mnist_cnn import calibrate
from mnist_cnn.abstain import Abstention, Answer
from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES, PACKAGED_DIR, load_split, to_model_input
from mnist_cnn.files import sha256_file
from mnist_cnn.onnx_backend import (
    BackendError,
    Call,
    LogitsCall,
    logits_output,
    onnx_session,
    session_call,
    session_logits_call,
)
from mnist_cnn.run import ModelLoadError, Run, read_run

# Largest |ONNX Runtime - Keras| allowed on any probability: fp32 reorderings differ by ~1e-7.
TOLERANCE = 1e-5
CHECK_IMAGES = 1000  # test images compared when a model.onnx is made (train, export)
BACKENDS = ("auto", "onnxruntime", "keras")

logger = logging.getLogger(__name__)


def model_input_shape(data_format: str) -> tuple[int, int, int]:
    """The shape of one image as the network takes it, without the batch axis."""
    if data_format == "channels_first":
        return (1, IMAGE_SIZE, IMAGE_SIZE)
    return (IMAGE_SIZE, IMAGE_SIZE, 1)


def _check_shapes(label: str, input_shape: Any, output_shape: Any, data_format: str) -> None:
    """One-line error unless the model maps (N, *image) to (N, 10); None/str dims are free.
    (A second ONNX output, the logits, is checked by `onnx_backend.logits_output`.)"""

    def fixed(shape: Any) -> tuple:
        return tuple(dim if isinstance(dim, int) else None for dim in shape[1:])

    expected_input = model_input_shape(data_format)
    if len(input_shape) != 4 or fixed(input_shape) != expected_input:
        raise ModelLoadError(
            f"{label}: expected input shape (N, {', '.join(map(str, expected_input))}) for "
            f"{data_format}, found {tuple(input_shape)}"
        )
    if len(output_shape) != 2 or fixed(output_shape) != (NUM_CLASSES,):
        raise ModelLoadError(
            f"{label}: not a digit classifier (expected output shape (N, {NUM_CLASSES}), "
            f"found {tuple(output_shape)})"
        )


def load_keras_model(run: Run) -> Any:
    """`model.keras` of a run (Keras safe mode: no arbitrary code), shapes checked."""
    import keras

    if not run.model_path.is_file():
        raise ModelLoadError(
            f"{run.model_path}: missing (expected the model saved by 'mnist-cnn train')"
        )
    try:
        model = keras.saving.load_model(run.model_path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(f"{run.model_path}: cannot load the model ({reason[:200]})") from None
    data_format = run.config.data_format
    _check_shapes(str(run.model_path), model.input_shape, model.output_shape, data_format)
    return model


def keras_call(model: Any, data_format: str) -> Call:
    """Keras's own probabilities: the reference every faster path must reproduce.

    TensorFlow's CPU kernels run convolutions channels_last only; a channels_first model runs
    on CPU only when XLA compiles it, so that layout's reference is the XLA-compiled call.
    """
    from mnist_cnn import runtime

    if data_format == "channels_first":
        return runtime.compiled_call(model, jit_compile=True)
    return lambda images: np.asarray(model(images, training=False))


def check_images(data_format: str, count: int = CHECK_IMAGES) -> np.ndarray:
    """The first `count` packaged MNIST test images as model input (float32, channel axis)."""
    test = load_split(PACKAGED_DIR, "test", verify=False)
    return to_model_input(test.images[:count], data_format)


def max_difference(reference: Call, call: Call, images: np.ndarray) -> float:
    """Largest |call(images) - reference(images)| over all probabilities."""
    expected = reference(images)
    found = call(images)
    if found.shape != expected.shape:
        raise BackendError(f"ONNX output shape {found.shape} differs from Keras's {expected.shape}")
    return float(np.max(np.abs(found.astype(np.float64) - expected)))


def verify(reference: Call, call: Call, images: np.ndarray, tolerance: float = TOLERANCE) -> float:
    """Raise BackendError unless `call` matches `reference` to `tolerance`; return the gap."""
    difference = max_difference(reference, call, images)
    if not difference <= tolerance:  # also catches NaN
        raise BackendError(
            f"ONNX Runtime's probabilities differ from Keras's by {difference:.3g} on "
            f"{len(images)} test images (allowed {tolerance:g})"
        )
    return difference


def _onnx_session(run: Run, threads: int | None = None) -> Any:
    """ONNX Runtime on the run's `model.onnx`, refused unless its SHA-256 is the recorded one."""
    record = run.onnx_record
    if record is None or not isinstance(record.get("sha256"), str):
        raise ModelLoadError(
            f"{run.onnx_path}: config.json records no SHA-256 for it, so it cannot be trusted "
            f"to be this run's model; re-export it with: mnist-cnn export {run.path}"
        )
    found = sha256_file(run.onnx_path)
    if found != record["sha256"]:
        raise ModelLoadError(
            f"{run.onnx_path}: SHA-256 {found[:12]}... does not match the {record['sha256'][:12]}"
            f"... recorded in config.json (the file was changed or replaced); re-export it "
            f"with: mnist-cnn export {run.path}"
        )
    try:
        session = onnx_session(str(run.onnx_path), threads)
    except BackendError as error:
        raise ModelLoadError(f"{run.onnx_path}: {error}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelLoadError(f"{run.onnx_path}: expected one input, found {len(inputs)}")
    logits_output(str(run.onnx_path), outputs)
    _check_shapes(str(run.onnx_path), inputs[0].shape, outputs[0].shape, run.config.data_format)
    return session


def _keras_fallback(run: Run) -> Call:
    from mnist_cnn import runtime

    model = load_keras_model(run)
    # channels_first convolutions run on TensorFlow's CPU only under XLA (see keras_call)
    return runtime.compiled_call(model, jit_compile=run.config.data_format == "channels_first")


def backend_call(
    run: Run, backend: str = "auto", threads: int | None = None
) -> tuple[str, Call, LogitsCall | None]:
    """(backend, probabilities call, probabilities-and-logits call or None) for a run.

    "auto" uses model.onnx when the run has one, and Keras (with a warning) when it has none;
    a model.onnx that fails its hash check is an error, never silently replaced. Only an ONNX
    model with its logits output (every run since format 3) gives the logits. `threads`: ONNX
    Runtime's intra-op threads (default one per CPU; a server with N workers gives each its
    share)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "keras":
        return "keras", _keras_fallback(run), None
    if run.onnx_path.is_file():
        session = _onnx_session(run, threads)
        with_logits = logits_output(str(run.onnx_path), session.get_outputs())
        logits = session_logits_call(session) if with_logits else None
        return "onnxruntime", session_call(session), logits
    if backend == "onnxruntime":
        raise ModelLoadError(f"{run.onnx_path}: missing; make it with: mnist-cnn export {run.path}")
    if not run.model_path.is_file():
        raise ModelLoadError(
            f"{run.path}: holds neither {run.onnx_path.name} nor {run.model_path.name} "
            "(expected a run made by 'mnist-cnn train')"
        )
    logger.warning(
        "%s: no model.onnx, so the model runs through TensorFlow (seconds to start); "
        "'mnist-cnn export %s' makes it fast",
        run.path,
        run.path,
    )
    return "keras", _keras_fallback(run), None


class Predictor:
    """Class probabilities and answers for MNIST-style images through the run's backend
    (`backend`: "onnxruntime" for any run that carries model.onnx, "keras" for older runs).

    `probabilities` are temperature-scaled when the run is calibrated (`calibrated=False`
    gives the network's own); `answers` adds the run's abstention ("not a digit", "not sure").
    """

    def __init__(self, run: Run, backend: str = "auto", threads: int | None = None) -> None:
        self.run = run
        self.data_format = run.config.data_format
        self.backend, self._call, self._logits_call = backend_call(run, backend, threads)
        self.temperature = float((run.calibration or {}).get("temperature", 1.0))
        self.abstention = Abstention.from_run(run)
        if self.abstention.needs_logits and self._logits_call is None:
            raise ModelLoadError(
                f"{run.path}: its 'not a digit' threshold needs the model's logits output, "
                f"which this model.onnx lacks; re-export it: mnist-cnn export {run.path}"
            )

    @classmethod
    def from_dir(cls, run_dir: Any, backend: str = "auto", threads: int | None = None) -> Predictor:
        return cls(read_run(run_dir), backend, threads)

    def _model_input(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (N, 28, 28), found {images.shape}")
        axis = 1 if self.data_format == "channels_first" else -1
        return np.expand_dims(images, axis)

    def probabilities(self, images: np.ndarray, *, calibrated: bool = True) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1], white digit on black -> float32 (N, 10)."""
        raw = self._call(self._model_input(images))
        if not calibrated or self.temperature == 1.0:
            return raw
        return calibrate.scale(raw, self.temperature).astype(np.float32)

    def outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(uncalibrated probabilities (N, 10), logits (N, 10) or None)."""
        batch = self._model_input(images)
        if self._logits_call is None:
            return self._call(batch), None
        return self._logits_call(batch)

    def answers(self, images: np.ndarray) -> list[Answer]:
        """One Answer per image: the digit, or None and the reason the model abstains."""
        raw, logits = self.outputs(images)
        return self.abstention.answers(calibrate.scale(raw, self.temperature), logits)
