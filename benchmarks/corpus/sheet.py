"""Contact sheets of a generated split: one grid PNG per class, to look at the corpus by eye.

    python -m benchmarks.corpus.sheet corpus/eval --out /tmp/sheets [--count 100]

Each cell shows one picture scaled to fit (transparent pixels on a checkerboard, so a
transparent canvas shows as one) with its label, or "-" for a non-digit, in the corner.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

from benchmarks.corpus.make import MANIFEST
from PIL import Image, ImageDraw

CELL_PX = 120  # side of one cell
GAP_PX = 4
COLUMNS = 10
CHECKER_PX = 8  # checkerboard square behind transparent pixels
CHECKER_LEVELS = (200, 235)


def _checkerboard(size: tuple[int, int]) -> Image.Image:
    board = Image.new("RGB", size, (CHECKER_LEVELS[1],) * 3)
    draw = ImageDraw.Draw(board)
    for top in range(0, size[1], CHECKER_PX):
        for left in range((top // CHECKER_PX) % 2 * CHECKER_PX, size[0], 2 * CHECKER_PX):
            draw.rectangle(
                (left, top, left + CHECKER_PX - 1, top + CHECKER_PX - 1),
                fill=(CHECKER_LEVELS[0],) * 3,
            )
    return board


def cell(path: Path, label: str) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        picture = image.convert("RGBA")
    picture.thumbnail((CELL_PX, CELL_PX))
    shown = _checkerboard(picture.size)
    shown.paste(picture, mask=picture.split()[3])
    tile = Image.new("RGB", (CELL_PX, CELL_PX), (90, 90, 90))
    tile.paste(shown, ((CELL_PX - picture.width) // 2, (CELL_PX - picture.height) // 2))
    draw = ImageDraw.Draw(tile)
    draw.rectangle((0, 0, 12, 12), fill=(255, 255, 0))
    draw.text((3, 1), label or "-", fill=(0, 0, 0))
    return tile


def contact_sheets(folder: Path, out: Path, count: int = 100) -> list[Path]:
    """One sheet per class of the split in `folder`, its first `count` pictures."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    with open(folder / MANIFEST, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            by_class[row["class"]].append(row)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in by_class.items():
        rows = rows[:count]
        lines = (len(rows) + COLUMNS - 1) // COLUMNS
        step = CELL_PX + GAP_PX
        sheet = Image.new("RGB", (COLUMNS * step, lines * step), (40, 40, 40))
        for position, row in enumerate(rows):
            tile = cell(folder / row["file"], row["label"])
            sheet.paste(tile, ((position % COLUMNS) * step, (position // COLUMNS) * step))
        path = out / f"{name}.png"
        sheet.save(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus.sheet", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", type=Path, help="a split written by benchmarks.corpus.make")
    parser.add_argument("--out", type=Path, required=True, help="folder for the sheets")
    parser.add_argument("--count", type=int, default=100, help="pictures per sheet")
    args = parser.parse_args(argv)
    for path in contact_sheets(args.folder, args.out, args.count):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
