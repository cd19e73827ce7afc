"""`write_report(run_dir)`: evaluate a run on the test set and write `report/` (PNGs + report.md).

The test figures come from evaluate.predict_test_set (the same backend as predict); the
figures are drawn by plots.py, which only draws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import files
from mnist_cnn.dataset_registry import DIGITS
from mnist_cnn.evaluate import metrics_from_probabilities, predict_test_set
from mnist_cnn.plots import (
    confusion_matrix_figure,
    misclassified_figure,
    per_class_accuracy_figure,
    save_png,
    training_curves_figure,
)


def write_report(run_dir: str | Path, data_dir: str | None = None) -> Path:
    """Evaluate the run on the test set and write `run_dir/report/` (PNGs + report.md).

    Returns the path of report.md. Test figures come from predicting the test set now (with
    `data_dir`'s test files if given, else the run's); the curves from the run's CSV logs.
    """
    predictor, test, probabilities = predict_test_set(run_dir, data_dir)
    run = predictor.run
    config = run.config
    metrics = metrics_from_probabilities(probabilities, test.labels)
    trained = run.metrics()

    out = run.report_dir
    out.mkdir(exist_ok=True)
    steps_per_epoch = None
    if trained.get("train_images") and trained.get("batch_size"):
        steps_per_epoch = math.ceil(trained["train_images"] / trained["batch_size"])
    figures = {
        "training_curves.png": (
            "Training curves",
            training_curves_figure(
                run.batch_rows(),
                run.history_rows(),
                steps_per_epoch,
                metrics,
            ),
        ),
        "confusion_matrix.png": (
            "Confusion matrix",
            confusion_matrix_figure(np.asarray(metrics["confusion_matrix"]), run.class_names),
        ),
        "per_class_accuracy.png": (
            "Accuracy per digit",
            per_class_accuracy_figure(
                metrics["per_class_accuracy"], metrics["test_accuracy"], run.class_names
            ),
        ),
        "misclassified.png": (
            "Most confidently misclassified test digits",
            misclassified_figure(test.images, test.labels, probabilities),
        ),
    }
    for name, (_, figure) in figures.items():
        save_png(figure, out / name)

    headline = _headline(metrics, trained, config, run.dataset)
    lines = [f"# Evaluation report: {run.path.name}", "", *headline]
    versions = run.document.get("versions", {})
    if versions:
        listed = ", ".join(f"{name} {value}" for name, value in versions.items())
        lines.append(f"| libraries | {listed} |")
    for name, (title, _) in figures.items():
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    target = out / "report.md"
    files.write_text(target, "\n".join(lines) + "\n")
    return target


def _headline(
    metrics: dict[str, Any], trained: dict[str, Any], config: Any, dataset: dict[str, Any]
) -> list[str]:
    total = int(np.sum(metrics["confusion_matrix"]))
    correct = int(np.trace(np.asarray(metrics["confusion_matrix"])))
    rows = [
        "| | |",
        "| --- | --- |",
        f"| test accuracy | {metrics['test_accuracy']:.2%} ({correct:,} of {total:,}) |",
        f"| test loss | {metrics['test_loss']:.4f} |",
        f"| dataset | {dataset['name'] or 'unknown IDX data'} |",
        f"| recipe | {config.recipe}: {config.epochs} epoch(s), batch {config.batch_size}, "
        f"Adam learning rate {config.learning_rate:g}, seed {config.seed} |",
    ]
    if "train_images" in trained:
        rows.append(f"| training images | {trained['train_images']:,} |")
    if "train_seconds" in trained:
        speed = trained.get("images_per_second")
        rows.append(
            f"| training time | {trained['train_seconds']:.0f} s"
            + (f" ({speed:,.0f} images/s) |" if speed else " |")
        )
    worst = int(np.argmin(metrics["per_class_accuracy"]))
    names = dataset["class_names"]
    kind = "digit" if tuple(names) == DIGITS else "class"
    rows.append(
        f"| weakest {kind} | {names[worst]} ({metrics['per_class_accuracy'][worst]:.2%} correct) |"
    )
    return rows
