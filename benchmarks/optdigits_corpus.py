"""Handwriting from writers outside MNIST: UCI optdigits as a corpus for real_world.py.

The 1,797 digits scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`, the test part of
UCI's "Optical Recognition of Handwritten Digits", 13 writers; NIST forms, each digit
size-normalised to 32x32 and counted in 4x4 blocks: 8x8 cells of 0-16) are drawn as scans:
dark ink on light paper, a margin of empty cells around, enlarged smoothly (bilinear) and
blockily (nearest neighbour), one class each. Nothing in the project was tuned on them, and
their writers, forms and normalisation are not MNIST's, so `real_world.py` on this folder is
a check on data from another source.

`--mnist-split tune|eval` writes the same kind of scan from MNIST *test* digits of that
corpus split (benchmarks/corpus/sources.py) instead: each digit binarised, its ink box fitted
into 32x32 (aspect kept: optdigits' 1s stay narrow) and counted in 4x4 blocks, as optdigits
was made. A tune class for low-resolution scans that is not the optdigits pictures.

    python -m venv /tmp/sklearn && /tmp/sklearn/bin/pip install scikit-learn   # for the file
    DATA=/tmp/sklearn/lib/python3.11/site-packages/sklearn/datasets/data
    python benchmarks/optdigits_corpus.py --digits-csv $DATA/digits.csv.gz --out corpus/optdigits
    python benchmarks/real_world.py --corpus corpus/optdigits --run src/mnist_cnn/packaged_model
    python benchmarks/optdigits_corpus.py --mnist-split tune --out corpus/tune_cells
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mnist_cnn.data import load_mnist

# SHA-256 of digits.csv.gz as scikit-learn 1.9.1 ships it (unchanged since the file was added);
# another file is refused, so that a figure always names the same 1,797 digits.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
CELLS, CELL_MAX = 8, 16  # 8x8 cells, each the count of inked pixels in a 4x4 block
BLOCK = 4  # pixels per cell side: optdigits' 32x32 bitmaps counted in 4x4 blocks
INK_LEVEL = 128  # an MNIST pixel (0-255) at least this bright is ink in the binary bitmap
# sources.py's rule, restated so this script needs no package path: tune digits are the MNIST
# test images below this index, eval digits the rest.
SPLIT_BOUNDARY = 5_000
MARGIN_CELLS = 2  # empty paper around the digit, in cells: a scan is not cropped to the ink
PAPER, INK = 236, 28  # 0-255 grey of the paper and of full ink (a dark pen on white paper)
UPSCALINGS = {
    "optdigits_smooth": Image.Resampling.BILINEAR,
    "optdigits_blocky": Image.Resampling.NEAREST,
}


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(cells (N, 8, 8) in 0-16, labels (N,)) from digits.csv.gz, its SHA-256 checked."""
    data = path.read_bytes()
    found = hashlib.sha256(data).hexdigest()
    if found != DIGITS_SHA256:
        raise ValueError(f"{path}: SHA-256 {found}, expected {DIGITS_SHA256} (sklearn's file)")
    table = np.loadtxt(gzip.decompress(data).decode().splitlines(), delimiter=",")
    if table.ndim != 2 or table.shape[1] != CELLS * CELLS + 1:
        raise ValueError(f"{path}: expected 65 columns (64 cells, label), found {table.shape}")
    return table[:, :-1].reshape(-1, CELLS, CELLS), table[:, -1].astype(int)


def mnist_cells(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) MNIST digits -> (N, 8, 8) cells of 0-16, made as optdigits' were."""
    side = CELLS * BLOCK
    cells = np.zeros((len(images), CELLS, CELLS))
    for index, image in enumerate(images):
        ink = image >= INK_LEVEL
        rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        crop = ink[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        scale = side / max(crop.shape)
        height, width = (max(1, round(length * scale)) for length in crop.shape)
        bitmap = Image.fromarray(crop.astype(np.uint8) * 255).resize(
            (width, height), Image.Resampling.NEAREST
        )
        canvas = np.zeros((side, side))
        top, left = (side - height) // 2, (side - width) // 2
        canvas[top : top + height, left : left + width] = np.asarray(bitmap) >= INK_LEVEL
        cells[index] = canvas.reshape(CELLS, BLOCK, CELLS, BLOCK).sum(axis=(1, 3))
    return cells


def read_mnist_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(cells, labels) of the MNIST test digits of corpus split `split`."""
    test = load_mnist(None).test  # the packaged, hash-checked copy
    chosen = slice(0, SPLIT_BOUNDARY) if split == "tune" else slice(SPLIT_BOUNDARY, None)
    return mnist_cells(test.images[chosen]), test.labels[chosen].astype(int)


def scan(cells: np.ndarray, pixels_per_cell: int, method: Image.Resampling) -> Image.Image:
    """8x8 cells -> a grey scan of the digit, dark on light, with a margin of paper."""
    coverage = np.pad(cells / CELL_MAX, MARGIN_CELLS)
    grey = np.round(PAPER - coverage * (PAPER - INK)).astype(np.uint8)
    side = grey.shape[0] * pixels_per_cell
    return Image.fromarray(grey).resize((side, side), method)


def write_corpus(
    cells: np.ndarray,
    labels: np.ndarray,
    out: Path,
    pixels_per_cell: int,
    source: str = "optdigits",
    description: str = "UCI optdigits, test part, as scikit-learn ships it (digits.csv.gz)",
) -> None:
    """One folder per upscaling, manifest.csv and corpus.json, as benchmarks/corpus/make.py.
    Classes are named `source`_smooth and `source`_blocky."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for upscaling, method in UPSCALINGS.items():
        name = upscaling.replace("optdigits", source)
        (out / name).mkdir(exist_ok=True)
        for index, (digit_cells, label) in enumerate(zip(cells, labels, strict=True)):
            file = f"{name}/{index:04d}.png"
            scan(digit_cells, pixels_per_cell, method).save(out / file)
            rows.append([file, name, "digit", int(label), f"{source}:{index}"])
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class", "kind", "label", "source"])
        writer.writerows(rows)
    settings = {
        "source": description,
        "sha256": DIGITS_SHA256 if source == "optdigits" else None,
        "pictures_per_class": len(labels),
        "pixels_per_cell": pixels_per_cell,
        "margin_cells": MARGIN_CELLS,
        "paper_ink_grey": [PAPER, INK],
    }
    (out / "corpus.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    origin = parser.add_mutually_exclusive_group(required=True)
    origin.add_argument("--digits-csv", type=Path, help="sklearn's digits.csv.gz")
    origin.add_argument(
        "--mnist-split", choices=("tune", "eval"), help="MNIST test digits of this split instead"
    )
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--count", type=int, help="with --mnist-split: its first N digits only")
    parser.add_argument("--pixels-per-cell", type=int, default=12, help="enlargement (px)")
    args = parser.parse_args(argv)
    if args.mnist_split:
        cells, labels = read_mnist_split(args.mnist_split)
        cells, labels = cells[: args.count], labels[: args.count]
        origin = f"MNIST test digits of the corpus {args.mnist_split} split, counted as optdigits"
        write_corpus(cells, labels, args.out, args.pixels_per_cell, "mnist_cells", origin)
        print(f"{args.out}: {len(labels)} digits x {len(UPSCALINGS)} upscalings")
        return 0
    if not args.digits_csv.is_file():
        parser.error(f"--digits-csv {args.digits_csv}: no such file")
    try:
        cells, labels = read_digits(args.digits_csv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_corpus(cells, labels, args.out, args.pixels_per_cell)
    print(f"{args.out}: {len(labels)} digits x {len(UPSCALINGS)} upscalings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
