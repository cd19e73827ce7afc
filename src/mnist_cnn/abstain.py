"""When the model should not answer: "not a digit" (energy) or "not sure" (low confidence).

A run calibrated by `mnist-cnn calibrate` (fit_confidence.py) records two thresholds in
config.json. `max_energy`: the energy -logsumexp(logits) (Liu et al., 2020) of a picture
above it is unlike the digits the model learned ("not a digit"); energy measured best of the
scores compared (max-softmax, calibrated max probability, max logit, Mahalanobis distance of
the penultimate features, an outlier head on them: benchmarks/README.md, "Not a digit").
`min_confidence`: a likeliest digit with a lower calibrated probability is a guess ("not
sure" when two digits share nearly all of it, a 4 or a 9; "not a digit" otherwise). Such a
picture gets `digit: None` and the reason; its confidence and probabilities are still
reported. A run without the records (older, or uncalibrated) answers every picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_cnn.run import Run


def energy(logits: np.ndarray) -> np.ndarray:
    """-logsumexp(logits) per row: low for inputs like the training digits."""
    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max(axis=-1)
    return -(peak + np.log(np.exp(logits - peak[..., None]).sum(axis=-1)))


# Two digits holding this much of the probability between them make an ambiguous digit
# ("not sure"), not a non-digit: a 4/9 or 1/7 doubt leaves little for the other eight.
PAIR_SHARE = 0.9
NOT_A_DIGIT = "not a digit: no digit fits this picture (best guess {first}, {first_p:.2f})"
UNLIKE_DIGITS = "not a digit: the picture is unlike the digits the model learned"
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

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "digit": self.digit,
            "confidence": float(self.confidence),
            "probabilities": [float(value) for value in self.probabilities],
        }
        if self.reason is not None:
            result["reason"] = self.reason
        return result


def no_digit_answer(reason: str) -> dict[str, Any]:
    """The answer for a picture preprocessing finds no digit in (blank paper, a speck, the
    outline of a solid shape): the fields of Answer.to_dict, all null, and the reason."""
    return {"digit": None, "confidence": None, "probabilities": None, "reason": reason}


@dataclass(frozen=True)
class Abstention:
    """A run's thresholds (None: that test is off)."""

    min_confidence: float | None = None
    max_energy: float | None = None

    @classmethod
    def from_run(cls, run: Run) -> Abstention:
        record = run.abstention or {}

        def number(key: str) -> float | None:
            return None if record.get(key) is None else float(record[key])

        return cls(min_confidence=number("min_confidence"), max_energy=number("max_energy"))

    @property
    def needs_logits(self) -> bool:
        return self.max_energy is not None

    def answers(self, probabilities: np.ndarray, logits: np.ndarray | None = None) -> list[Answer]:
        """Calibrated probabilities (N, 10) and the logits (N, 10) -> N answers."""
        energies = None
        if self.max_energy is not None:
            if logits is None:
                raise ValueError("the energy threshold needs the logits")
            energies = energy(logits)
        answers = []
        for index, row in enumerate(np.asarray(probabilities, dtype=np.float64)):
            ranked = np.argsort(-row, kind="stable")
            first, second = int(ranked[0]), int(ranked[1])
            reason = None
            if energies is not None and energies[index] > self.max_energy:
                reason = UNLIKE_DIGITS
            elif self.min_confidence is not None and row[first] < self.min_confidence:
                template = NOT_SURE if row[first] + row[second] >= PAIR_SHARE else NOT_A_DIGIT
                reason = template.format(
                    first=first, first_p=row[first], second=second, second_p=row[second]
                )
            answers.append(Answer(None if reason else first, float(row[first]), row, reason))
        return answers
