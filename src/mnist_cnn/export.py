"""Export a trained run to ONNX and run it with ONNX Runtime, checked against Keras.

`export_onnx(run_dir)` writes `model.onnx` beside `model.keras`; `Predictor` (predict.py) uses
`onnx_bytes` + `onnx_session` to run the same model in memory, the fastest fp32 path measured
on CPU (benchmarks/inference.py). The conversion is Keras's own exporter (`model.export(...,
format="onnx")`, tf2onnx underneath). onnxruntime, tf2onnx and onnx are dependencies, imported
only when used; without them Predictor falls back to TensorFlow's compiled call.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError, files
from mnist_cnn.data import PACKAGED_DIR, load_split, to_model_input

ONNX_FILE = "model.onnx"
INPUT_NAME = "image"
# Largest |ONNX Runtime - Keras| allowed on any probability: fp32 reorderings differ by ~1e-7.
TOLERANCE = 1e-5
CHECK_IMAGES = 1000  # test images compared after an export
PROBE_IMAGES = 100  # test images compared when Predictor loads a run (load time matters)
BACKENDS = ("auto", "onnxruntime", "tensorflow")

Call = Callable[[np.ndarray], np.ndarray]  # model input (N, ...) float32 -> (N, 10) float32
logger = logging.getLogger(__name__)


class ExportError(MnistCnnError):
    """The model cannot be exported, or the export does not reproduce Keras's probabilities."""


def onnx_available() -> bool:
    """Whether onnxruntime, tf2onnx and onnx are installed."""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tf2onnx", "onnx")
    )


def _require_onnx() -> None:
    if not onnx_available():
        raise ExportError(
            "ONNX export needs onnxruntime, tf2onnx and onnx: pip install onnxruntime tf2onnx onnx"
        )


def onnx_bytes(model: Any) -> bytes:
    """Serialise a Keras model to ONNX (batch axis left free; input named `image`)."""
    _require_onnx()
    import keras

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


def onnx_session(model: bytes | str | Path, threads: int | None = None) -> Any:
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
    source = model if isinstance(model, bytes) else str(model)
    try:
        return onnxruntime.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportError(f"ONNX Runtime cannot load the model ({reason[:200]})") from None


def session_call(session: Any) -> Call:
    """`images (N, ...) float32 -> probabilities (N, 10) float32` through an ONNX session."""
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name

    def call(images: np.ndarray) -> np.ndarray:
        return session.run([output_name], {input_name: images})[0]

    return call


def check_images(data_format: str, count: int = CHECK_IMAGES) -> np.ndarray:
    """The first `count` packaged MNIST test images as model input (float32, channel axis)."""
    test = load_split(PACKAGED_DIR, "test", verify=False)
    return to_model_input(test.images[:count], data_format)


def keras_call(model: Any, data_format: str) -> Call:
    """Keras's own probabilities: the reference every faster path must reproduce.

    TensorFlow's CPU kernels run convolutions channels_last only; a channels_first model runs
    on CPU only when XLA compiles it, so that layout's reference is the XLA-compiled call.
    """
    from mnist_cnn import runtime

    if data_format == "channels_first":
        return runtime.compiled_call(model, jit_compile=True)
    return lambda images: np.asarray(model(images, training=False))


def max_difference(reference: Call, call: Call, images: np.ndarray) -> float:
    """Largest |call(images) - reference(images)| over all probabilities."""
    expected = reference(images)
    found = call(images)
    if found.shape != expected.shape:
        raise ExportError(f"ONNX output shape {found.shape} differs from Keras's {expected.shape}")
    return float(np.max(np.abs(found.astype(np.float64) - expected)))


def verify(reference: Call, call: Call, images: np.ndarray, tolerance: float = TOLERANCE) -> float:
    """Raise ExportError unless `call` matches `reference` to `tolerance`; return the difference."""
    difference = max_difference(reference, call, images)
    if not difference <= tolerance:  # also catches NaN
        raise ExportError(
            f"ONNX Runtime's probabilities differ from Keras's by {difference:.3g} on "
            f"{len(images)} test images (allowed {tolerance:g})"
        )
    return difference


def export_onnx(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Export a run's model to ONNX (default `run_dir/model.onnx`), verified, written atomically.

    The export is checked before it is written: ONNX Runtime must reproduce Keras's
    probabilities on the first 1,000 MNIST test images to 1e-5.
    """
    from mnist_cnn.predict import load_run

    _require_onnx()
    run = load_run(run_dir)
    target = Path(output) if output is not None else run.path / ONNX_FILE
    if target.is_dir():
        raise ExportError(f"{target}: is a directory (expected a file path for the ONNX model)")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent}: no such directory")
    data = onnx_bytes(run.model)
    call = session_call(onnx_session(data))
    reference = keras_call(run.model, run.config.data_format)
    try:
        verify(reference, call, check_images(run.config.data_format))
    except ExportError as error:
        raise ExportError(f"{error}; {target} not written") from None
    files.write_bytes(target, data)
    return target


def _onnx_call(run: Any) -> Call:
    """ONNX Runtime on `run_dir/model.onnx` if newer than `model.keras`, else converted in memory.

    Either must match Keras on the probe images; a stale or foreign `model.onnx` that does not
    is ignored and the model converted afresh.
    """
    from mnist_cnn.predict import MODEL_FILE

    probe = check_images(run.config.data_format, PROBE_IMAGES)
    reference = keras_call(run.model, run.config.data_format)
    saved = run.path / ONNX_FILE
    if saved.is_file() and saved.stat().st_mtime >= (run.path / MODEL_FILE).stat().st_mtime:
        try:
            call = session_call(onnx_session(saved))
            verify(reference, call, probe)
            return call
        except ExportError as error:
            logger.warning("%s: ignored (%s); converting model.keras instead", saved, error)
    call = session_call(onnx_session(onnx_bytes(run.model)))
    verify(reference, call, probe)
    return call


def fastest_call(run: Any, backend: str = "auto") -> tuple[str, Call]:
    """(backend name, call) for a loaded run: the fastest path that reproduces Keras.

    ONNX Runtime measured fastest on CPU at every batch size (benchmarks/README.md); "auto"
    falls back to TensorFlow's compiled call when onnxruntime/tf2onnx/onnx are missing or the
    export fails its check. "onnxruntime" raises instead of falling back.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend != "tensorflow":
        if backend == "onnxruntime":
            _require_onnx()
            return "onnxruntime", _onnx_call(run)
        if onnx_available():
            try:
                return "onnxruntime", _onnx_call(run)
            except (ExportError, ImportError) as error:  # ImportError: a broken install
                logger.warning("%s; using TensorFlow's compiled call instead", error)
    from mnist_cnn import runtime

    # channels_first convolutions run on TensorFlow's CPU only under XLA (see keras_call)
    jit_compile = run.config.data_format == "channels_first"
    return "tensorflow", runtime.compiled_call(run.model, jit_compile=jit_compile)
