"""Figures of a trained run as PNG files, and `report.md` embedding them: `write_report(run_dir)`.

Figures are drawn with matplotlib's object API (`Figure`, rendered by the non-interactive Agg
canvas), never pyplot: no GUI backend, no global figure state, nothing changed for a caller
that uses matplotlib itself.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from mnist_cnn import files
from mnist_cnn.data import load_mnist
from mnist_cnn.evaluate import metrics_from_probabilities

REPORT_DIR = "report"
DPI = 100  # figure sizes below are in inches: pixels = inches * DPI
GALLERY_COUNT = 24  # misclassified digits shown, most confident first
GALLERY_COLUMNS = 8
PREDICT_BATCH = 1000  # test images per model call: bounds memory, not results


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a numeric CSV (batches.csv, history.csv); [] when the file is absent or empty."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return []
    return [{key: float(value) for key, value in row.items()} for row in rows]


def _new_figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(**subplots)


def training_curves_figure(
    batches: list[dict[str, float]],
    epochs: list[dict[str, float]],
    steps_per_epoch: int | None = None,
    test: dict[str, float] | None = None,
) -> Figure:
    """Loss and accuracy against the gradient step: logged batches, epoch ends, the test set."""
    figure, axes = _new_figure(11, 4.2, ncols=2)
    last_step = max((row["step"] for row in batches), default=0.0)
    for axis, key, title in ((axes[0], "loss", "Loss"), (axes[1], "accuracy", "Accuracy")):
        if batches:
            axis.plot(
                [row["step"] for row in batches],
                [row[key] for row in batches],
                color="tab:blue",
                linewidth=1.5,
                label="training, running mean within the epoch",
            )
        if epochs:
            # An epoch's figure is its mean over all its batches, placed at the epoch's last step.
            if steps_per_epoch:
                ends = [row["epoch"] * steps_per_epoch for row in epochs]
            else:
                ends = [
                    max((b["step"] for b in batches if b["epoch"] == row["epoch"]), default=0.0)
                    for row in epochs
                ]
            axis.plot(
                ends,
                [row[key] for row in epochs],
                "o",
                color="tab:orange",
                markersize=7,
                label="training, epoch mean",
            )
            last_step = max(last_step, *ends)
        if test and f"test_{key}" in test:
            axis.plot(
                [last_step],
                [test[f"test_{key}"]],
                "*",
                color="tab:green",
                markersize=13,
                label="test set, after training",
            )
        axis.set_title(title)
        axis.set_xlabel("gradient step (batch)")
        axis.grid(alpha=0.3)
        if batches or epochs:
            axis.legend(loc="best", fontsize=9)
    axes[0].set_ylabel("categorical cross-entropy")
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylabel("correct")
    axes[1].yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes[1].set_ylim(top=1.0)
    if not (batches or epochs):
        for axis in axes:
            axis.text(
                0.5, 0.5, "no training log in this run", ha="center", transform=axis.transAxes
            )
    return figure


def confusion_matrix_figure(confusion: np.ndarray) -> Figure:
    """Counts in every cell; colour on a log scale so the few errors show beside the diagonal."""
    confusion = np.asarray(confusion)
    figure, axis = _new_figure(7, 6.2)
    image = axis.imshow(
        np.ma.masked_equal(confusion, 0),
        cmap="Blues",
        norm=LogNorm(vmin=1, vmax=max(int(confusion.max()), 2)),
    )
    figure.colorbar(image, ax=axis, shrink=0.8, label="images (log scale)")
    threshold = math.sqrt(max(int(confusion.max()), 1))  # dark cells, in log terms, get white text
    for true in range(confusion.shape[0]):
        for predicted in range(confusion.shape[1]):
            count = int(confusion[true, predicted])
            if count:
                axis.text(
                    predicted,
                    true,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    fontweight="bold" if true == predicted else "normal",
                    color="white" if count > threshold else "black",
                )
    ticks = range(confusion.shape[0])
    axis.set_xticks(ticks)
    axis.set_yticks(ticks)
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    total, correct = int(confusion.sum()), int(np.trace(confusion))
    axis.set_title(f"Confusion matrix: {total - correct} errors in {total:,} test images")
    return figure


def per_class_accuracy_figure(per_class: list[float], overall: float) -> Figure:
    figure, axis = _new_figure(8, 4.2)
    values = np.asarray(per_class, dtype=float)
    # Start the axis below the worst class so differences of a fraction of a percent show; the
    # printed values and the axis label keep the truncation honest.
    margin = max(0.5 * (1 - values.min()), 0.02)
    bottom = max(0.0, math.floor((values.min() - margin) * 50) / 50)
    bars = axis.bar(range(len(values)), values - bottom, bottom=bottom, color="tab:blue")
    axis.bar_label(bars, labels=[f"{value:.1%}" for value in values], fontsize=8, padding=2)
    axis.axhline(overall, color="tab:orange", linestyle="--")
    axis.set_ylim(bottom, 1.0 + 0.08 * (1.0 - bottom))
    axis.set_xticks(range(len(values)))
    axis.set_xlabel("true digit")
    axis.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axis.set_ylabel(f"correct (axis starts at {bottom:.0%})" if bottom else "correct")
    axis.set_title(f"Test accuracy per digit (dashed line: all digits, {overall:.2%})")
    axis.grid(axis="y", alpha=0.3)
    return figure


def misclassified_figure(
    images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, count: int = GALLERY_COUNT
) -> Figure:
    """The `count` test digits the model got wrong with the highest confidence."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    shown = wrong[np.argsort(-confidence[wrong], kind="stable")][:count]
    columns = GALLERY_COLUMNS
    rows = max(1, math.ceil(len(shown) / columns))
    figure, axes = _new_figure(1.45 * columns, 1.75 * rows + 0.5, nrows=rows, ncols=columns)
    axes = np.atleast_1d(axes).ravel()
    for axis in axes:
        axis.set_axis_off()
    for axis, index in zip(axes, shown, strict=False):
        axis.imshow(images[index], cmap="gray", vmin=0, vmax=255 if images.dtype == np.uint8 else 1)
        axis.set_title(
            f"true {labels[index]} → {predicted[index]}\n{confidence[index]:.1%}  #{index}",
            fontsize=9,
        )
    if len(shown):
        title = f"Most confident mistakes: {len(shown)} of {len(wrong)} misclassified test digits"
    else:
        title = "No misclassified test digits"
    figure.suptitle(title + "  (label: true → predicted, confidence, test index)", fontsize=11)
    return figure


def save_png(figure: Figure, target: Path) -> None:
    """Render to memory, then write atomically: a crash never leaves a half-written PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    files.write_bytes(target, buffer.getvalue())


def _test_probabilities(predictor: Any, images: np.ndarray) -> np.ndarray:
    scaled = images.astype(np.float32) / np.float32(255)
    return np.concatenate(
        [
            predictor.probabilities(scaled[start : start + PREDICT_BATCH])
            for start in range(0, len(scaled), PREDICT_BATCH)
        ]
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def write_report(run_dir: str | Path, data_dir: str | None = None) -> Path:
    """Evaluate the run on the test set and write `run_dir/report/` (PNGs + report.md).

    Returns the path of report.md. Test figures come from predicting the test set now (with
    `data_dir`'s test files if given, else the run's); the curves from the run's CSV logs.
    """
    from mnist_cnn.predict import Predictor  # loads Keras: keep it out of module import

    run_dir = Path(run_dir)
    predictor = Predictor.from_dir(run_dir)
    config = predictor.run.config
    test = load_mnist(data_dir if data_dir is not None else config.data_dir).test
    probabilities = _test_probabilities(predictor, test.images)
    metrics = metrics_from_probabilities(probabilities, test.labels)
    trained = _read_json(run_dir / "metrics.json")
    saved_config = _read_json(run_dir / "config.json")

    out = run_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    steps_per_epoch = None
    if trained.get("train_images") and trained.get("batch_size"):
        steps_per_epoch = math.ceil(trained["train_images"] / trained["batch_size"])
    figures = {
        "training_curves.png": (
            "Training curves",
            training_curves_figure(
                read_csv_rows(run_dir / "batches.csv"),
                read_csv_rows(run_dir / "history.csv"),
                steps_per_epoch,
                metrics,
            ),
        ),
        "confusion_matrix.png": (
            "Confusion matrix",
            confusion_matrix_figure(np.asarray(metrics["confusion_matrix"])),
        ),
        "per_class_accuracy.png": (
            "Accuracy per digit",
            per_class_accuracy_figure(metrics["per_class_accuracy"], metrics["test_accuracy"]),
        ),
        "misclassified.png": (
            "Most confidently misclassified test digits",
            misclassified_figure(test.images, test.labels, probabilities),
        ),
    }
    for name, (_, figure) in figures.items():
        save_png(figure, out / name)

    lines = [f"# Evaluation report: {run_dir.name}", "", *_headline(metrics, trained, config)]
    versions = saved_config.get("versions", {})
    if versions:
        listed = ", ".join(f"{name} {value}" for name, value in versions.items())
        lines.append(f"| libraries | {listed} |")
    for name, (title, _) in figures.items():
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    target = out / "report.md"
    files.write_text(target, "\n".join(lines) + "\n")
    return target


def _headline(metrics: dict[str, Any], trained: dict[str, Any], config: Any) -> list[str]:
    total = int(np.sum(metrics["confusion_matrix"]))
    correct = int(np.trace(np.asarray(metrics["confusion_matrix"])))
    rows = [
        "| | |",
        "| --- | --- |",
        f"| test accuracy | {metrics['test_accuracy']:.2%} ({correct:,} of {total:,}) |",
        f"| test loss | {metrics['test_loss']:.4f} |",
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
    rows.append(f"| weakest digit | {worst} ({metrics['per_class_accuracy'][worst]:.2%} correct) |")
    return rows
