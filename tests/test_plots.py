"""Tests for mnist_cnn.plots and the report written by `mnist-cnn report` and `train`."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_cnn import plots
from mnist_cnn.cli import main
from mnist_cnn.run import read_run

FIGURES = ("training_curves.png", "confusion_matrix.png", "per_class_accuracy.png")
FIGURES += ("misclassified.png",)


def _check_png(path: Path) -> tuple[int, int]:
    """A whole PNG of a figure's size with something drawn on it; returns (width, height)."""
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert image.format == "PNG", (path.name, image.format)
    image.load()  # decodes every pixel: a truncated file fails here
    width, height = image.size
    assert 400 <= width <= 2500 and 200 <= height <= 2000, (path.name, image.size)
    assert np.asarray(image.convert("L")).std() > 5  # something drawn, not a blank canvas
    return image.size


def test_report_command_writes_figures_and_markdown(tmp_path, tiny_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # tiny_run is shared: keep its directory as train left it
    assert main(["report", str(run)]) == 0
    report = run / "report" / "report.md"
    assert str(report) in capsys.readouterr().out
    text = report.read_text()
    for name in FIGURES:
        _check_png(run / "report" / name)
        assert f"]({name})" in text  # relative link, so the folder can be moved or published
    # Evaluated on the run's own test split (200 images), as train was: the same accuracy, up
    # to one image that Keras (train) and ONNX Runtime (report) could round apart.
    found = re.search(r"\| test accuracy \| ([0-9.]+)% \((\d+) of (\d+)\) \|", text)
    assert found, text
    percent, correct, total = float(found[1]), int(found[2]), int(found[3])
    assert total == 200 and percent == pytest.approx(100 * correct / total, abs=0.005)
    trained = read_run(run).metrics()
    assert abs(correct / total - trained["test_accuracy"]) <= 1 / total
    assert re.search(r"\| test loss \| [0-9]+\.[0-9]{4} \|", text), text
    assert not [p for p in (run / "report").iterdir() if p.name.startswith(".")]  # no temp files


def test_report_on_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 1
    assert capsys.readouterr().err.startswith("mnist-cnn: error: ")


@pytest.mark.parametrize("flags", [[], ["--no-report"]])
def test_train_writes_report_unless_no_report(tmp_path, tiny_data_dir, flags):
    output = tmp_path / "run"
    argv = ["train", "--output", str(output), "--data-dir", str(tiny_data_dir), "--limit", "64"]
    assert main(argv + flags) == 0
    assert (output / "report" / "report.md").is_file() == (not flags)


def test_report_failure_after_training_is_a_warning(tmp_path, capsys):
    """The step train runs after saving: a failing report must not fail (or lose) the run."""
    from mnist_cnn.cli_train import _report_after_training

    run = tmp_path / "run-without-model"
    run.mkdir()
    _report_after_training(str(run))
    err = capsys.readouterr().err
    assert err.startswith("mnist-cnn: warning: report not written")
    assert f"mnist-cnn report {run}" in err


def test_figures_from_edge_cases(tmp_path):
    """No training log, a perfect model, a single epoch without batch rows: still drawn."""
    confusion = np.diag([5] * 10)
    probabilities = np.eye(10)[np.arange(10)]
    images = np.zeros((10, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255
    figures = {
        "curves.png": plots.training_curves_figure([], []),
        "epochs.png": plots.training_curves_figure(
            [], [{"epoch": 1, "loss": 0.2, "accuracy": 0.9}]
        ),
        "confusion.png": plots.confusion_matrix_figure(confusion),
        "perfect.png": plots.per_class_accuracy_figure([1.0] * 10, 1.0),
        "gallery.png": plots.misclassified_figure(images, np.arange(10), probabilities),
    }
    for name, figure in figures.items():
        plots.save_png(figure, tmp_path / name)
        _check_png(tmp_path / name)
