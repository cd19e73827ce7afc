"""A corpus re-saved as JPEG: every picture of the chosen classes at one quality, for real_world.py.

A picture passed on by e-mail or chat, or saved from a phone's gallery, arrives re-compressed:
this writes that version of an existing corpus (benchmarks/corpus/make.py or
optdigits_corpus.py), same classes, labels and order, so one model's figures on both can be
set side by side.

    python benchmarks/jpeg_copy.py --corpus corpus/eval_big --classes lowres_blocky \
        --quality 75 --out corpus/eval_big_q75
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from PIL import Image
from real_world import read_manifest  # benchmarks/real_world.py

QUALITY_RANGE = (1, 95)  # Pillow's JPEG qualities; above 95 its docs advise against


def copy_as_jpeg(corpus: Path, out: Path, quality: int, classes: set[str] | None) -> int:
    """Write `out` (pictures, manifest.csv, corpus.json); returns the pictures written."""
    if out.resolve() == corpus.resolve():
        raise ValueError(f"--out {out} is the corpus itself: its pictures would be overwritten")
    every_row = read_manifest(corpus)
    unknown = sorted((classes or set()) - {row["class"] for row in every_row})
    if unknown:
        raise ValueError(f"{corpus}/manifest.csv: no class {', '.join(unknown)}")
    rows = [row for row in every_row if not classes or row["class"] in classes]
    if not rows:
        raise ValueError(f"{corpus}/manifest.csv: no pictures listed")
    written: set[str] = set()
    for row in rows:
        file = str(Path(row["file"]).with_suffix(".jpg"))
        if file in written:
            raise ValueError(f"{corpus}: two pictures would both be written as {file}")
        written.add(file)
        (out / file).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(corpus / row["file"]) as picture:
            # JPEG has no transparency: a drawing on a transparent canvas goes on white paper,
            # as decode.array_to_gray reads it.
            rgba = picture.convert("RGBA")
            paper = Image.new("RGBA", rgba.size, "white")
            Image.alpha_composite(paper, rgba).convert("RGB").save(
                out / file, "JPEG", quality=quality
            )
        row["file"], row["source"] = file, f"{row['source']}; jpeg={quality}"
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settings = {"copied_from": str(corpus), "jpeg_quality": quality, "pictures": len(rows)}
    (out / "corpus.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder with manifest.csv")
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--quality", type=int, required=True, help="JPEG quality, 1-95")
    parser.add_argument("--classes", default="", help="comma-separated classes (default: all)")
    args = parser.parse_args(argv)
    low, high = QUALITY_RANGE
    if not low <= args.quality <= high:
        parser.error(f"--quality: expected {low}-{high}, found {args.quality}")
    if not (args.corpus / "manifest.csv").is_file():
        parser.error(f"--corpus {args.corpus}: no manifest.csv")
    classes = {name for name in args.classes.split(",") if name} or None
    try:
        count = copy_as_jpeg(args.corpus, args.out, args.quality, classes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out}: {count} pictures at JPEG quality {args.quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
