"""The registry's facts: six datasets, well-formed pins, HTTPS URLs, and the pinned hashes
checked against the copies this machine holds (packaged MNIST, Debian's Fashion-MNIST)."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
from pathlib import Path

import pytest

from mnist_cnn.data import PACKAGED_DIR
from mnist_cnn.dataset_registry import (
    DATASETS,
    DIGITS,
    UnknownDatasetError,
    find_by_file_names,
    find_by_hash,
    get_dataset,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# The gzip header times of the files Zalando published (what the tensorflow-datasets pins
# hash); Debian's copies carry the 2020 time of their repackaging and no file name instead.
FASHION_GZIP_TIMES = {"train": 1504176606, "t10k": 1504176627}  # 2017-08-31 10:50:06/27 UTC
GZIP_FNAME_FLAG = 0x08  # FLG bit 3: an original file name follows the 10-byte header


def test_the_six_datasets_are_registered():
    assert list(DATASETS) == [
        "mnist",
        "fashion-mnist",
        "kmnist",
        "emnist-digits",
        "emnist-mnist",
        "qmnist",
    ]
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'cifar10'.*fashion-mnist"):
        get_dataset("cifar10")


@pytest.mark.parametrize("info", DATASETS.values(), ids=list(DATASETS))
def test_each_entry_is_complete_and_fetched_over_https(info):
    assert len(info.class_names) == len(DIGITS) == len(set(info.class_names))
    assert info.base_urls and all(url.startswith("https://") for url in info.base_urls)
    assert all(url.endswith("/") for url in info.base_urls)
    assert info.licence and info.hash_source and info.homepage.startswith("https://")
    for item in info.remote_files:
        assert SHA256_PATTERN.fullmatch(item.sha256) and item.size > 0
        assert item.raw_sha256 is None or SHA256_PATTERN.fullmatch(item.raw_sha256)
    if info.archive is None:  # every IDX file is published on its own, with its own pin
        assert {item.stem for item in info.remote_files} == set(info.stems)
    else:
        assert set(info.archive_members) == set(info.stems)


def test_class_names_of_the_non_digit_datasets():
    assert get_dataset("fashion-mnist").class_names[0] == "T-shirt/top"
    assert get_dataset("fashion-mnist").class_names[9] == "Ankle boot"
    assert get_dataset("kmnist").class_names[0].startswith("\u304a")  # hiragana "o"
    assert not get_dataset("kmnist").digits() and get_dataset("qmnist").digits()
    assert get_dataset("emnist-digits").transposed and not get_dataset("mnist").transposed


def test_no_hash_belongs_to_two_files():
    pins = [
        digest
        for info in DATASETS.values()
        if info.archive is None
        for item in info.remote_files
        for digest in (item.sha256, item.raw_sha256)
        if digest
    ]
    assert len(pins) == len(set(pins))


def test_the_packaged_mnist_matches_its_pinned_raw_hashes():
    for item in get_dataset("mnist").remote_files:
        content = gzip.decompress((PACKAGED_DIR / item.name).read_bytes())
        assert hashlib.sha256(content).hexdigest() == item.raw_sha256
        assert [info.name for info, _ in find_by_hash(item.raw_sha256)] == ["mnist"]


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_debian_fashion_mnist_is_the_published_data():
    """With the gzip header's name and time put back, Debian's files are the pinned downloads,
    byte for byte: so their decompressed hashes (raw_sha256) pin the published data."""
    for item in get_dataset("fashion-mnist").remote_files:
        debian = (DEBIAN_FASHION / item.name).read_bytes()
        assert debian[3] & GZIP_FNAME_FLAG == 0  # Debian dropped the file name
        header_time = FASHION_GZIP_TIMES[item.name.split("-")[0]]
        restored = (
            debian[:3]
            + bytes([debian[3] | GZIP_FNAME_FLAG])
            + struct.pack("<I", header_time)
            + debian[8:10]
            + item.stem.encode()
            + b"\0"
            + debian[10:]
        )
        assert len(restored) == item.size
        assert hashlib.sha256(restored).hexdigest() == item.sha256
        assert hashlib.sha256(gzip.decompress(debian)).hexdigest() == item.raw_sha256


def test_datasets_with_their_own_file_names_are_found_by_them():
    qmnist = get_dataset("qmnist")
    assert find_by_file_names(set(qmnist.stems) | {"README"}) is qmnist
    assert find_by_file_names(set(get_dataset("mnist").stems)) is None  # shared names: no claim
