"""Export a trained model to ONNX, checked against Keras: `export_onnx(run_dir)`, `onnx_model(...)`.

The conversion is Keras's own exporter (`model.export(..., format="onnx")`, tf2onnx underneath).
Every export is checked before it is written: ONNX Runtime must reproduce Keras's probabilities
on the first 1,000 MNIST test images to 1e-5. Which backend runs a run is inference.py's job.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mnist_cnn import MnistCnnError, files
from mnist_cnn.inference import (
    CHECK_IMAGES,
    check_images,
    keras_call,
    load_keras_model,
    model_input_shape,
    verify,
)
from mnist_cnn.onnx_backend import BackendError, onnx_session, session_call
from mnist_cnn.run import ONNX_FILE, read_run, record_onnx

INPUT_NAME = "image"
# The layer whose inputs times weights plus bias are the logits, the model's second ONNX
# output: the energy score of "not a digit" (abstain.py) needs them, the softmax hides them.
LOGITS_LAYER = "probabilities"
logger = logging.getLogger(__name__)


class ExportError(MnistCnnError):
    """The model cannot be exported, or the export does not reproduce Keras's probabilities."""


def with_logits(model: Any) -> Any:
    """The model with two outputs, (probabilities, logits): the last layer's weights applied
    once more without the softmax. For an ensemble (ensemble.py: member models side by side,
    probabilities averaged) the mean of the members' probabilities and of their logits. As it
    is when it has no such layer."""
    import keras

    try:
        last = model.get_layer(LOGITS_LAYER)
    except ValueError:
        members = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(members) < 2 or len(model.outputs) != 1:
            return model
        pairs = [with_logits(member) for member in members]
        if any(len(pair.outputs) != 2 for pair in pairs):
            return model
        inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name)
        outputs = [pair(inputs) for pair in pairs]
        probabilities = keras.layers.Average()([output[0] for output in outputs])
        logits = keras.layers.Average(name="logits")([output[1] for output in outputs])
        return keras.Model(inputs, [probabilities, logits], name=f"{model.name}_logits")
    logits = keras.layers.Dense(last.units, name="logits")
    logits.build(last.input.shape)
    logits.set_weights(last.get_weights())
    outputs = [model.outputs[0], logits(last.input)]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_logits")


def onnx_bytes(model: Any) -> bytes:
    """Serialise a Keras model to ONNX (batch axis left free; input named `image`; outputs
    the probabilities, then the logits)."""
    import keras

    model = with_logits(model)
    shape = (None, *model.input_shape[1:])  # batch axis free
    signature = [keras.InputSpec(shape=shape, dtype="float32", name=INPUT_NAME)]
    with tempfile.TemporaryDirectory(prefix="mnist-cnn-onnx-") as directory:
        path = Path(directory) / ONNX_FILE
        with warnings.catch_warnings():
            # Keras patches tf2onnx for NumPy 2 and NumPy warns about the `np.object` it probes.
            warnings.simplefilter("ignore", FutureWarning)
            try:
                model.export(path, format="onnx", input_signature=signature, verbose=False)
            except Exception as error:  # tf2onnx raises many types for an unsupported graph
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise ExportError(f"cannot convert the model to ONNX ({reason[:200]})") from None
        return path.read_bytes()


def onnx_model(model: Any, data_format: str) -> tuple[bytes, dict[str, Any]]:
    """(ONNX bytes, record for config.json): converted, then checked against Keras.

    The record holds the SHA-256 that predict and serve verify instead of re-running Keras, and
    the largest probability difference found on the check images.
    """
    data = onnx_bytes(model)
    images = check_images(data_format, CHECK_IMAGES)
    try:
        call = session_call(onnx_session(data))
        difference = verify(keras_call(model, data_format), call, images)
    except BackendError as error:
        raise ExportError(str(error)) from None
    record = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "max_difference": difference,
        "check_images": len(images),
        "input_shape": [None, *model_input_shape(data_format)],
    }
    return data, record


def onnx_model_or_none(
    model: Any, data_format: str, saved_as: str
) -> tuple[bytes | None, dict[str, Any] | None]:
    """`onnx_model`, or (None, None) with a warning when the export fails: the Keras model is
    still good, so `saved_as` (e.g. "the run") is saved without model.onnx."""
    try:
        return onnx_model(model, data_format)
    except ExportError as error:
        logger.warning("%s; %s is saved without model.onnx (predict uses Keras)", error, saved_as)
        return None, None


def export_onnx(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Export a run's model to ONNX, verified, written atomically.

    Into the run (the default) it becomes `run_dir/model.onnx` with its record in config.json,
    so that predict and serve load it; `output` writes a copy elsewhere and leaves the run as is.
    """
    run = read_run(run_dir)
    target = Path(output) if output is not None else run.onnx_path
    if target.is_dir():
        raise ExportError(f"{target}: is a directory (expected a file path for the ONNX model)")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent}: no such directory")
    model = load_keras_model(run)
    try:
        data, record = onnx_model(model, run.config.data_format)
    except ExportError as error:
        raise ExportError(f"{error}; {target} not written") from None
    if output is None:
        record_onnx(run, data, record)
    else:
        files.write_bytes(target, data)
    return target
