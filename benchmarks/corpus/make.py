"""Write one split of the corpus: OUT/<class>/<index>.<png|jpg>, OUT/manifest.csv, corpus.json.

    python -m benchmarks.corpus.make --split eval --out corpus/eval --per-class 300
    python -m benchmarks.corpus.make --split tune --out corpus/tune --per-class 100
    python -m benchmarks.corpus.make --split tune --out corpus/tune_fill --fill 0.2 0.35

Deterministic: each class draws from its own NumPy generator seeded by the split's seed and
the class's name, so a class's pictures do not depend on which other classes are made, in
what order, or with how many processes. The split is written to OUT.tmp and renamed to OUT
when complete; an OUT left by an earlier run is replaced only then.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import PIL
from benchmarks.corpus import geometry, handwriting, nondigits, printed, redrawn, typefaces
from benchmarks.corpus.sources import DIGITS, SPLIT_BOUNDARY, SPLITS, Sources

# Base seed of each split: different, so the two splits share no random draw.
SPLIT_SEEDS = {"tune": 20_261_201, "eval": 20_261_202}
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "class", "kind", "label", "source")
SETTINGS = "corpus.json"
DIGIT_CLASSES = {**handwriting.CLASSES, **redrawn.CLASSES, **printed.CLASSES}
NONDIGIT_CLASSES = nondigits.CLASSES
CLASS_KINDS = {
    **dict.fromkeys(DIGIT_CLASSES, "digit"),
    **dict.fromkeys(NONDIGIT_CLASSES, "nondigit"),
}
GENERATORS = {**DIGIT_CLASSES, **NONDIGIT_CLASSES}


def class_rng(seed: int, class_name: str) -> np.random.Generator:
    """The generator of one class: the split's seed and a stable hash of the class's name."""
    name_hash = int.from_bytes(hashlib.sha256(class_name.encode()).digest()[:8], "big")
    return np.random.default_rng([seed, name_hash])


def class_count(class_name: str, per_class: int) -> int:
    """Pictures of a class: digit classes round up to a multiple of 10 (balanced labels)."""
    if CLASS_KINDS[class_name] == "digit":
        return math.ceil(per_class / DIGITS) * DIGITS
    return per_class


def make_class(
    split: str,
    seed: int,
    class_name: str,
    count: int,
    folder: Path,
    fill: tuple[float, float] | None = None,
) -> tuple[list[dict], dict]:
    """Write one class's pictures under folder/<class>; its manifest rows and a summary."""
    started = time.perf_counter()
    geometry.fill_override = fill  # set in the worker process that draws the class
    rng, sources = class_rng(seed, class_name), Sources(split)
    (folder / class_name).mkdir(parents=True)
    rows, draws, contrasts = [], 0, []
    pictures = GENERATORS[class_name](rng, count, sources)
    for index, (picture, data, picture_draws, contrast) in enumerate(pictures):
        draws += picture_draws
        contrasts.append(contrast)
        suffix = "jpg" if picture.jpeg_quality is not None else "png"
        name = f"{class_name}/{index:04d}.{suffix}"
        (folder / name).write_bytes(data)
        label = "" if picture.label is None else str(picture.label)
        rows.append(
            {
                "file": name,
                "class": class_name,
                "kind": CLASS_KINDS[class_name],
                "label": label,
                "source": picture.source,
            }
        )
    measured = [value for value in contrasts if not math.isnan(value)]
    summary = {
        "kind": CLASS_KINDS[class_name],
        "pictures": len(rows),
        "rejected_draws": draws - len(rows),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if measured:
        summary["ink_contrast_min"] = round(min(measured), 3)
        summary["ink_contrast_median"] = round(float(np.median(measured)), 3)
    return rows, summary


def make_corpus(
    split: str,
    out: Path,
    per_class: int,
    *,
    seed: int | None = None,
    classes: list[str] | None = None,
    jobs: int = 1,
    fill: tuple[float, float] | None = None,
) -> dict:
    """Generate `split` into `out` (replacing it once complete); returns the settings saved."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    names = list(GENERATORS) if classes is None else classes
    unknown = [name for name in names if name not in GENERATORS]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}; known: {list(GENERATORS)}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if fill is not None and not 0 < fill[0] <= fill[1] < 1:
        raise ValueError(f"fill must be two fractions 0 < low <= high < 1, got {fill}")
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ValueError(
            f"{out} exists and is not a corpus (no {MANIFEST}); refusing to replace it"
        )
    seed = SPLIT_SEEDS[split] if seed is None else seed
    typefaces.fonts_for_split(split)  # fail before any work if a style has no font
    started = time.perf_counter()
    temporary = out.with_name(out.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    counts = {name: class_count(name, per_class) for name in names}
    try:
        results = _make_classes(split, seed, counts, temporary, jobs, fill)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    with open(temporary / MANIFEST, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for name in names:
            writer.writerows(results[name][0])
    summaries = {name: results[name][1] for name in names}
    settings = _settings(split, seed, per_class, summaries, jobs, time.perf_counter() - started)
    settings["fill"] = "each class's own" if fill is None else list(fill)
    (temporary / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    _replace(temporary, out)
    return settings


def _make_classes(
    split: str,
    seed: int,
    counts: dict[str, int],
    temporary: Path,
    jobs: int,
    fill: tuple[float, float] | None,
) -> dict[str, tuple[list[dict], dict]]:
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            name: pool.submit(make_class, split, seed, name, count, temporary, fill)
            for name, count in counts.items()
        }
        results = {}
        for name, future in futures.items():
            results[name] = future.result()
            summary = results[name][1]
            print(
                f"{name}: {summary['pictures']} pictures in {summary['seconds']} s, "
                f"{summary['rejected_draws']} draws rejected",
                file=sys.stderr,
            )
    return results


def _settings(
    split: str, seed: int, per_class: int, summaries: dict[str, dict], jobs: int, seconds: float
) -> dict:
    fonts = typefaces.fonts_for_split(split)
    mnist = f"index < {SPLIT_BOUNDARY}" if split == "tune" else f"index >= {SPLIT_BOUNDARY}"
    return {
        "split": split,
        "seed": seed,
        "per_class": per_class,
        "classes": summaries,
        "mnist_test_images": mnist,
        "fashion_mnist_test_images": mnist,
        "typeface_set": typefaces.SPLIT_TYPEFACE_SET[split],
        "fonts": {style: [Path(path).name for path in paths] for style, paths in fonts.items()},
        "seconds": round(seconds, 1),
        "jobs": jobs,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pillow": PIL.__version__,
        },
    }


def _replace(temporary: Path, out: Path) -> None:
    """Put the finished split in place: the old one moves aside first, then is deleted."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    temporary.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus.make", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--split",
        required=True,
        choices=SPLITS,
        help="tune: MNIST test index < 5000 and typeface set A; eval: index >= 5000 and set B",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output folder (replaced when the new split is complete)",
    )
    parser.add_argument(
        "--per-class",
        type=int,
        default=300,
        help="pictures per class (digit classes round up to a multiple of 10)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="base seed (default: the split's own, "
        + ", ".join(f"{k} {v}" for k, v in SPLIT_SEEDS.items())
        + ")",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=None,
        metavar="CLASS",
        help="make only these classes (default: all)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="worker processes, one class at a time each (output identical)",
    )
    parser.add_argument(
        "--fill",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="ink height / picture height drawn from this range for every class, instead of "
        "each class's own (e.g. 0.2 0.35: a digit photographed small on a large sheet)",
    )
    args = parser.parse_args(argv)
    try:
        settings = make_corpus(
            args.split,
            args.out,
            args.per_class,
            seed=args.seed,
            classes=args.classes,
            jobs=args.jobs,
            fill=None if args.fill is None else tuple(args.fill),
        )
    except (ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    total = sum(entry["pictures"] for entry in settings["classes"].values())
    print(
        f"{args.out}: {total} pictures in {len(settings['classes'])} classes, "
        f"{settings['seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
