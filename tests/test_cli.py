import json

import pytest

from mnist_cnn.cli import main
from mnist_cnn.data import PACKAGED_DIR


def test_help_and_usage_errors(capsys):
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["train"]) == 2  # --output missing
    assert main(["train", "--output", "x", "--epochs", "0"]) == 2


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
    out = capsys.readouterr().out
    assert "test loss: " in out and "test accuracy: " in out
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
    assert len(metrics["per_class_accuracy"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000


def test_evaluate_text_report(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "confusion matrix" in out


@pytest.mark.parametrize("damage", ["missing_dir", "missing_model", "corrupt_model", "bad_config"])
def test_evaluate_broken_run_is_a_clear_error(tmp_path, tiny_run, capsys, damage):
    import shutil

    run = tmp_path / "run"
    if damage != "missing_dir":
        shutil.copytree(tiny_run, run)
    if damage == "missing_model":
        (run / "model.keras").unlink()
    elif damage == "corrupt_model":
        (run / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "bad_config":
        (run / "config.json").write_text("[]")
    assert main(["evaluate", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist-cnn: error: ") and "Traceback" not in err
    assert str(run) in err
