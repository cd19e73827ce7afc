"""`mnist-cnn calibrate DIR`: fit a run's confidence on its held-out training images.

Three things are fitted, all on MNIST training images the run did not train on (the last
`validation_images` of the training set) or trained on (the feature statistics), never on the
test set or on any corpus picture:
1. the temperature (calibrate.py) on the clean held-out images, with the expected calibration
   error before and after, on those images and on the 10,000 test images (reported only);
2. the class centres of the penultimate features (novelty.py), from the training images;
3. the thresholds (abstain.py): `novelty_threshold` is the NOVELTY_QUANTILE of the held-out
   images' distances, clean and with capture augmentation (augment.py: blurred, thickened,
   warped copies standing in for photos and scans), and `min_confidence` is MIN_CONFIDENCE.
Imports Keras for the augmentation only; predict and serve read the records without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError, calibrate, novelty
from mnist_cnn.config import recipe_config
from mnist_cnn.data import load_mnist, to_model_input
from mnist_cnn.evaluate import PREDICT_BATCH
from mnist_cnn.inference import Predictor
from mnist_cnn.run import read_run, record_calibration

# Share of held-out digits (clean and capture-augmented) whose distance is at most the
# threshold: 1% of such digits are called "not a digit". Chosen on the tune split of the
# real-world corpus (benchmarks/README.md, "Not a digit"); the eval split never set it.
NOVELTY_QUANTILE = 0.99
# Below this calibrated probability the answer is "not sure". Chosen on the tune split.
MIN_CONFIDENCE = 0.5
AUGMENTED_COPIES = 2  # capture-augmented copies of each held-out image in the quantile
AUGMENT_SEED = 12345  # fixed: the thresholds of a run are reproducible


def _outputs(predictor: Predictor, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uncalibrated probabilities, features) for float32 (N, 28, 28) images, in batches."""
    probabilities, features = [], []
    for start in range(0, len(images), PREDICT_BATCH):
        batch_probabilities, batch_features = predictor.outputs(
            images[start : start + PREDICT_BATCH]
        )
        if batch_features is None:
            raise MnistCnnError(
                f"{predictor.run.path}: its model.onnx has no features output; re-export it "
                f"first: mnist-cnn export {predictor.run.path}"
            )
        probabilities.append(batch_probabilities)
        features.append(batch_features)
    return np.concatenate(probabilities), np.concatenate(features)


def capture_augmented(images: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """`copies` capture-augmented versions of float32 (N, 28, 28) images (the robust
    recipe's augmentation, whatever recipe the run used), (copies * N, 28, 28)."""
    from mnist_cnn.augment import augmenter

    config = recipe_config("robust", seed=seed)
    layer = augmenter(config)
    batch = to_model_input((images * 255).round().astype(np.uint8), config.data_format)
    augmented = [np.asarray(layer(batch, training=True))[..., 0] for _ in range(copies)]
    return np.clip(np.concatenate(augmented), 0.0, 1.0).astype(np.float32)


def calibrate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Fit and record the run's temperature, feature statistics and thresholds; return the
    two records written into config.json."""
    run = read_run(run_dir)
    held_out = run.config.validation_images
    if held_out < 1:
        raise MnistCnnError(
            f"{run.path}: this run held out no training images to calibrate on (train with "
            "--validation-images N, as --recipe robust does with 5000)"
        )
    predictor = Predictor(run, backend="onnxruntime")
    dataset = load_mnist(data_dir if data_dir is not None else run.config.data_dir)
    images = dataset.train.images.astype(np.float32) / 255
    labels = dataset.train.labels
    trained = len(images) - held_out
    if run.config.limit is not None:
        trained = min(trained, run.config.limit)
    _, train_features = _outputs(predictor, images[:trained])
    validation_probabilities, validation_features = _outputs(predictor, images[-held_out:])
    validation_labels = labels[-held_out:]
    test_probabilities, _ = _outputs(predictor, dataset.test.images.astype(np.float32) / 255)

    temperature = calibrate.fit_temperature(validation_probabilities, validation_labels)

    def ece(probabilities: np.ndarray, labels: np.ndarray, scaled: bool) -> float:
        if scaled:
            probabilities = calibrate.scale(probabilities, temperature)
        return calibrate.expected_calibration_error(probabilities, labels)

    calibration = {
        "temperature": temperature,
        "validation_images": held_out,
        "ece_bins": calibrate.ECE_BINS,
        "validation_ece_before": ece(validation_probabilities, validation_labels, False),
        "validation_ece_after": ece(validation_probabilities, validation_labels, True),
        "test_ece_before": ece(test_probabilities, dataset.test.labels, False),
        "test_ece_after": ece(test_probabilities, dataset.test.labels, True),
    }
    feature_model = novelty.fit(train_features, labels[:trained])
    augmented = capture_augmented(images[-held_out:], AUGMENTED_COPIES, AUGMENT_SEED)
    _, augmented_features = _outputs(predictor, augmented)
    distances = feature_model.scores(np.concatenate([validation_features, augmented_features]))
    abstention = {
        "method": "mahalanobis",
        "components": int(feature_model.centres.shape[1]),
        "novelty_threshold": float(np.quantile(distances, NOVELTY_QUANTILE)),
        "novelty_quantile": NOVELTY_QUANTILE,
        "min_confidence": MIN_CONFIDENCE,
        "threshold_images": int(len(distances)),
    }
    record_calibration(run, calibration, abstention, feature_model.to_bytes())
    return {"calibration": calibration, "abstention": abstention}
