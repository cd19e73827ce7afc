"""Figures of a trained run as matplotlib Figures, and `save_png` (report.py writes the report).

Figures are drawn with matplotlib's object API (`Figure`, rendered by the non-interactive Agg
canvas), never pyplot: no GUI backend, no global figure state, nothing changed for a caller
that uses matplotlib itself.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from mnist_cnn import files
from mnist_cnn.dataset_registry import DIGITS

DPI = 100  # figure sizes below are in inches: pixels = inches * DPI
GALLERY_COUNT = 24  # misclassified digits shown, most confident first
GALLERY_COLUMNS = 8


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


def _named(class_names: Sequence[str] | None) -> tuple[str, list[str] | None]:
    """("digit", None) for digit data, else ("class", the names) for tick labels and titles."""
    if class_names is None or tuple(class_names) == DIGITS:
        return "digit", None
    return "class", list(class_names)


def confusion_matrix_figure(
    confusion: np.ndarray, class_names: Sequence[str] | None = None
) -> Figure:
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
    kind, names = _named(class_names)
    if names:
        axis.set_xticks(ticks, names, rotation=45, ha="right")
        axis.set_yticks(ticks, names)
    else:
        axis.set_xticks(ticks)
        axis.set_yticks(ticks)
    axis.set_xlabel(f"predicted {kind}")
    axis.set_ylabel(f"true {kind}")
    total, correct = int(confusion.sum()), int(np.trace(confusion))
    axis.set_title(f"Confusion matrix: {total - correct} errors in {total:,} test images")
    return figure


def per_class_accuracy_figure(
    per_class: list[float], overall: float, class_names: Sequence[str] | None = None
) -> Figure:
    kind, names = _named(class_names)
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
    if names:
        axis.set_xticks(range(len(values)), names, rotation=30, ha="right")
    else:
        axis.set_xticks(range(len(values)))
    axis.set_xlabel(f"true {kind}")
    axis.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axis.set_ylabel(f"correct (axis starts at {bottom:.0%})" if bottom else "correct")
    axis.set_title(f"Test accuracy per {kind} (dashed line: all {kind}s, {overall:.2%})")
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
