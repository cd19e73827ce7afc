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


def test_too_few_pictures_is_a_clear_error(tmp_path, mnist):
    (tmp_path / "1").mkdir()
    _write_digit(tmp_path / "1" / "only.png", mnist.test.images[2])
    with pytest.raises(ImageFolderError, match="1 usable pictures"):
        load_image_folder(tmp_path)
