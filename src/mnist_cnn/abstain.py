"""When the model should not answer: "not a digit" (novelty) and "not sure" (low confidence).

A run calibrated by `mnist-cnn calibrate` (fit.py) records two thresholds in config.json:
`novelty_threshold`, the largest distance to the digit classes (novelty.py) still taken for a
digit, and `min_confidence`, the lowest calibrated probability still worth answering. A
picture past either gets `digit: None` and a reason; its confidence and probabilities are
still reported. A run without the records (older, or uncalibrated) answers every picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_cnn.novelty import FeatureModel
from mnist_cnn.run import ModelLoadError, Run, sha256_file

NOT_A_DIGIT = "not a digit: the picture is unlike every digit the model learned"
NOT_SURE = (
    "not sure: the likeliest digits are {first} ({first_p:.2f}) and {second} ({second_p:.2f})"
)


@dataclass(frozen=True)
class Answer:
    """One picture's answer: `digit` is None when the model abstains, and `reason` says why."""

    digit: int | None
    confidence: float  # calibrated probability of the likeliest digit
    probabilities: np.ndarray  # calibrated, (10,)
    reason: str | None = None
    novelty: float | None = None  # distance to the nearest digit class (None: not measured)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "digit": self.digit,
            "confidence": float(self.confidence),
            "probabilities": [float(value) for value in self.probabilities],
        }
        if self.reason is not None:
            result["reason"] = self.reason
        return result


@dataclass(frozen=True)
class Abstention:
    """The thresholds of one run (None: that test is off) and the statistics novelty needs."""

    min_confidence: float | None = None
    novelty_threshold: float | None = None
    feature_model: FeatureModel | None = None

    @classmethod
    def from_run(cls, run: Run) -> Abstention:
        record = run.abstention
        if record is None:
            return cls()
        min_confidence = record.get("min_confidence")
        threshold = record.get("novelty_threshold")
        feature_model = None
        if threshold is not None:
            feature_model = _load_features(run, record.get("features_sha256"))
        return cls(
            min_confidence=None if min_confidence is None else float(min_confidence),
            novelty_threshold=None if threshold is None else float(threshold),
            feature_model=feature_model,
        )

    @property
    def needs_features(self) -> bool:
        return self.feature_model is not None

    def answers(self, probabilities: np.ndarray, features: np.ndarray | None) -> list[Answer]:
        """Calibrated probabilities (N, 10) and penultimate features (N, F) -> N answers."""
        scores = None
        if self.feature_model is not None and features is not None:
            scores = self.feature_model.scores(features)
        answers = []
        for index, row in enumerate(np.asarray(probabilities, dtype=np.float64)):
            ranked = np.argsort(-row, kind="stable")
            first, second = int(ranked[0]), int(ranked[1])
            novelty = None if scores is None else float(scores[index])
            reason = None
            if novelty is not None and novelty > self.novelty_threshold:
                reason = NOT_A_DIGIT
            elif self.min_confidence is not None and row[first] < self.min_confidence:
                reason = NOT_SURE.format(
                    first=first, first_p=row[first], second=second, second_p=row[second]
                )
            digit = None if reason else first
            answers.append(Answer(digit, float(row[first]), row, reason, novelty))
        return answers


def _load_features(run: Run, expected_sha256: Any) -> FeatureModel:
    path = run.features_path
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: missing, but config.json's abstention record needs it; re-run: "
            f"mnist-cnn calibrate {run.path}"
        )
    if sha256_file(path) != expected_sha256:
        raise ModelLoadError(
            f"{path}: SHA-256 does not match the one recorded in config.json (the file was "
            f"changed or replaced); re-run: mnist-cnn calibrate {run.path}"
        )
    try:
        return FeatureModel.from_bytes(path.read_bytes(), str(path))
    except ValueError as error:
        raise ModelLoadError(str(error)) from None
