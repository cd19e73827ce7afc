import gzip
import shutil

import numpy as np
import pytest

from mnist_cnn.data import (
    MNIST_SHA256,
    PACKAGED_DIR,
    DataError,
    load_mnist,
    one_hot,
    to_model_input,
)
from tests.conftest import write_idx_dir


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
