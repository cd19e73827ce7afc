"""Verified downloads through the real code path (urllib, flock, atomic rename) against an
http.server on 127.0.0.1 that each test starts itself: good, wrong, truncated and dropped
transfers, concurrent downloads, mirrors and the cache location."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn import dataset_registry, download
from mnist_cnn.data import SPLIT_FILES, load_idx_dataset
from mnist_cnn.dataset_registry import DIGITS, STANDARD_FILES, DatasetInfo, RemoteFile
from mnist_cnn.download import ChecksumError, DownloadError, fetch_file
from tests.conftest import write_idx_dir
from tests.live_server import free_port

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SLOW_SEND_SECONDS = 0.5  # the first download holds the file this long: the second must wait


class _Server(http.server.ThreadingHTTPServer):
    """Serves `files` under /good/, wrong bytes under /bad/, a truncated body on the first
    request under /truncate/, a closed connection on the first request under /drop/, and
    slowly under /slow/; counts every request by path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with self.server.lock:
            self.server.requests[self.path] += 1
            count = self.server.requests[self.path]
        _, mode, name = self.path.split("/", 2)
        body = self.server.files.get(name)
        if body is None:
            self.send_error(404)
            return
        if mode == "drop" and count == 1:
            self.close_connection = True  # no status line at all: RemoteDisconnected
            return
        if mode == "bad":
            body = body[::-1]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncate" and count == 1:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(SLOW_SEND_SECONDS)
        self.wfile.write(body)


@contextlib.contextmanager
def _serving(files: dict[str, bytes]) -> Iterator[_Server]:
    server = _Server(files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _base(server: _Server, mode: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{mode}/"


@pytest.fixture
def published(tmp_path_factory, tiny_splits) -> dict[str, bytes]:
    """The four tiny IDX .gz files, as a publisher would serve them."""
    source = write_idx_dir(tmp_path_factory.mktemp("published"), tiny_splits)
    return {path.name: path.read_bytes() for path in source.iterdir()}


def _remote(name: str, data: bytes) -> RemoteFile:
    return RemoteFile(name, len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture
def tiny_dataset(monkeypatch, published) -> DatasetInfo:
    """The tiny files as a registry dataset."""
    remote = tuple(_remote(name, data) for name, data in sorted(published.items()))
    return _register(monkeypatch, "tiny", STANDARD_FILES, remote)


def _register(monkeypatch, name: str, split_files, remote_files, **extra) -> DatasetInfo:
    """A registry entry for data the test made, so download_dataset runs its whole path."""
    info = DatasetInfo(
        name=name,
        title=f"{name} test data",
        homepage="",
        licence="",
        class_names=DIGITS,
        split_files=split_files,
        remote_files=remote_files,
        base_urls=(),
        hash_source="computed by the test",
        **extra,
    )
    monkeypatch.setitem(dataset_registry.DATASETS, name, info)
    return info


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


def test_good_files_are_fetched_verified_and_load(tmp_path, published, tiny_dataset):
    with _serving(published) as server:
        directory = download.download_dataset("tiny", tmp_path / "cache", _base(server, "good"))
        again = download.download_dataset("tiny", tmp_path / "cache", _base(server, "good"))
    assert directory == again == tmp_path / "cache" / "tiny"
    assert _leftovers(directory) == sorted(published)  # no temporary file left behind
    for name, data in published.items():
        assert (directory / name).read_bytes() == data
        assert server.requests[f"/good/{name}"] == 1  # the second call used the cache
    assert download.is_downloaded("tiny", tmp_path / "cache")
    assert load_idx_dataset(directory).train.images.shape == (512, 28, 28)


def test_a_wrong_hash_is_refused_and_nothing_is_cached(tmp_path, published):
    name = f"{SPLIT_FILES['train'][1]}.gz"
    item = _remote(name, published[name])
    with _serving(published) as server, pytest.raises(ChecksumError) as caught:
        fetch_file(item, tmp_path, [_base(server, "bad")], backoff_seconds=0)
    message = str(caught.value)
    assert f"SHA-256 mismatch for {name}" in message and f"expected {item.sha256}" in message
    assert server.requests[f"/bad/{name}"] == 1  # other bytes are not asked for twice
    assert _leftovers(tmp_path) == []


def test_a_wrong_mirror_falls_through_to_a_good_one(tmp_path, published):
    name = f"{SPLIT_FILES['test'][0]}.gz"
    item = _remote(name, published[name])
    with _serving(published) as server:
        path = fetch_file(item, tmp_path, [_base(server, "bad"), _base(server, "good")])
    assert path.read_bytes() == published[name]


@pytest.mark.parametrize("mode", ["truncate", "drop"])
def test_a_truncated_or_dropped_transfer_is_retried(tmp_path, published, mode):
    name = f"{SPLIT_FILES['train'][0]}.gz"
    item = _remote(name, published[name])
    with _serving(published) as server:
        path = fetch_file(item, tmp_path, [_base(server, mode)], backoff_seconds=0)
    assert server.requests[f"/{mode}/{name}"] == 2  # the failed transfer, then the good one
    assert path.read_bytes() == published[name]
    assert _leftovers(tmp_path) == [name]


def test_two_concurrent_downloads_of_one_file_write_it_once(tmp_path, published):
    name = f"{SPLIT_FILES['train'][0]}.gz"
    item = _remote(name, published[name])
    results: list[Path | BaseException] = []
    with _serving(published) as server:
        base = _base(server, "slow")

        def fetch() -> None:
            try:
                results.append(fetch_file(item, tmp_path, [base]))
            except BaseException as error:  # reported by the assertion below
                results.append(error)

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [tmp_path / name] * 2  # both succeed with the one file
    assert server.requests[f"/slow/{name}"] == 1  # the lock made the second wait, then reuse
    assert _leftovers(tmp_path) == [name]
    assert (tmp_path / name).read_bytes() == published[name]


def test_offline_error_names_the_file_the_urls_and_data_dir(tmp_path, published):
    name = f"{SPLIT_FILES['test'][1]}.gz"
    closed = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    with pytest.raises(DownloadError) as caught:
        fetch_file(_remote(name, published[name]), tmp_path, [closed], backoff_seconds=0)
    message = str(caught.value)
    assert name in message and closed + name in message and "--data-dir" in message
    assert _leftovers(tmp_path) == []


def test_a_file_mirror_serves_an_air_gapped_copy(tmp_path, published, tiny_dataset):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in published.items():
        (copy / name).write_bytes(data)
    directory = download.download_dataset("tiny", tmp_path / "cache", copy.as_uri())
    assert _leftovers(directory) == sorted(published)


def test_only_https_unless_a_mirror_is_explicit(monkeypatch):
    info = dataset_registry.get_dataset("kmnist")
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    assert all(url.startswith("https://") for url in download.base_urls(info))
    assert download.base_urls(info, "http://10.0.0.1/kmnist") == ["http://10.0.0.1/kmnist/"]
    monkeypatch.setenv(download.MIRROR_ENV, "file:///srv/kmnist/")
    assert download.base_urls(info) == ["file:///srv/kmnist/"]
    with pytest.raises(DownloadError, match=r"unsupported scheme.*found 'ftp'"):
        download.base_urls(info, "ftp://example.org/")


def test_cache_dir_flag_then_environment_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(download.CACHE_ENV, raising=False)
    assert download.cache_dir() == tmp_path / "xdg" / "mnist-cnn" / "datasets"
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "env"))
    assert download.cache_dir() == tmp_path / "env"
    assert download.cache_dir(tmp_path / "flag") == tmp_path / "flag"


def test_an_archive_is_verified_then_its_members_extracted(monkeypatch, tmp_path, tiny_splits):
    """EMNIST's path: one zip, members under gzip/, images stored transposed."""
    stems = {
        split: (f"emnist-tiny-{split}-images-idx3-ubyte", f"emnist-tiny-{split}-labels-idx1-ubyte")
        for split in ("train", "test")
    }
    transposed = {
        split: (images.transpose(0, 2, 1), labels)
        for split, (images, labels) in tiny_splits.items()
    }
    standard = write_idx_dir(tmp_path / "members", transposed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for split, pair in stems.items():
            for stem, standard_stem in zip(pair, SPLIT_FILES[split], strict=True):
                bundle.writestr(f"gzip/{stem}.gz", (standard / f"{standard_stem}.gz").read_bytes())
    archive = buffer.getvalue()
    members = {stem: f"gzip/{stem}.gz" for pair in stems.values() for stem in pair}
    remote = (_remote("tiny.zip", archive),)
    _register(monkeypatch, "emnist-tiny", stems, remote, archive_members=members, transposed=True)
    with _serving({"tiny.zip": archive}) as server:
        directory = download.download_dataset(
            "emnist-tiny", tmp_path / "cache", _base(server, "good")
        )
    dataset = load_idx_dataset(directory)
    assert dataset.name == "emnist-tiny" and dataset.identified_by == "file names"
    np.testing.assert_array_equal(dataset.train.images, tiny_splits["train"][0])  # upright


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist absent")
def test_debian_fashion_mnist_through_a_file_mirror(tmp_path):
    """Debian re-compressed the files: their decompressed bytes match the pinned raw hashes."""
    directory = download.download_dataset(
        "fashion-mnist", tmp_path / "cache", DEBIAN_FASHION.as_uri()
    )
    for path in DEBIAN_FASHION.iterdir():
        assert gzip.decompress((directory / path.name).read_bytes()) == gzip.decompress(
            path.read_bytes()
        )
    dataset = load_idx_dataset(directory, expected="fashion-mnist")
    assert dataset.class_names[0] == "T-shirt/top" and dataset.identified_by == "sha256"


def test_a_corrupt_cached_file_is_fetched_again(tmp_path, published):
    name = f"{SPLIT_FILES['test'][1]}.gz"
    item = _remote(name, published[name])
    (tmp_path / name).write_bytes(b"not the file")
    with _serving(published) as server:
        fetch_file(item, tmp_path, [_base(server, "good")])
    assert (tmp_path / name).read_bytes() == published[name]


def test_progress_reports_bytes_and_only_on_a_terminal(tmp_path, published, monkeypatch):
    name = f"{SPLIT_FILES['train'][0]}.gz"
    seen: list[tuple[str, int, int | None]] = []
    with _serving(published) as server:
        item = _remote(name, published[name])
        fetch_file(item, tmp_path, [_base(server, "good")], lambda *report: seen.append(report))
    assert seen[-1] == (name, len(published[name]), len(published[name]))
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert download.default_progress() is None
