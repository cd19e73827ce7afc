"""The packaged model: where it is, the error when it is not installed, and that it installs."""

from __future__ import annotations

import fnmatch
import gzip
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_cnn import packaged
from mnist_cnn.cli import main
from mnist_cnn.inference import Predictor
from mnist_cnn.packaged import (
    PACKAGED_RUN_DIR,
    REPRODUCE_FILE,
    packaged_model_present,
    packaged_run_dir,
)
from mnist_cnn.run import CONFIG_FILE, METRICS_FILE, ONNX_FILE, ModelLoadError, read_run
from tests.test_package import heavy_imports

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"
MISSING = "the packaged model is missing from this installation"
UPSCALE = 4  # an MNIST digit drawn 112 px wide, as a scan of one would be


@pytest.fixture
def no_packaged_model(tmp_path, monkeypatch) -> Path:
    empty = tmp_path / "packaged_model"
    empty.mkdir()
    monkeypatch.setattr(packaged, "PACKAGED_RUN_DIR", empty)
    return empty


@pytest.fixture
def seven_png(tmp_path, mnist) -> Path:
    """MNIST test digit 0 (a 7) as dark ink on white paper, 112x112 PNG."""
    assert mnist.test.labels[0] == 7
    ink = 255 - mnist.test.images[0]
    picture = Image.fromarray(ink.astype(np.uint8), mode="L")
    path = tmp_path / "seven.png"
    picture.resize((28 * UPSCALE, 28 * UPSCALE), Image.Resampling.BILINEAR).save(path)
    return path


def test_missing_packaged_model_is_a_one_line_error(no_packaged_model):
    with pytest.raises(ModelLoadError, match=f"{MISSING}.*no model.onnx or config.json.*--run"):
        packaged_run_dir()
    (no_packaged_model / CONFIG_FILE).write_text("{}")
    with pytest.raises(ModelLoadError, match=r"no model\.onnx\); pass --run DIR$"):
        packaged_run_dir()
    assert not packaged_model_present()


def test_a_complete_directory_is_the_packaged_run(no_packaged_model):
    for name in (ONNX_FILE, CONFIG_FILE):
        (no_packaged_model / name).write_bytes(b"")  # loading is Predictor's job, not this one's
    assert packaged_run_dir() == no_packaged_model
    assert packaged_model_present()


@pytest.mark.parametrize("command", [["predict", "IMAGE"], ["serve", "--port", "1"]])
def test_cli_without_run_and_without_packaged_model(no_packaged_model, seven_png, capsys, command):
    command = [str(seven_png) if word == "IMAGE" else word for word in command]
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"mnist-cnn: error: {MISSING} ({no_packaged_model}")
    assert err.endswith("; pass --run DIR\n") and err.count("\n") == 1


def test_package_data_installs_the_packaged_model():
    """Every file of packaged_model/ matches a package-data glob, so wheels carry it."""
    package_data = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    globs = package_data["mnist_cnn"]
    for name in (ONNX_FILE, CONFIG_FILE, METRICS_FILE, REPRODUCE_FILE):
        path = f"{PACKAGED_RUN_DIR.name}/{name}"
        assert any(fnmatch.fnmatch(path, pattern) for pattern in globs), path
    assert PACKAGED_RUN_DIR.parent == Path(packaged.__file__).parent  # inside the package


def test_packaged_imports_no_tensorflow():
    assert heavy_imports("packaged", top_level_only=False) == set()


def test_predict_without_run_uses_the_packaged_run_dir(tiny_run, seven_png, monkeypatch, capsys):
    assert main(["predict", str(seven_png), "--run", str(tiny_run), "--json"]) == 0
    with_run = capsys.readouterr().out
    monkeypatch.setattr(packaged, "PACKAGED_RUN_DIR", tiny_run)
    assert main(["predict", str(seven_png), "--json"]) == 0
    assert capsys.readouterr().out == with_run


def test_predict_without_run_uses_the_packaged_model(seven_png, capsys):
    assert main(["predict", str(seven_png), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["digit"] == 7, result
    assert main(["predict", str(seven_png)]) == 0
    assert capsys.readouterr().out.startswith(f"{seven_png}: 7 (")


FASHION_TEST_IMAGES = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def test_the_packaged_model_is_a_small_calibrated_robust_run():
    assert packaged_model_present()
    run = read_run(PACKAGED_RUN_DIR)
    assert run.config.recipe == "robust" and not run.model_path.exists()
    assert run.onnx_path.stat().st_size <= 15_000_000  # the bound
    assert run.metrics()["test_accuracy"] >= 0.995
    assert run.calibration["temperature"] > 0 and run.calibration["test_ece_after"] <= 0.01
    assert run.abstention["max_energy"] is not None


def test_the_packaged_model_answers_digits_and_refuses_noise(mnist):
    predictor = Predictor.from_dir(packaged_run_dir())
    answers = predictor.answers(mnist.test.images[:1000] / np.float32(255))
    digits = np.array([-1 if answer.digit is None else answer.digit for answer in answers])
    # Issue 11's bound: at most 2% of real digits unanswered. Measured 0.8% on these 1,000 with
    # outlier exposure and the energy threshold at its 98.5th percentile (1.3% at the 98th;
    # 0.25% without outlier exposure, which left 10 points more non-digits answered).
    assert np.mean(digits == -1) <= 0.02
    answered = digits >= 0
    assert np.mean(digits[answered] == mnist.test.labels[:1000][answered]) >= 0.99
    noise = np.random.default_rng(0).random((50, 28, 28)).astype(np.float32)
    assert all(answer.digit is None for answer in predictor.answers(noise))


@pytest.mark.skipif(not FASHION_TEST_IMAGES.is_file(), reason="Debian's dataset-fashion-mnist")
def test_the_packaged_model_leaves_most_clothing_unanswered():
    with gzip.open(FASHION_TEST_IMAGES) as handle:
        pixels = np.frombuffer(handle.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    answers = Predictor.from_dir(packaged_run_dir()).answers(pixels[:1000] / np.float32(255))
    assert np.mean([answer.digit is None for answer in answers]) >= 0.85  # measured 85.9%
