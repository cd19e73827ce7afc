"""Verified downloads of registry datasets into a cache directory (stdlib only: urllib, fcntl).

Each file is streamed to a temporary file beside its target, checked against its pinned
SHA-256, then renamed into place, so the cache never holds a partial or unverified file. A lock
file per target keeps two processes from writing the same file; transfers that fail are retried
with backoff across the mirrors. Only HTTPS URLs are used unless a mirror is given explicitly
(`--mirror` or MNIST_CNN_MIRROR: http://, https:// or file://, for air-gapped sites).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from http.client import HTTPException
from pathlib import Path

from mnist_cnn import files
from mnist_cnn.dataset_registry import DatasetInfo, RemoteFile, get_dataset
from mnist_cnn.idx import DataError, decompress

CACHE_ENV = "MNIST_CNN_CACHE_DIR"  # moves the cache (the --cache-dir flag wins over it)
MIRROR_ENV = "MNIST_CNN_MIRROR"  # a base URL tried instead of the registry's (--mirror wins)
MIRROR_SCHEMES = ("http", "https", "file")
ATTEMPTS = 3  # passes over the URL list before giving up
BACKOFF_SECONDS = 1.0  # wait after the first failed pass; doubles after each further one
TIMEOUT_SECONDS = 30.0  # per connection and per read: a stalled server counts as a failure
CHUNK_BYTES = 1 << 20  # stream 1 MiB at a time: bounded memory for the 535 MiB zip
ARCHIVE_DIR = "archives"  # cache sub-directory for archives shared by several datasets

Progress = Callable[[str, int, int | None], None]  # (file name, bytes so far, total or None)


class DownloadError(DataError):
    """A dataset file could not be fetched from any URL."""


class ChecksumError(DownloadError):
    """A fetched file is not the published one (its SHA-256 differs from the pinned one)."""


def cache_dir(explicit: str | Path | None = None) -> Path:
    """--cache-dir, else $MNIST_CNN_CACHE_DIR, else $XDG_CACHE_HOME/mnist-cnn/datasets."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-cnn" / "datasets"


def dataset_dir(name: str, cache: str | Path | None = None) -> Path:
    """Where dataset `name`'s IDX files live in the cache."""
    return cache_dir(cache) / get_dataset(name).name


def is_downloaded(name: str, cache: str | Path | None = None) -> bool:
    """True when every IDX file of `name` is in the cache (checked by hash when loaded)."""
    directory = dataset_dir(name, cache)
    return all(
        (directory / f"{stem}.gz").is_file() or (directory / stem).is_file()
        for stem in get_dataset(name).stems
    )


def base_urls(info: DatasetInfo, mirror: str | None = None) -> list[str]:
    """The mirror alone when one is given (checked), else the registry's HTTPS URLs."""
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    if mirror is None:
        return [url for url in info.base_urls if url.startswith("https://")]
    scheme = urllib.parse.urlsplit(mirror).scheme
    if scheme not in MIRROR_SCHEMES:
        raise DownloadError(
            f"mirror {mirror!r}: unsupported scheme (expected one of "
            f"{', '.join(s + '://' for s in MIRROR_SCHEMES)}, found {scheme or 'none'!r})"
        )
    return [mirror if mirror.endswith("/") else mirror + "/"]


def terminal_progress(name: str, done: int, total: int | None) -> None:
    """One self-overwriting line on stderr."""
    shown = f"{done / total:6.1%}" if total else f"{done / 1e6:.1f} MB"
    end = "\n" if total and done >= total else ""
    print(f"\r{name}: {shown}", end=end, file=sys.stderr, flush=True)


def default_progress() -> Progress | None:
    """A progress line only when stderr is a terminal (never in logs or pipes)."""
    return terminal_progress if sys.stderr.isatty() else None


def download_dataset(
    name: str,
    cache: str | Path | None = None,
    mirror: str | None = None,
    *,
    progress: Progress | None = None,
    attempts: int = ATTEMPTS,
    backoff_seconds: float | None = None,
) -> Path:
    """Fetch and verify every file of dataset `name` not yet in the cache; its directory."""
    info = get_dataset(name)
    urls = base_urls(info, mirror)
    directory = dataset_dir(name, cache)
    directory.mkdir(parents=True, exist_ok=True)
    if info.archive is not None:
        if not is_downloaded(name, cache):
            archive_dir = cache_dir(cache) / ARCHIVE_DIR
            archive_dir.mkdir(parents=True, exist_ok=True)
            fetch = (info.archive, archive_dir, urls, progress, attempts, backoff_seconds)
            _extract_members(info, fetch_file(*fetch), directory)
        return directory
    for item in info.remote_files:
        fetch_file(item, directory, urls, progress, attempts, backoff_seconds)
    return directory


def fetch_file(
    item: RemoteFile,
    directory: Path,
    urls: list[str],
    progress: Progress | None = None,
    attempts: int = ATTEMPTS,
    backoff_seconds: float | None = None,
) -> Path:
    """`directory/item.name`, fetched from the first base URL that serves the pinned bytes."""
    target = directory / item.name
    backoff = BACKOFF_SECONDS if backoff_seconds is None else backoff_seconds
    with _locked(directory / f".{item.name}.lock"):
        if target.is_file() and _verified(target, item):  # cached, or another process won
            return target
        target.unlink(missing_ok=True)  # a corrupt cached copy: fetch it again
        failures: list[str] = []
        refused: list[str] = []  # URLs that served other bytes: never asked again
        for attempt in range(attempts):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            for base in urls:
                url = base + item.name
                if url in refused:
                    continue
                try:
                    _fetch_verified(url, item, target, progress)
                    return target
                except ChecksumError as error:
                    refused.append(url)
                    failures.append(str(error))
                except (OSError, HTTPException, ValueError) as error:
                    failures.append(f"{url} ({type(error).__name__}: {error})")
            if len(refused) == len(urls):
                break
    if urls and len(refused) == len(urls):
        raise ChecksumError("; ".join(failures[-len(urls) :]))
    tried = "; ".join(failures[-len(urls) :]) if urls else "no HTTPS URL known"
    raise DownloadError(
        f"{item.name}: could not be downloaded after {attempts} attempt(s) (last errors: "
        f"{tried}). Offline? Copy the files into a directory and pass --data-dir DIR, or "
        f"point --mirror (or ${MIRROR_ENV}) at a copy"
    )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held while the block runs; waits for other holders."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _verified(path: Path, item: RemoteFile, found: str | None = None) -> bool:
    """The published file, or (raw_sha256 pinned) a re-compression of the same IDX bytes.
    `found`: the file's SHA-256 when the caller has it already."""
    if (found or files.sha256_file(path)) == item.sha256:
        return True
    return item.raw_sha256 is not None and _content_sha256(path) == item.raw_sha256


def _content_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(decompress(path.read_bytes(), path)).hexdigest()
    except DataError:
        return None


def _fetch_verified(url: str, item: RemoteFile, target: Path, progress: Progress | None) -> None:
    """Stream `url` to a temporary file beside `target`; rename it over `target` if verified."""
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{item.name}.", suffix=".part")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as sink:
            received, declared = _stream(url, sink, item.name, progress)
            sink.flush()
            os.fsync(sink.fileno())
        if declared is not None and received != declared:
            raise ConnectionError(f"truncated transfer: {received} of {declared} bytes")
        found = files.sha256_file(temporary)
        if not _verified(temporary, item, found):
            raise ChecksumError(
                f"{url}: SHA-256 mismatch for {item.name} (expected {item.sha256}, found "
                f"{found}, {received} bytes of the published {item.size}); refused, nothing "
                "was kept"
            )
        os.chmod(temporary, 0o644)  # mkstemp makes 0600: a shared cache is read by others
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _stream(url: str, sink, name: str, progress: Progress | None) -> tuple[int, int | None]:
    """Copy `url` into `sink` chunk by chunk: (bytes received, Content-Length or None)."""
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-cnn"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        length = response.headers.get("Content-Length")
        declared = int(length) if length and length.isascii() and length.isdigit() else None
        received = 0
        while chunk := response.read(CHUNK_BYTES):
            sink.write(chunk)
            received += len(chunk)
            if progress is not None:
                progress(name, received, declared)
    return received, declared


def _extract_members(info: DatasetInfo, archive: Path, directory: Path) -> None:
    """Copy the dataset's members out of its verified zip (zipfile checks each CRC-32)."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            for stem, member in info.archive_members.items():
                with files.atomic_path(directory / f"{stem}.gz") as temporary:
                    temporary.write_bytes(bundle.read(member))
    except KeyError as error:
        raise DataError(f"{archive}: no member {error} (expected {info.name}'s files)") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{archive}: cannot extract {info.name}'s files ({error})") from None
