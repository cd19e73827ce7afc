"""The `datasets` and `download` subcommands (cli.py), and train's --dataset, --cache-dir and
--mirror flags, resolved here to the data directory the train config takes.

No TensorFlow import: listing and downloading data never load a model.
"""

from __future__ import annotations

import argparse
import json
import os

from mnist_cnn import MnistCnnError
from mnist_cnn.cli_predict import EXIT_OK
from mnist_cnn.dataset_registry import DATASETS, get_dataset

PACKAGED = "mnist"  # the registry name of the dataset that ships inside the package
CACHE_HELP = (
    "download cache (default $MNIST_CNN_CACHE_DIR, else $XDG_CACHE_HOME/mnist-cnn/datasets)"
)
MIRROR_HELP = (
    "base URL to fetch the files from instead of the registry's HTTPS URLs: http://, https:// "
    "or file:// (default $MNIST_CNN_MIRROR)"
)


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", metavar="DIR", help=CACHE_HELP)
    parser.add_argument("--mirror", metavar="URL", help=MIRROR_HELP)


def add_dataset_arguments(train: argparse.ArgumentParser) -> None:
    """train's --dataset, --cache-dir and --mirror (resolved by `resolve_data_dir`)."""
    train.add_argument(
        "--dataset",
        choices=list(DATASETS),
        help="a registry dataset (see 'mnist-cnn datasets'), downloaded and verified if not "
        "cached; mnist is the packaged copy (default)",
    )
    _add_source_arguments(train)


def resolve_data_dir(args: argparse.Namespace) -> str | None:
    """The data directory for train: --data-dir as given, else --dataset's (downloaded when
    missing), else None (the packaged MNIST)."""
    dataset = getattr(args, "dataset", None)
    if dataset is None:
        return args.data_dir
    if args.data_dir is not None:
        raise MnistCnnError("--dataset and --data-dir both name the data: pass one of them")
    from mnist_cnn import download

    if dataset == PACKAGED and not (args.mirror or os.environ.get(download.MIRROR_ENV)):
        return None
    return str(
        download.download_dataset(
            dataset, args.cache_dir, args.mirror, progress=download.default_progress()
        )
    )


def add_data_parsers(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser(
        "datasets", help="list the datasets 'train --dataset' knows, and which are on disk"
    )
    listing.add_argument("--cache-dir", metavar="DIR", help=CACHE_HELP)
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    fetch = commands.add_parser(
        "download",
        help="download a dataset into the cache, verifying every file's SHA-256",
        description="Fetches each file to a temporary file, checks its pinned SHA-256, then "
        "renames it into the cache; retries across mirrors. Offline, copy the files into a "
        "directory and pass 'train --data-dir DIR' instead.",
    )
    fetch.add_argument("name", choices=list(DATASETS), metavar="NAME", help="dataset name")
    _add_source_arguments(fetch)


def _listing(cache_dir: str | None) -> list[dict[str, object]]:
    from mnist_cnn.download import dataset_dir, is_downloaded

    rows = []
    for info in DATASETS.values():
        cached = is_downloaded(info.name, cache_dir)
        rows.append(
            {
                "name": info.name,
                "title": info.title,
                "on_disk": info.name == PACKAGED or cached,
                "path": "packaged"
                if info.name == PACKAGED
                else str(dataset_dir(info.name, cache_dir)),
                "cached": cached,
                "class_names": list(info.class_names),
                "licence": info.licence,
                "homepage": info.homepage,
                "notes": info.notes,
            }
        )
    return rows


def run_datasets(args: argparse.Namespace) -> int:
    rows = _listing(args.cache_dir)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        where = "packaged" if row["name"] == PACKAGED else ("cached" if row["cached"] else "-")
        print(f"{row['name']:<{width}}  {where:<8}  {row['title']}")
        print(f"{'':<{width}}  {'':<8}  licence: {row['licence']}")
    return EXIT_OK


def run_download(args: argparse.Namespace) -> int:
    from mnist_cnn.download import default_progress, download_dataset

    info = get_dataset(args.name)
    directory = download_dataset(
        info.name, args.cache_dir, args.mirror, progress=default_progress()
    )
    print(f"{info.name}: verified, in {directory}")
    return EXIT_OK


COMMANDS = {"datasets": run_datasets, "download": run_download}
