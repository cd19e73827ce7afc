"""Abstention: "not a digit" past the novelty threshold, "not sure" below the confidence."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mnist_cnn.abstain import NOT_A_DIGIT, Abstention
from mnist_cnn.novelty import FeatureModel
from mnist_cnn.run import ModelLoadError, read_run


def one_hot_ish(digit: int, confidence: float) -> np.ndarray:
    row = np.full(10, (1 - confidence) / 9)
    row[digit] = confidence
    return row


def test_each_threshold_gives_its_reason_and_the_rest_are_answered():
    # Features are their own whitened coordinates: distance = squared distance to a centre.
    model = FeatureModel(whitening=np.eye(2), centres=np.zeros((10, 2)))
    abstention = Abstention(min_confidence=0.5, novelty_threshold=4.0, feature_model=model)
    probabilities = np.stack([one_hot_ish(3, 0.9), one_hot_ish(3, 0.9), one_hot_ish(7, 0.3)])
    features = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    sure, unlike, unsure = abstention.answers(probabilities, features)
    assert (sure.digit, sure.reason) == (3, None)
    assert unlike.digit is None and unlike.reason == NOT_A_DIGIT and unlike.novelty == 9.0
    assert unsure.digit is None and unsure.reason.startswith("not sure: the likeliest digits")
    assert "reason" not in sure.to_dict() and unsure.to_dict()["reason"] == unsure.reason
    assert unsure.to_dict()["confidence"] == pytest.approx(0.3)


def test_a_run_without_records_answers_everything():
    abstention = Abstention()
    (answer,) = abstention.answers(one_hot_ish(1, 0.11)[None], None)
    assert answer.digit == 1 and answer.reason is None


def test_a_changed_features_file_is_refused(calibrated_run, tmp_path):
    run_dir = shutil.copytree(calibrated_run, tmp_path / "run")
    path = run_dir / "features.npz"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelLoadError, match="SHA-256 does not match.*mnist-cnn calibrate"):
        Abstention.from_run(read_run(run_dir))
    path.unlink()
    with pytest.raises(ModelLoadError, match="features.npz: missing"):
        Abstention.from_run(read_run(run_dir))
