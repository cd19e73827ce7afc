"""What slant correction (preprocess.deslant) does to MNIST's own test digits.

    python benchmarks/deslant.py RUN_DIR [RUN_DIR ...] [--seed 0] [--output F.json]

For each run: accuracy on the 10,000 test digits as they are and rotated by a random angle of up
to 15 degrees (the rotation tests/realistic.py gives its pictures), each with and without
`deslant`. A deslanted 28x28 digit is cut back to its central 28 columns (the shear keeps the
digit's centre where it was). It shows the part of the realistic-picture errors that rotation
alone causes, and how much of it slant correction wins back.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
from machine import cpu_model, git_commit, git_dirty  # benchmarks/machine.py
from PIL import Image

from mnist_cnn.data import load_mnist
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import SLANT_RANGE, deslant, slant
from mnist_cnn.runtime import library_versions


def deslanted(image: np.ndarray) -> np.ndarray:
    out = deslant(image.astype(np.float64))
    left = (out.shape[1] - 28) // 2
    return np.clip(out[:, left : left + 28], 0, 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", help="run directories written by 'mnist-cnn train'")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rotation angles")
    parser.add_argument("--output", help="also write the results to this JSON file")
    args = parser.parse_args()
    test = load_mnist().test
    images = test.images.astype(np.float32) / 255
    rng = np.random.default_rng(args.seed)
    rotated = np.stack(
        [
            np.asarray(Image.fromarray(x, "F").rotate(float(rng.uniform(-15, 15)), Image.BILINEAR))
            for x in images
        ]
    )
    sets = {
        "as_they_are": images,
        "as_they_are_deslanted": np.stack([deslanted(x) for x in images]),
        "rotated": rotated,
        "rotated_deslanted": np.stack([deslanted(x) for x in rotated]),
    }
    inside = np.mean([SLANT_RANGE[0] <= slant(x) <= SLANT_RANGE[1] for x in images])
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "cpu": cpu_model(),
        "versions": library_versions(),
        "rotation_seed": args.seed,
        "slant_range": SLANT_RANGE,
        "test_digits_inside_range": float(inside),
        "runs": {},
    }
    print("| run | as they are | deslanted | rotated up to 15 degrees | rotated, deslanted |")
    print("| --- | --- | --- | --- | --- |")
    for run in args.run_dirs:
        predictor = Predictor.from_dir(run)
        accuracy = {
            name: float(np.mean(predictor.probabilities(x).argmax(axis=1) == test.labels))
            for name, x in sets.items()
        }
        results["runs"][run] = accuracy
        print(f"| {run} | " + " | ".join(f"{a:.4f}" for a in accuracy.values()) + " |")
    print(f"test digits already inside {SLANT_RANGE}: {inside:.1%}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
