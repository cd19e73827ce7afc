""" "Is this a digit at all?": distance to the digit classes in the network's penultimate layer.

The 1,024 ReLU features before the last layer place every MNIST digit near its class; a
letter, a garment or a scribble, once preprocessed into a 28x28 blob, lands far from all ten.
The score is the squared Mahalanobis distance to the nearest class mean under the shared
within-class covariance (Lee et al., 2018), computed in the top `components` directions of
that covariance so that the statistics stay small (what `fit` keeps is a whitening matrix and
ten centres). The max-softmax baseline (Hendrycks & Gimpel, 2017) is measured beside it in
benchmarks/README.md. NumPy only: predict and serve score without TensorFlow.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from mnist_cnn.data import NUM_CLASSES

# Directions of the within-class covariance kept. 128 of 1024 hold most of its variance and
# keep the file at 0.5 MB; measured against 64 and 256 in benchmarks/README.md ("Not a digit").
COMPONENTS = 128
# Added to every eigenvalue: dead ReLU units leave the covariance singular.
RIDGE = 1e-6


@dataclass(frozen=True)
class FeatureModel:
    """Whitening matrix (features, components) and class centres (10, components)."""

    whitening: np.ndarray
    centres: np.ndarray

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Squared distance to the nearest class centre, (N, features) -> (N,) float64."""
        projected = np.asarray(features, dtype=np.float64) @ self.whitening
        squared = (
            (projected**2).sum(axis=1, keepdims=True)
            - 2 * projected @ self.centres.T
            + (self.centres**2).sum(axis=1)[None, :]
        )
        return np.maximum(squared.min(axis=1), 0.0)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            whitening=self.whitening.astype(np.float32),
            centres=self.centres.astype(np.float32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "feature statistics") -> FeatureModel:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                whitening, centres = arrays["whitening"], arrays["centres"]
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{label}: not a feature-statistics file ({error})") from None
        if whitening.ndim != 2 or centres.shape != (NUM_CLASSES, whitening.shape[1]):
            raise ValueError(
                f"{label}: expected whitening (features, k) and centres ({NUM_CLASSES}, k), "
                f"found {whitening.shape} and {centres.shape}"
            )
        return cls(whitening.astype(np.float64), centres.astype(np.float64))


def fit(features: np.ndarray, labels: np.ndarray, components: int = COMPONENTS) -> FeatureModel:
    """Class means and the shared within-class covariance of training `features`."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    missing = sorted(set(range(NUM_CLASSES)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"every digit needs training features; none for {missing}")
    means = np.stack([features[labels == digit].mean(axis=0) for digit in range(NUM_CLASSES)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(features)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    keep = min(components, len(eigenvalues))
    values, vectors = eigenvalues[-keep:], eigenvectors[:, -keep:]
    whitening = vectors / np.sqrt(values + RIDGE)
    return FeatureModel(whitening=whitening, centres=means @ whitening)
