import json
import re

import numpy as np
import pytest

from mnist_cnn.cli import main
from mnist_cnn.cli_predict import _result_line
from mnist_cnn.data import PACKAGED_DIR
from mnist_cnn.run import CONFIG_FILE, read_run

SUBCOMMANDS = (
    "train",
    "evaluate",
    "predict",
    "serve",
    "report",
    "export",
    "calibrate",
    "ensemble",
)


def printed_metrics(out: str) -> dict[str, float]:
    """{"test_loss": ..., "test_accuracy": ...} from the "test loss: 0.1234" lines."""
    found = dict(re.findall(r"^test (loss|accuracy): ([0-9.]+)$", out, re.MULTILINE))
    return {f"test_{name}": float(value) for name, value in found.items()}


def test_help_and_usage_errors(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    # a long name gets its help on the next line: the name then ends its line
    assert all(re.search(rf"^ +{name}( |$)", out, re.MULTILINE) for name in SUBCOMMANDS), out
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


def test_low_resolution_needs_the_capture_augmentation(tmp_path, capsys):
    assert main(["train", "--output", str(tmp_path / "run"), "--low-resolution", "0.2"]) == 1
    assert "low_resolution must be in [0, 1] and needs capture" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_resume_takes_no_training_flags_and_needs_a_started_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 1
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--batch-size", "8"]) == 1
    assert "drop --batch-size" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 1  # nothing was started there
    assert "not a run started by 'mnist-cnn train'" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path), "--output", str(tmp_path)]) == 2
    assert "not allowed with" in capsys.readouterr().err


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
    assert set(metrics) == {
        "test_loss",
        "test_accuracy",
        "per_class_accuracy",
        "confusion_matrix",
        "class_names",
        "dataset",
    }
    assert metrics["class_names"] == [str(digit) for digit in range(10)]
    assert metrics["dataset"] is None  # the tiny run's data is a subset no registry hash names
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


PROBABILITIES = [0.01, 0.02, 0.03, 0.05, 0.02, 0.01, 0.3, 0.4123, 0.1277, 0.02]


def test_result_line_of_a_digit():
    result = {"file": "photo.jpg", "digit": 7, "confidence": 0.99312, "probabilities": []}
    assert _result_line(result) == "photo.jpg: 7 (0.9931)"
    result["top"] = [[7, 0.99312], [1, 0.004], [2, 0.0012]]
    assert _result_line(result) == "photo.jpg: 7 (0.9931)  1 (0.0040)  2 (0.0012)"


def test_result_line_when_the_model_is_not_sure():
    reason = "not sure: the picture does not look like a digit"
    result = {
        "file": "photo.jpg",
        "digit": None,
        "reason": reason,
        "confidence": 0.4123,
        "probabilities": PROBABILITIES,
    }
    assert _result_line(result) == f"photo.jpg: no answer (0.4123): {reason}"
    result["top"] = [[7, 0.4123], [6, 0.3], [8, 0.1277]]
    assert _result_line(result) == (
        f"photo.jpg: no answer (0.4123): {reason}; most likely 7 (0.4123)  6 (0.3000)  8 (0.1277)"
    )
    del result["reason"]  # a None digit without a reason still reads as an answer, not a crash
    assert _result_line(result).startswith("photo.jpg: no answer (0.4123): ")


def test_result_line_of_an_error():
    assert _result_line({"file": "a.png", "error": "zero bytes"}) == "a.png: error: zero bytes"


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_run_is_an_option_defaulting_to_the_packaged_model(command, capsys):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps help text at any width
    assert "--run DIR run directory written by 'train' (default: the model packaged" in out
    assert "trained by --recipe robust)" in out
    if command == "predict":
        assert main(["predict"]) == 2  # IMAGE is still required
        assert "IMAGE" in capsys.readouterr().err


def test_predict_with_a_run_directory_as_image_says_use_run(tmp_path, capsys):
    """The older `predict DIR IMAGE...` form: refused with the new spelling, nothing loaded."""
    run = tmp_path / "runs" / "tutorial"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text("{}")  # not even a loadable run: refused before loading
    image = tmp_path / "photo.png"
    image.write_bytes(b"")
    assert main(["predict", str(run), str(image)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"mnist-cnn: error: {run} is a run directory, not images; pass it as --run {run}\n"
    )


def test_an_infinite_learning_rate_is_a_usage_error(capsys):
    assert main(["train", "--learning-rate", "inf", "--output", "never"]) == 2
    assert "expected a positive finite number, got inf" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["99999", "-5", "http"])
def test_a_port_outside_tcp_is_a_usage_error(port, capsys):
    assert main(["serve", "--port", port]) == 2
    assert "argument --port: expected a port" in capsys.readouterr().err
