"""ONNX Runtime, the default inference backend: a CPU session with the settings measured
fastest here, and calls that run it (probabilities, or probabilities and logits at once).
inference.py chooses the backend for a run and checks the model file first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError
from mnist_cnn.data import NUM_CLASSES
from mnist_cnn.run import ModelLoadError

Call = Callable[[np.ndarray], np.ndarray]  # model input (N, ...) float32 -> (N, 10) float32
LogitsCall = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # -> (probabilities, logits)


class BackendError(MnistCnnError):
    """A backend cannot run the model, or does not reproduce Keras's probabilities."""


def onnx_session(model: bytes | str, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with the settings measured fastest here.

    One intra-op thread per available CPU, all graph optimisations (fuses Conv+ReLU,
    MatMul+Add), sequential execution (the graph is a chain: nothing to run in parallel).
    """
    import onnxruntime

    from mnist_cnn.runtime import cpu_count

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or cpu_count()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # Idle worker threads otherwise spin on a core for ~50 ms after each call, which starves
    # the HTTP server on 2 cores (measured: 288 -> 430 req/s at concurrency 16 without it).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BackendError(f"ONNX Runtime cannot load the model ({reason[:200]})") from None


def session_call(session: Any) -> Call:
    """`images (N, ...) float32 -> probabilities (N, 10) float32` through an ONNX session."""
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def call(images: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: images})[0]

    return call


def session_logits_call(session: Any) -> LogitsCall:
    """`images -> (probabilities (N, 10), logits (N, 10))` in one ONNX call."""
    input_name = session.get_inputs()[0].name
    names = [output.name for output in session.get_outputs()[:2]]

    def call(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return tuple(session.run(names, {input_name: images}))

    return call


def logits_output(label: str, outputs: list) -> bool:
    """True when the ONNX model's second output is (N, 10) logits."""
    if len(outputs) == 1:
        return False
    shape = outputs[1].shape
    if len(outputs) != 2 or len(shape) != 2 or shape[1] != NUM_CLASSES:
        raise ModelLoadError(
            f"{label}: expected outputs (probabilities) or (probabilities, logits (N, 10)), "
            f"found {len(outputs)} outputs"
        )
    return True
