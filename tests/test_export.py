"""ONNX export: written atomically into the run with its hash, the same probabilities as Keras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_cnn import export
from mnist_cnn.cli import main
from mnist_cnn.files import sha256_file
from mnist_cnn.inference import keras_call, load_keras_model, verify
from mnist_cnn.onnx_backend import BackendError, onnx_session, session_call
from mnist_cnn.run import FORMAT_VERSION, read_run


def keras_probabilities(run_dir, images):
    model = load_keras_model(read_run(run_dir))
    return np.asarray(model(images[..., None], training=False))


def test_export_to_a_file_round_trips_and_leaves_the_run_alone(tiny_run, images, tmp_path):
    before = (tiny_run / "config.json").read_bytes()
    path = export.export_onnx(tiny_run, tmp_path / "tiny.onnx")
    call = session_call(onnx_session(str(path)))
    expected = keras_probabilities(tiny_run, images)
    for batch, reference in ((images[:1], expected[:1]), (images, expected)):
        found = call(batch[..., None])
        assert found.dtype == np.float32
        np.testing.assert_allclose(found, reference, rtol=0, atol=1e-5)
    assert (tiny_run / "config.json").read_bytes() == before


def test_export_into_an_old_run_records_its_hash(run_copy):
    """A run made before every run carried model.onnx gains one, and its record."""
    (run_copy / "model.onnx").unlink()
    document = json.loads((run_copy / "config.json").read_text())
    del document["onnx"], document["format_version"]
    (run_copy / "config.json").write_text(json.dumps(document))
    assert main(["export", str(run_copy)]) == 0
    run = read_run(run_copy)
    assert run.format_version == FORMAT_VERSION
    assert run.onnx_record["sha256"] == sha256_file(run_copy / "model.onnx")
    assert run.onnx_record["max_difference"] <= 1e-5
    assert [p.name for p in run_copy.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_channels_first_model_exports_and_matches_keras(images):
    """TensorFlow runs channels_first convolutions on CPU only under XLA; ONNX Runtime natively."""
    from mnist_cnn.model import build_model

    model = build_model("channels_first")  # untrained: enough to compare two backends
    data, record = export.onnx_model(model, "channels_first")
    assert record["input_shape"] == [None, 1, 28, 28]
    found = session_call(onnx_session(data))(images[:, None])
    expected = keras_call(model, "channels_first")(images[:, None])
    np.testing.assert_allclose(found, expected, rtol=0, atol=1e-5)


def test_verify_rejects_a_different_result(tiny_run, images):
    model = load_keras_model(read_run(tiny_run))
    reference = keras_call(model, "channels_last")

    def off(batch):
        return reference(batch) + 1e-3

    with pytest.raises(BackendError, match="differ from Keras"):
        verify(reference, off, images[:10, ..., None])


def test_cli_export_bad_run_dir_is_exit_1(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no-run")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("mnist-cnn: error: ") and "not a directory" in error
    assert main(["export", str(tmp_path), "--format", "tflite"]) == 2  # usage error


def test_export_to_a_directory_is_refused(tiny_run, tmp_path):
    with pytest.raises(export.ExportError, match="is a directory"):
        export.export_onnx(tiny_run, tmp_path)
