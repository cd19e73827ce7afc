"""`mnist-cnn calibrate DIR`: fit a run's confidence on its held-out training images.

The temperature (calibrate.py) is fitted on the last `validation_images` training images,
which the run did not train on; the expected calibration error is reported before and after
on those images and on the 10,000 test images (reported only, never fitted on). The "not a
digit" threshold (abstain.py) is the ENERGY_QUANTILE of the energies of the held-out images,
clean and with the robust recipe's capture augmentation (blurred, thickened, warped copies
standing in for photos and scans); the "not sure" threshold is MIN_CONFIDENCE. No corpus
picture and no test image sets anything here. Keras is imported for the augmentation only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError, calibrate
from mnist_cnn.abstain import Abstention, energy
from mnist_cnn.data import load_mnist
from mnist_cnn.evaluate import PREDICT_BATCH
from mnist_cnn.image_folder import training_data
from mnist_cnn.inference import Predictor
from mnist_cnn.run import read_run, record_calibration
from mnist_cnn.training_set import held_out_split

# Below this calibrated probability predict answers null. Chosen on the tune split of the
# real-world corpus (benchmarks/corpus; never its eval split) as the highest value that kept
# at most 2% of its digit pictures unanswered (benchmarks/README.md, "Not a digit").
MIN_CONFIDENCE = 0.5
# Share of held-out digits (clean and capture-augmented) whose energy is at most the "not a
# digit" threshold. Chosen on the tune split (never the eval split): the lowest quantile that
# leaves at most 1.5% of its digit pictures unanswered, a quarter of the 2% bound kept as margin
# for pictures from other sources. For the packaged model 0.985 leaves 1.40% of the tune digits
# and 88.6% of its non-digits unanswered; 0.98 left 1.96%, and 2.02% of the eval split's digits
# (benchmarks/README.md, "Not a digit").
ENERGY_QUANTILE = 0.985
AUGMENTED_COPIES = 2  # capture-augmented copies of each held-out image in the quantile
AUGMENT_SEED = 12345  # fixed: a run's thresholds are reproducible


def capture_augmented(images: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """`copies` versions of uint8 (N, 28, 28) images through the robust recipe's training
    augmentation (whatever recipe the run used): float32 (copies * N, 28, 28) in [0, 1]."""
    from mnist_cnn.augment import augmenter
    from mnist_cnn.config import recipe_config
    from mnist_cnn.data import to_model_input

    config = recipe_config("robust", seed=seed)
    layer = augmenter(config)
    batch = to_model_input(images, config.data_format)
    augmented = [np.asarray(layer(batch, training=True))[..., 0] for _ in range(copies)]
    return np.clip(np.concatenate(augmented), 0.0, 1.0).astype(np.float32)


def model_outputs(predictor: Predictor, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uncalibrated probabilities, logits) of float32 (N, 28, 28) images, in batches; the
    model must give logits (every model.onnx exported since run format 3)."""
    probabilities, logits = [], []
    for start in range(0, len(images), PREDICT_BATCH):
        batch_probabilities, batch_logits = predictor.outputs(images[start : start + PREDICT_BATCH])
        if batch_logits is None:
            raise MnistCnnError(
                f"{predictor.run.path}: its model.onnx has no logits output; re-export it "
                f"first: mnist-cnn export {predictor.run.path}"
            )
        probabilities.append(batch_probabilities)
        logits.append(batch_logits)
    return np.concatenate(probabilities), np.concatenate(logits)


def calibrate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Fit and record the run's temperature and threshold; return the two records written
    into config.json."""
    run = read_run(run_dir)
    held_out = run.config.validation_images
    if held_out < 1:
        raise MnistCnnError(
            f"{run.path}: this run held out no training images to calibrate on (train with "
            "--validation-images N, as --recipe robust does with 5000)"
        )
    predictor = Predictor(run, backend="onnxruntime")
    dataset = load_mnist(data_dir) if data_dir is not None else training_data(run.config)
    held_out_images, validation_labels = held_out_split(dataset, run.config)[1]
    validation, validation_logits = model_outputs(predictor, held_out_images / np.float32(255))
    test, test_logits = model_outputs(predictor, dataset.test.images / np.float32(255))
    temperature = calibrate.fit_temperature(validation, validation_labels)

    def ece(probabilities: np.ndarray, labels: np.ndarray, scaled: bool) -> float:
        if scaled:
            probabilities = calibrate.scale(probabilities, temperature)
        return calibrate.expected_calibration_error(probabilities, labels)

    calibration = {
        "temperature": temperature,
        "validation_images": held_out,
        "ece_bins": calibrate.ECE_BINS,
        "validation_ece_before": ece(validation, validation_labels, False),
        "validation_ece_after": ece(validation, validation_labels, True),
        "test_ece_before": ece(test, dataset.test.labels, False),
        "test_ece_after": ece(test, dataset.test.labels, True),
    }
    augmented = capture_augmented(held_out_images, AUGMENTED_COPIES, AUGMENT_SEED)
    energies = np.concatenate(
        [energy(validation_logits), energy(model_outputs(predictor, augmented)[1])]
    )
    abstention = {
        "method": "energy and calibrated max probability",
        "max_energy": float(np.quantile(energies, ENERGY_QUANTILE)),
        "energy_quantile": ENERGY_QUANTILE,
        "threshold_images": len(energies),
        "min_confidence": MIN_CONFIDENCE,
    }
    thresholds = Abstention(MIN_CONFIDENCE, abstention["max_energy"])
    answers = thresholds.answers(calibrate.scale(test, temperature), test_logits)
    abstention["test_null_rate"] = float(np.mean([answer.digit is None for answer in answers]))
    record_calibration(run, calibration, abstention)
    return {"calibration": calibration, "abstention": abstention}
