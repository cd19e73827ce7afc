"""ONNX export and the Predictor's fast path: same probabilities as Keras to 1e-5."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from mnist_cnn import export
from mnist_cnn.cli import main
from mnist_cnn.predict import Predictor, load_run

pytestmark = pytest.mark.skipif(
    not export.onnx_available(), reason="needs onnxruntime, tf2onnx and onnx"
)


@pytest.fixture(scope="module")
def run(tiny_run):
    return load_run(tiny_run)


@pytest.fixture(scope="module")
def images(mnist):
    """300 test images, (N, 28, 28) float32 in [0, 1]."""
    return mnist.test.images[:300].astype(np.float32) / 255.0


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run, free to gain a model.onnx."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def keras_probabilities(run, images):
    return np.asarray(run.model(images[..., None], training=False))


def test_export_round_trips_to_identical_probabilities(run, images, tmp_path):
    path = export.export_onnx(run.path, tmp_path / "tiny.onnx")
    call = export.session_call(export.onnx_session(path))
    for batch in (images[:1], images):
        found = call(batch[..., None])
        assert found.dtype == np.float32
        np.testing.assert_allclose(found, keras_probabilities(run, batch), rtol=0, atol=1e-5)
    assert not (run.path / export.ONNX_FILE).exists()  # --output given: the run is untouched


def test_channels_first_run_predicts_through_both_backends(tmp_path, images):
    """TensorFlow runs channels_first convolutions on CPU only under XLA; ONNX Runtime natively."""
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.model import build_model

    run_dir = tmp_path / "channels-first"
    run_dir.mkdir()
    build_model("channels_first").save(run_dir / "model.keras")  # untrained: enough here
    config = {"config": TrainConfig(data_format="channels_first").to_dict()}
    (run_dir / "config.json").write_text(json.dumps(config))
    fast = Predictor.from_dir(run_dir)
    compiled = Predictor.from_dir(run_dir, backend="tensorflow")
    assert (fast.backend, compiled.backend) == ("onnxruntime", "tensorflow")
    np.testing.assert_allclose(
        fast.probabilities(images), compiled.probabilities(images), rtol=0, atol=1e-5
    )


def test_verify_rejects_a_different_result(run, images):
    def off(batch):
        return keras_probabilities(run, batch[..., 0]) + 1e-3

    reference = export.keras_call(run.model, "channels_last")
    with pytest.raises(export.ExportError, match="differ from Keras"):
        export.verify(reference, off, images[:10, ..., None])


def test_cli_export_writes_the_default_file(run_copy, capsys):
    assert main(["export", str(run_copy), "--format", "onnx"]) == 0
    target = run_copy / export.ONNX_FILE
    assert target.is_file() and str(target) in capsys.readouterr().out
    assert [p.name for p in run_copy.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_cli_export_bad_run_dir_is_exit_1(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no-run")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("mnist-cnn: error: ") and "not a directory" in error
    assert main(["export", str(tmp_path), "--format", "tflite"]) == 2  # usage error


def test_predictor_fast_path_matches_keras(run, images):
    fast = Predictor(run)
    assert fast.backend == "onnxruntime"
    compiled = Predictor(run, backend="tensorflow")
    assert compiled.backend == "tensorflow"
    expected = keras_probabilities(run, images)
    for predictor in (fast, compiled):
        np.testing.assert_allclose(predictor.probabilities(images), expected, rtol=0, atol=1e-5)
        single = predictor.probabilities(images[0])
        np.testing.assert_allclose(single, expected[:1], rtol=0, atol=1e-5)


def test_predictor_ignores_a_foreign_model_onnx(run_copy, images):
    from mnist_cnn.model import build_model

    foreign = run_copy / export.ONNX_FILE  # another model's export, newer than model.keras
    foreign.write_bytes(export.onnx_bytes(build_model("channels_last")))
    newer = (run_copy / "model.keras").stat().st_mtime + 10
    os.utime(foreign, (newer, newer))
    predictor = Predictor.from_dir(run_copy)
    assert predictor.backend == "onnxruntime"
    expected = keras_probabilities(predictor.run, images)
    np.testing.assert_allclose(predictor.probabilities(images), expected, rtol=0, atol=1e-5)


def test_predictor_rejects_unknown_backend(run):
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor(run, backend="tflite")


def test_predictor_falls_back_without_onnxruntime(run, images, monkeypatch):
    monkeypatch.setattr(export, "onnx_available", lambda: False)
    predictor = Predictor(run)
    assert predictor.backend == "tensorflow"
    expected = keras_probabilities(run, images[:10])
    np.testing.assert_allclose(predictor.probabilities(images[:10]), expected, rtol=0, atol=1e-5)
    with pytest.raises(export.ExportError, match="needs onnxruntime"):
        Predictor(run, backend="onnxruntime")
