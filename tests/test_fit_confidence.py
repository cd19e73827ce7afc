"""`mnist-cnn calibrate`: the temperature is fitted on held-out training images, then used."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mnist_cnn import MnistCnnError, calibrate
from mnist_cnn.abstain import Abstention
from mnist_cnn.cli import main
from mnist_cnn.data import load_mnist
from mnist_cnn.fit_confidence import ENERGY_QUANTILE, MIN_CONFIDENCE, calibrate_run
from mnist_cnn.inference import Predictor
from mnist_cnn.run import read_run


def test_training_with_held_out_images_records_a_fitted_temperature(calibrated_run):
    run = read_run(calibrated_run)
    calibration, abstention = run.calibration, run.abstention
    assert calibration["validation_images"] == 200 and calibration["temperature"] > 0
    assert abstention["min_confidence"] == MIN_CONFIDENCE
    assert abstention["energy_quantile"] == ENERGY_QUANTILE
    assert abstention["threshold_images"] == 600  # 200 held out, clean and 2 augmented copies
    # The temperature is the negative log-likelihood's minimum on the held-out images.
    predictor = Predictor(run)
    train = load_mnist(run.config.data_dir).train
    images, labels = train.images[-200:] / 255.0, train.labels[-200:]
    raw = predictor.probabilities(images, calibrated=False)
    loss = calibrate.negative_log_likelihood
    temperature = calibration["temperature"]
    fitted = loss(calibrate.scale(raw, temperature), labels)
    for factor in (0.7, 1.4):
        assert fitted <= loss(calibrate.scale(raw, temperature * factor), labels)
    # predict and serve see the scaled probabilities and abstain past either threshold.
    scaled = calibrate.scale(raw, temperature)
    np.testing.assert_allclose(predictor.probabilities(images), scaled, atol=1e-6)
    _, logits = predictor.outputs(images)
    expected = Abstention(MIN_CONFIDENCE, abstention["max_energy"]).answers(scaled, logits)
    answers = predictor.answers(images)
    assert [a.digit for a in answers] == [e.digit for e in expected]
    assert 0.6 <= np.mean([answer.digit is not None for answer in answers]) <= 0.995


def test_a_run_without_held_out_images_cannot_be_calibrated(tiny_run):
    with pytest.raises(MnistCnnError, match="held out no training images.*--validation-images"):
        calibrate_run(tiny_run)


def test_calibrate_command_refits_the_same_temperature(calibrated_run, tmp_path, capsys):
    run_dir = shutil.copytree(calibrated_run, tmp_path / "run")
    before = json.loads((run_dir / "config.json").read_text())
    assert main(["calibrate", str(run_dir)]) == 0
    assert "temperature:" in capsys.readouterr().out
    after = json.loads((run_dir / "config.json").read_text())
    assert after["calibration"]["temperature"] == pytest.approx(
        before["calibration"]["temperature"], rel=1e-6
    )
