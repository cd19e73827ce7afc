"""Test-set metrics: loss, accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn.data import DIGITS, NUM_CLASSES, Split, load_mnist, to_model_input

logger = logging.getLogger(__name__)

# Keras clips probabilities to [epsilon, 1 - epsilon] before taking the log; so do we, so that
# the loss here equals what model.evaluate() reports.
EPSILON = 1e-7


def metrics_from_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Categorical cross-entropy, accuracy, per-class accuracy and confusion matrix."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    clipped = np.clip(probabilities, EPSILON, 1.0 - EPSILON)
    clipped /= clipped.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(clipped[np.arange(len(labels)), labels])))
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)  # rows: true, cols: predicted
    np.add.at(confusion, (labels, predicted), 1)
    per_class_total = confusion.sum(axis=1)
    per_class = np.divide(
        np.diag(confusion), per_class_total, out=np.zeros(NUM_CLASSES), where=per_class_total > 0
    )
    return {
        "test_loss": loss,
        "test_accuracy": float(np.mean(predicted == labels)),
        "per_class_accuracy": [float(value) for value in per_class],
        "confusion_matrix": confusion.tolist(),
    }


def predict_probabilities(model: Any, images: np.ndarray, data_format: str) -> np.ndarray:
    """Class probabilities for uint8 (N, 28, 28) images, in large batches."""
    return np.asarray(
        model.predict(to_model_input(images, data_format), batch_size=1000, verbose=0)
    )


def evaluate_model(model: Any, split: Split, data_format: str) -> dict[str, Any]:
    probabilities = predict_probabilities(model, split.images, data_format)
    return metrics_from_probabilities(probabilities, split.labels)


PREDICT_BATCH = 1000  # test images per model call: bounds memory, not results


def predict_images(predictor: Any, images: np.ndarray, *, calibrated: bool = False) -> np.ndarray:
    """Probabilities for uint8 (N, 28, 28) images (a test set), in batches: the one way that
    evaluate and report predict, through the same backend as predict and serve. Uncalibrated
    by default, so the test loss is the network's own (the figure train reports)."""
    scaled = np.asarray(images).astype(np.float32) / np.float32(255)
    if len(scaled) == 0:
        return np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate(
        [
            predictor.probabilities(scaled[start : start + PREDICT_BATCH], calibrated=calibrated)
            for start in range(0, len(scaled), PREDICT_BATCH)
        ]
    )


def predict_test_set(
    run_dir: str | Path, data_dir: str | None = None
) -> tuple[Any, Split, np.ndarray]:
    """(predictor, test split, probabilities): the one way evaluate and report predict the
    test set, through the same backend as predict and serve (ONNX Runtime when the run has it).
    """
    from mnist_cnn.image_folder import training_data
    from mnist_cnn.inference import Predictor

    predictor = Predictor.from_dir(run_dir)
    config = predictor.run.config
    dataset = load_mnist(data_dir) if data_dir is not None else training_data(config)
    trained_on = predictor.run.dataset["name"]
    if dataset.name != trained_on:
        logger.warning(
            "the run was trained on %s but is evaluated on %s (%s)",
            trained_on or "unknown IDX data",
            dataset.name or "unknown IDX data",
            dataset.source,
        )
    return predictor, dataset.test, predict_images(predictor, dataset.test.images)


def evaluate_run(run_dir: str | Path, data_dir: str | None = None) -> dict[str, Any]:
    """Evaluate a trained run on the test split (`data_dir`'s, else the run's own): metrics,
    plus the run's `dataset` name and `class_names`."""
    predictor, test, probabilities = predict_test_set(run_dir, data_dir)
    metrics = metrics_from_probabilities(probabilities, test.labels)
    dataset = predictor.run.dataset
    return {**metrics, "dataset": dataset["name"], "class_names": dataset["class_names"]}


def format_report(metrics: dict[str, Any]) -> str:
    """Text for a terminal; classes by name when `metrics["class_names"]` is not the digits."""
    names = tuple(metrics.get("class_names") or DIGITS)
    kind = "digit" if names == DIGITS else "class"
    lines = [
        f"test loss: {metrics['test_loss']:.4f}",
        f"test accuracy: {metrics['test_accuracy']:.4f}",
        "per-class accuracy:",
        "  "
        + "  ".join(
            f"{name}: {value:.4f}"
            for name, value in zip(names, metrics["per_class_accuracy"], strict=True)
        ),
        f"confusion matrix (rows: true {kind}, columns: predicted {kind}"
        + ("" if kind == "digit" else f"; {', '.join(f'{i} = {n}' for i, n in enumerate(names))}")
        + "):",
        "      " + "".join(f"{index:>6}" for index in range(NUM_CLASSES)),
    ]
    for index, row in enumerate(metrics["confusion_matrix"]):
        lines.append(f"{index:>6}" + "".join(f"{count:>6}" for count in row))
    return "\n".join(lines)
