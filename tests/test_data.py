import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.data import (
    DIGITS,
    IMAGES_MAGIC,
    MNIST_SHA256,
    PACKAGED_DIR,
    DataError,
    load_idx_dataset,
    load_mnist,
    one_hot,
    to_model_input,
)
from mnist_cnn.dataset_registry import get_dataset
from mnist_cnn.idx import INT_LABELS_MAGIC
from tests.conftest import idx_bytes, write_idx_dir

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def test_packaged_mnist_is_the_canonical_data(mnist):
    assert mnist.train.images.shape == (60_000, 28, 28)
    assert mnist.test.images.shape == (10_000, 28, 28)
    assert mnist.train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    assert mnist.sha256 == MNIST_SHA256


def test_raw_and_gzipped_directories_load_the_same(tmp_path, tiny_splits):
    gz = load_mnist(write_idx_dir(tmp_path / "gz", tiny_splits, compress=True))
    raw = load_mnist(write_idx_dir(tmp_path / "raw", tiny_splits, compress=False))
    np.testing.assert_array_equal(gz.train.images, raw.train.images)
    np.testing.assert_array_equal(gz.test.labels, tiny_splits["test"][1])


def test_model_input_scaling_and_layouts():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    last = to_model_input(images, "channels_last")
    first = to_model_input(images, "channels_first")
    assert last.shape == (1, 2, 2, 1) and first.shape == (1, 1, 2, 2)
    assert last.dtype == np.float32
    assert last.min() == 0.0 and last.max() == 1.0
    assert one_hot(np.array([3])).tolist() == [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]


def _replace(directory, name, data):
    for path in directory.glob(f"{name}*"):
        path.unlink()
    (directory / name).write_bytes(data)


def _raw(directory, name):
    return gzip.decompress((directory / f"{name}.gz").read_bytes())


def test_missing_file_is_named(tiny_data_dir):
    (tiny_data_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.*missing"):
        load_mnist(tiny_data_dir)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        load_mnist(tmp_path / "nope")


def test_wrong_magic_number(tiny_data_dir):
    data = bytearray(_raw(tiny_data_dir, "train-images-idx3-ubyte"))
    data[3] = 0x01
    _replace(tiny_data_dir, "train-images-idx3-ubyte", bytes(data))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: wrong magic number.*0x00000803"):
        load_mnist(tiny_data_dir)


def test_truncated_data(tiny_data_dir):
    data = _raw(tiny_data_dir, "train-images-idx3-ubyte")
    _replace(tiny_data_dir, "train-images-idx3-ubyte", data[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated data.*expected"):
        load_mnist(tiny_data_dir)


def test_truncated_gzip(tiny_data_dir):
    path = tiny_data_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_mnist(tiny_data_dir)


def test_trailing_bytes(tiny_data_dir):
    data = _raw(tiny_data_dir, "train-labels-idx1-ubyte")
    _replace(tiny_data_dir, "train-labels-idx1-ubyte", data + b"\0")
    with pytest.raises(DataError, match="trailing bytes"):
        load_mnist(tiny_data_dir)


def test_count_mismatch(tmp_path, tiny_splits):
    images, labels = tiny_splits["train"]
    splits = {**tiny_splits, "train": (images, labels[:-1])}
    with pytest.raises(DataError, match=r"expected 512 labels, found 511"):
        load_mnist(write_idx_dir(tmp_path / "d", splits))


def test_label_out_of_range(tmp_path, tiny_splits):
    images, labels = tiny_splits["test"]
    labels = labels.copy()
    labels[7] = 10
    splits = {**tiny_splits, "test": (images, labels)}
    with pytest.raises(DataError, match=r"label outside 0-9.*found 10 at index 7"):
        load_mnist(write_idx_dir(tmp_path / "d", splits))


def test_corrupted_mnist_fails_the_pinned_hash(tmp_path):
    directory = tmp_path / "corrupt"
    shutil.copytree(PACKAGED_DIR, directory)
    data = bytearray(_raw(directory, "t10k-images-idx3-ubyte"))
    data[5000] ^= 0xFF  # one flipped pixel: structurally fine, but not MNIST any more
    _replace(directory, "t10k-images-idx3-ubyte", bytes(data))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte: SHA-256 mismatch.*expected 0fa7"):
        load_mnist(directory)


def test_unknown_idx_data_is_checked_structurally_and_named_by_nobody(tiny_data_dir):
    dataset = load_mnist(tiny_data_dir)
    assert dataset.name is None and dataset.identified_by == "none"
    assert dataset.class_names == DIGITS
    assert dataset.identity == {"name": None, "class_names": list(DIGITS), "identified_by": "none"}


def test_the_packaged_mnist_is_identified_by_hash(mnist):
    assert mnist.name == "mnist" and mnist.identified_by == "sha256"


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_fashion_mnist_with_mnist_counts_is_fashion_not_corrupt_mnist():
    """The issue's bug: 60,000 + 10,000 images used to be taken for MNIST and fail its hashes."""
    dataset = load_mnist(DEBIAN_FASHION)
    assert dataset.name == "fashion-mnist" and dataset.identified_by == "sha256"
    assert dataset.class_names[0] == "T-shirt/top"
    assert dataset.train.images.shape == (60_000, 28, 28)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_a_known_dataset_must_match_all_its_hashes(tmp_path):
    directory = tmp_path / "fashion"
    shutil.copytree(DEBIAN_FASHION, directory)
    data = bytearray(_raw(directory, "train-labels-idx1-ubyte"))
    data[100] = (data[100] + 1) % 10  # one label changed: still valid IDX
    _replace(directory, "train-labels-idx1-ubyte", bytes(data))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: SHA-256 mismatch.*fashion"):
        load_mnist(directory)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_files_of_two_datasets_are_refused(tmp_path):
    directory = tmp_path / "mixed"
    shutil.copytree(PACKAGED_DIR, directory)
    shutil.copy(DEBIAN_FASHION / "t10k-labels-idx1-ubyte.gz", directory)
    with pytest.raises(DataError, match=r"files of different datasets.*fashion-mnist, mnist"):
        load_mnist(directory)


def test_expected_dataset_refuses_other_data(tiny_data_dir):
    with pytest.raises(DataError, match=r"not the kmnist files.*no registry hash matches"):
        load_idx_dataset(tiny_data_dir, expected="kmnist")


def test_qmnist_int32_labels_use_their_class_field(tmp_path, tiny_splits):
    """QMNIST's labels are IDX int32 rows (class, writer, ...); its own file names say so."""
    directory = tmp_path / "qmnist"
    directory.mkdir()
    for split, (image_stem, label_stem) in get_dataset("qmnist").split_files.items():
        images, labels = tiny_splits[split]
        (directory / image_stem).write_bytes(idx_bytes(images, IMAGES_MAGIC))
        rows = np.zeros((len(labels), 8), dtype=">i4")
        rows[:, 0], rows[:, 1] = labels, 1234  # class, then a NIST writer id
        header = INT_LABELS_MAGIC.to_bytes(4, "big") + b"".join(
            n.to_bytes(4, "big") for n in rows.shape
        )
        (directory / label_stem).write_bytes(header + rows.tobytes())
    dataset = load_mnist(directory)
    assert dataset.name == "qmnist" and dataset.identified_by == "file names"
    np.testing.assert_array_equal(dataset.test.labels, tiny_splits["test"][1])
    assert dataset.test.labels.dtype == np.uint8
