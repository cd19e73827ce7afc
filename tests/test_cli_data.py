"""`mnist-cnn datasets`, `mnist-cnn download` and train's --dataset/--cache-dir/--mirror,
in-process through cli.main; the network is a file:// mirror of a copy on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_cnn import download
from mnist_cnn.cli import main
from mnist_cnn.dataset_registry import DATASETS
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.run import read_run

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
needs_fashion = pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent"
)
SUBSET_IMAGES = 2000  # enough Fashion images for one epoch to learn well above chance
CHANCE = 1 / 10  # ten balanced classes
# Test accuracy of the tutorial recipe on those 2,000 images, seeds 0-4: 0.7179, 0.6958,
# 0.6699, 0.6259, 0.6855 (2026-12-06); the floor sits 7 points under the lowest.
FASHION_FLOOR = 0.55


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, tmp_path):
    """No test reads or writes the user's cache, nor follows a mirror set outside."""
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)


def test_datasets_lists_the_six_and_what_is_on_disk(capsys):
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == list(DATASETS)
    on_disk = {row["name"]: row["on_disk"] for row in rows}
    assert on_disk == {name: name == "mnist" for name in DATASETS}  # packaged, nothing cached
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in DATASETS) and "packaged" in text


@needs_fashion
def test_download_through_a_file_mirror_then_listed_as_cached(tmp_path, capsys):
    code = main(["download", "fashion-mnist", "--mirror", DEBIAN_FASHION.as_uri()])
    assert code == 0
    assert f"verified, in {tmp_path / 'cache' / 'fashion-mnist'}" in capsys.readouterr().out
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["fashion-mnist"]["cached"] and not rows["kmnist"]["cached"]


def test_download_offline_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(download, "BACKOFF_SECONDS", 0.0)
    missing = (tmp_path / "nowhere").as_uri()
    assert main(["download", "kmnist", "--mirror", missing]) == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: could not be downloaded" in err
    assert f"{missing}/train-images-idx3-ubyte.gz" in err and "--data-dir" in err


def test_train_refuses_dataset_and_data_dir_together(tmp_path, tiny_data_dir, capsys):
    arguments = ["train", "-o", str(tmp_path / "run"), "--data-dir", str(tiny_data_dir)]
    assert main([*arguments, "--dataset", "kmnist"]) == 1
    assert "--dataset and --data-dir" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _train_fashion(output: Path, *source: str) -> None:
    arguments = ["train", "-o", str(output), "--limit", str(SUBSET_IMAGES), "--no-report"]
    assert main([*arguments, *source]) == 0


@pytest.mark.slow
@needs_fashion
@pytest.mark.parametrize(
    "source",
    [
        ("--data-dir", str(DEBIAN_FASHION)),
        ("--dataset", "fashion-mnist", "--mirror", DEBIAN_FASHION.as_uri()),
    ],
    ids=["data-dir", "registry"],
)
def test_fashion_mnist_trains_and_the_run_knows_its_classes(tmp_path, capsys, source):
    """The tutorial recipe on a Fashion subset, through --data-dir and through the registry."""
    _train_fashion(tmp_path / "run", *source)
    run = read_run(tmp_path / "run")
    assert run.dataset["name"] == "fashion-mnist" and run.class_names[0] == "T-shirt/top"
    metrics = evaluate_run(tmp_path / "run")
    assert metrics["test_accuracy"] >= FASHION_FLOOR > 5 * CHANCE  # learnt Fashion's labels
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    assert "Ankle boot:" in capsys.readouterr().out
