"""How few images the `fast` recipe can train on: accuracy on held-out training images.

    .venv/bin/python benchmarks/fast_limit.py --limits 30000 24000 21000 18000 --seeds 5 \
        [--output benchmarks/results/fast_limit.json]

Each (seed, limit) trains `--recipe fast --limit N` (its warm-up and cosine decay fitted to
the N images) in this process and reads the last 5,000 MNIST training images, which no
`fast` run trains on (it takes the first 30,000 at most). The test set is not read: this is
for choosing a limit without tuning on the figure the recipe is judged by.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
from pathlib import Path

from machine import cpu_model, git_commit, git_dirty  # benchmarks/machine.py

import mnist_cnn

mnist_cnn.enable_onednn()  # before TensorFlow loads, as training does

import numpy as np  # noqa: E402

from mnist_cnn.config import recipe_config  # noqa: E402
from mnist_cnn.data import load_mnist, to_model_input  # noqa: E402
from mnist_cnn.train import train  # noqa: E402

HELD_OUT = 5000  # the last training images: beyond every limit measured here


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[30000, 24000, 21000, 18000])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    dataset = load_mnist()  # read once: every run trains on it
    train_split = dataset.train
    held_out = to_model_input(train_split.images[-HELD_OUT:])
    labels = train_split.labels[-HELD_OUT:]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            for limit in args.limits:
                config = recipe_config("fast", limit=limit, seed=seed)
                result = train(
                    config, Path(scratch) / "run", overwrite=True, dataset=dataset, verbose=0
                )
                predicted = np.asarray(result.model.predict(held_out, verbose=0)).argmax(axis=1)
                accuracy = float((predicted == labels).mean())
                seconds = result.metrics["train_seconds"]
                runs.append(
                    {
                        "limit": limit,
                        "seed": seed,
                        "held_out_accuracy": accuracy,
                        "train_seconds": seconds,
                    }
                )
                print(f"limit {limit} seed {seed}: held out {accuracy:.4f}, {seconds:.1f} s")
    summary = {}
    for limit in args.limits:
        mine = [run for run in runs if run["limit"] == limit]
        summary[limit] = {
            "held_out_accuracy_median": statistics.median(r["held_out_accuracy"] for r in mine),
            "train_seconds_median": statistics.median(r["train_seconds"] for r in mine),
        }
        print(f"limit {limit}: {summary[limit]}")
    if args.output:
        document = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "git_dirty": git_dirty(),
            "cpu": cpu_model(),
            "summary": summary,
            "runs": runs,
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
