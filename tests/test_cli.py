import json
import re

import numpy as np
import pytest

from mnist_cnn.cli import main
from mnist_cnn.data import PACKAGED_DIR
from mnist_cnn.run import read_run

SUBCOMMANDS = ("train", "evaluate", "predict", "serve", "report", "export")


def printed_metrics(out: str) -> dict[str, float]:
    """{"test_loss": ..., "test_accuracy": ...} from the "test loss: 0.1234" lines."""
    found = dict(re.findall(r"^test (loss|accuracy): ([0-9.]+)$", out, re.MULTILINE))
    return {f"test_{name}": float(value) for name, value in found.items()}


def test_help_and_usage_errors(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^ +{name} ", out, re.MULTILINE) for name in SUBCOMMANDS), out
    assert main(["train"]) == 2  # --output missing
    assert "--output" in capsys.readouterr().err
    assert main(["train", "--output", "x", "--epochs", "0"]) == 2
    assert "--epochs" in capsys.readouterr().err


def test_train_prints_loss_and_accuracy(tmp_path, tiny_data_dir, capsys):
    output = tmp_path / "run"
    code = main(
        [
            "train",
            "--output",
            str(output),
            "--data-dir",
            str(tiny_data_dir),
            "--limit",
            "64",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    printed = printed_metrics(capsys.readouterr().out)
    saved = read_run(output).metrics()
    assert set(printed) == {"test_loss", "test_accuracy"}
    for name, value in printed.items():  # what it prints is what it saved, to 4 places
        assert value == pytest.approx(saved[name], abs=5e-5), name
    assert saved["train_images"] == 64 and saved["seed"] == 1  # the flags reached training
    assert (output / "model.keras").is_file()


def test_truncated_file_is_one_line_error(tmp_path, tiny_data_dir, capsys):
    path = tiny_data_dir / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    output = tmp_path / "run"
    assert main(["train", "--output", str(output), "--data-dir", str(tiny_data_dir)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("mnist-cnn: error: ") and "t10k-labels-idx1-ubyte.gz" in err
    assert not output.exists()


def test_evaluate_json_on_full_test_set(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--json", "--data-dir", str(PACKAGED_DIR)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"test_loss", "test_accuracy", "per_class_accuracy", "confusion_matrix"}
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 10_000
    # MNIST's test set holds 980 zeros, 1135 ones, ... (the rows are the true digits)
    expected_counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert confusion.sum(axis=1).tolist() == expected_counts
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion) / 10_000)
    per_class = np.diag(confusion) / confusion.sum(axis=1)
    np.testing.assert_allclose(metrics["per_class_accuracy"], per_class)


def test_evaluate_text_report_agrees_with_json(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    printed = printed_metrics(out)
    assert set(printed) == {"test_loss", "test_accuracy"}
    for name, value in printed.items():
        assert value == pytest.approx(metrics[name], abs=5e-5), name
    assert "confusion matrix" in out


@pytest.mark.parametrize(
    "damage", ["missing_dir", "missing_models", "corrupt_onnx", "corrupt_keras_only", "bad_config"]
)
def test_evaluate_broken_run_is_a_clear_error(tmp_path, tiny_run, capsys, damage):
    import shutil

    run = tmp_path / "run"
    if damage != "missing_dir":
        shutil.copytree(tiny_run, run)
    if damage == "missing_models":
        (run / "model.keras").unlink()
        (run / "model.onnx").unlink()
    elif damage == "corrupt_onnx":  # refused by its recorded SHA-256
        (run / "model.onnx").write_bytes(b"\x08\x07 not really ONNX")
    elif damage == "corrupt_keras_only":  # without model.onnx, Keras must load model.keras
        (run / "model.onnx").unlink()
        (run / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "bad_config":
        (run / "config.json").write_text("[]")
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    # a run without model.onnx may first warn that it loads through Keras; then one error line
    assert err.splitlines()[-1].startswith("mnist-cnn: error: ") and "Traceback" not in err
    assert str(run) in err
