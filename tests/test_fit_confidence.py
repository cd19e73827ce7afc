"""`mnist-cnn calibrate`: temperature, feature statistics and thresholds on held-out images."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mnist_cnn import MnistCnnError, calibrate
from mnist_cnn.cli import main
from mnist_cnn.data import load_mnist
from mnist_cnn.fit_confidence import MIN_CONFIDENCE, NOVELTY_QUANTILE, calibrate_run
from mnist_cnn.inference import Predictor
from mnist_cnn.run import read_run


def test_training_with_held_out_images_records_a_fitted_calibration(calibrated_run):
    run = read_run(calibrated_run)
    calibration, abstention = run.calibration, run.abstention
    assert calibration["validation_images"] == 200 and calibration["temperature"] > 0
    features = (calibrated_run / "features.npz").read_bytes()
    assert abstention["features_sha256"] == hashlib.sha256(features).hexdigest()
    assert abstention["min_confidence"] == MIN_CONFIDENCE
    assert abstention["novelty_quantile"] == NOVELTY_QUANTILE
    # The temperature is the negative log-likelihood's minimum on the held-out images.
    predictor = Predictor(run)
    held_out = load_mnist(run.config.data_dir).train
    images, labels = held_out.images[-200:] / 255.0, held_out.labels[-200:]
    raw = predictor.probabilities(images, calibrated=False)
    loss = calibrate.negative_log_likelihood
    fitted = loss(calibrate.scale(raw, calibration["temperature"]), labels)
    for other in (0.7, 1.0, 1.4):
        assert fitted <= loss(calibrate.scale(raw, calibration["temperature"] * other), labels)
    np.testing.assert_allclose(
        predictor.probabilities(images), calibrate.scale(raw, calibration["temperature"]), atol=1e-6
    )


def test_noise_is_not_a_digit_and_most_test_digits_are_answered(calibrated_run, mnist):
    predictor = Predictor.from_dir(calibrated_run)
    noise = np.random.default_rng(0).random((20, 28, 28)).astype(np.float32)
    assert all(
        answer.reason and answer.reason.startswith("not a digit")
        for answer in predictor.answers(noise)
    )
    digits = predictor.answers(mnist.test.images[:200] / 255.0)
    assert np.mean([answer.digit is not None for answer in digits]) > 0.5


def test_a_run_without_held_out_images_cannot_be_calibrated(tiny_run):
    with pytest.raises(MnistCnnError, match="held out no training images.*--validation-images"):
        calibrate_run(tiny_run)


def test_calibrate_command_refits_and_prints(calibrated_run, tmp_path, capsys):
    import shutil

    run_dir = shutil.copytree(calibrated_run, tmp_path / "run")
    before = json.loads((run_dir / "config.json").read_text())
    assert main(["calibrate", str(run_dir)]) == 0
    assert "temperature:" in capsys.readouterr().out
    after = json.loads((run_dir / "config.json").read_text())
    assert after["calibration"]["temperature"] == pytest.approx(
        before["calibration"]["temperature"], rel=1e-6
    )
