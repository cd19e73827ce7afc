"""Inference backends: model.onnx through ONNX Runtime (hash-checked), Keras for older runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from mnist_cnn.cli import main
from mnist_cnn.evaluate import predict_images
from mnist_cnn.inference import Predictor, load_keras_model
from mnist_cnn.run import ModelLoadError, read_run


def test_a_run_predicts_through_onnx_runtime_as_keras_does(tiny_run, images):
    fast = Predictor.from_dir(tiny_run)
    keras = Predictor.from_dir(tiny_run, backend="keras")
    assert (fast.backend, keras.backend) == ("onnxruntime", "keras")
    expected = np.asarray(load_keras_model(read_run(tiny_run))(images[..., None], training=False))
    for predictor in (fast, keras):
        np.testing.assert_allclose(predictor.probabilities(images), expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            predictor.probabilities(images[0]), expected[:1], rtol=0, atol=1e-5
        )


def test_predict_images_batches_a_test_set_like_one_call(tiny_run, mnist):
    predictor = Predictor.from_dir(tiny_run)
    test = mnist.test.images[:2500]  # three batches of at most 1,000
    expected = predictor.probabilities(test.astype(np.float32) / 255)
    np.testing.assert_allclose(predict_images(predictor, test), expected, rtol=0, atol=1e-6)


def test_predict_never_imports_tensorflow(tiny_run, tmp_path):
    """`mnist-cnn predict` on a run with model.onnx loads neither TensorFlow nor Keras."""
    from PIL import Image

    picture = tmp_path / "seven.png"
    Image.new("L", (56, 56), 255).save(picture)
    code = (
        "import sys\n"
        "from mnist_cnn.cli import main\n"
        f"main(['predict', {str(tiny_run)!r}, {str(picture)!r}, '--json'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', "
        "'matplotlib', 'tf2onnx'})\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_a_tampered_model_onnx_is_refused_in_one_line(run_copy, capsys):
    onnx = run_copy / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF  # one weight byte changed
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match.*mnist-cnn export"):
        Predictor.from_dir(run_copy)
    assert main(["predict", str(onnx), "--run", str(run_copy)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "SHA-256" in error


def test_an_old_run_without_model_onnx_works_through_keras_and_says_how(run_copy, caplog):
    (run_copy / "model.onnx").unlink()
    document = json.loads((run_copy / "config.json").read_text())
    del document["onnx"]
    (run_copy / "config.json").write_text(json.dumps(document))
    with caplog.at_level("WARNING", logger="mnist_cnn"):
        predictor = Predictor.from_dir(run_copy)
    assert predictor.backend == "keras"
    assert f"mnist-cnn export {run_copy}" in caplog.text
    with pytest.raises(ModelLoadError, match="model.onnx: missing"):
        Predictor.from_dir(run_copy, backend="onnxruntime")


def test_a_model_with_the_wrong_input_shape_is_a_one_line_error(tmp_path, capsys):
    """A network for 32x32 pictures saved as a run: refused at load, both backends."""
    import keras

    from mnist_cnn import export
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.run import run_document, save_run

    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    data = export.onnx_bytes(model)
    record = {"sha256": hashlib.sha256(data).hexdigest()}
    document = run_document(
        TrainConfig(), versions={}, data_source="", data_sha256={}, onnx_record=record
    )
    save_run(
        tmp_path / "run",
        save_model=model.save,
        onnx_model=data,
        document=document,
        metrics={},
        history_rows=[],
        batch_rows=[],
    )
    for backend in ("auto", "keras"):
        with pytest.raises(ModelLoadError, match=r"expected input shape \(N, 28, 28, 1\)"):
            Predictor.from_dir(tmp_path / "run", backend=backend)
    assert main(["predict", str(tmp_path), "--run", str(tmp_path / "run")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "input shape" in error


def test_predictor_rejects_unknown_backend(tiny_run):
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor.from_dir(tiny_run, backend="tflite")
