"""image_folder.py: a folder per digit -> a dataset prepared as predict prepares pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_cnn.image_folder import ImageFolderError, load_image_folder
from mnist_cnn.preprocess import preprocess


def _write_digit(path, image: np.ndarray) -> None:
    """An MNIST digit as a photo-like picture: dark ink on white, 4x larger."""
    Image.fromarray(255 - image).resize((112, 112)).save(path)


@pytest.fixture
def folder(tmp_path, mnist):
    root = tmp_path / "mine"
    for digit in (3, 7):
        (root / str(digit)).mkdir(parents=True)
        chosen = np.flatnonzero(mnist.test.labels == digit)[:10]
        for number, index in enumerate(chosen):
            _write_digit(root / str(digit) / f"{number}.png", mnist.test.images[index])
    (root / "7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    Image.new("L", (64, 64), 255).save(root / "7" / "blank.png")
    (root / "7" / "notes.txt").write_text("not a picture")
    (root / "extra").mkdir()  # not a digit's folder: ignored
    return root


def test_pictures_are_prepared_as_predict_does_and_split(folder):
    dataset, skipped = load_image_folder(folder)
    assert sorted(item.file.rsplit("/", 1)[-1] for item in skipped) == ["blank.png", "broken.png"]
    assert any("no digit found" in item.reason for item in skipped)
    assert len(dataset.train.images) + len(dataset.test.images) == 20
    assert len(dataset.test.images) == 4  # a fifth of each class's 10
    assert sorted(set(dataset.test.labels.tolist())) == [3, 7]
    expected = np.round(preprocess(str(folder / "3" / "0.png")) * 255).astype(np.uint8)
    found = np.concatenate([dataset.train.images, dataset.test.images])
    assert any(np.array_equal(image, expected) for image in found)


def test_the_split_does_not_depend_on_the_run(folder):
    first, _ = load_image_folder(folder)
    second, _ = load_image_folder(folder)
    assert np.array_equal(first.test.images, second.test.images)
    assert first.train.sha256 == second.train.sha256


def test_a_folder_without_digit_folders_is_a_clear_error(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(ImageFolderError, match="no class folders named 0 to 9"):
        load_image_folder(tmp_path)


def test_only_ascii_digit_names_are_class_folders(tmp_path):
    for name in ("²", "٣", "cat"):  # str.isdigit() is true of the first two
        (tmp_path / name).mkdir()
    with pytest.raises(ImageFolderError, match="no class folders named 0 to 9"):
        load_image_folder(tmp_path)


def test_too_few_pictures_is_a_clear_error(tmp_path, mnist):
    (tmp_path / "1").mkdir()
    _write_digit(tmp_path / "1" / "only.png", mnist.test.images[2])
    with pytest.raises(ImageFolderError, match="1 usable pictures"):
        load_image_folder(tmp_path)


def test_train_on_own_pictures_from_a_trained_run(folder, tiny_run, tmp_path):
    """`train --images DIR --init-from RUN`: fine-tuning starts from RUN's weights, and the
    run's test split is the pictures held out of DIR."""
    from mnist_cnn.cli import main
    from mnist_cnn.evaluate import evaluate_run
    from mnist_cnn.inference import load_keras_model
    from mnist_cnn.run import read_run

    output = tmp_path / "tuned"
    arguments = ["train", "--output", str(output), "--images", str(folder)]
    arguments += ["--init-from", str(tiny_run), "--learning-rate", "1e-7", "--no-report"]
    assert main(arguments) == 0
    run = read_run(output)
    assert run.config.images_dir == str(folder.resolve())
    assert run.config.init_from == str(tiny_run.resolve())
    assert run.metrics()["train_images"] == 16  # 20 usable pictures, 4 held out
    start = load_keras_model(read_run(tiny_run)).get_weights()
    tuned = load_keras_model(run).get_weights()
    # A learning rate of 1e-7 barely moves the weights: they are the base run's, not random.
    assert max(float(np.abs(a - b).max()) for a, b in zip(start, tuned, strict=True)) < 1e-4
    # evaluate measures the run on the 4 pictures held out of the folder, not on MNIST.
    assert sum(map(sum, evaluate_run(output)["confusion_matrix"])) == 4


def test_init_from_another_layout_is_a_clear_error(folder, tiny_run, tmp_path, capsys):
    from mnist_cnn.cli import main

    arguments = ["train", "--output", str(tmp_path / "o"), "--images", str(folder)]
    arguments += ["--init-from", str(tiny_run), "--data-format", "channels_first"]
    assert main(arguments) == 1
    assert "pass --data-format channels_last" in capsys.readouterr().err
