"""How short the `fast` recipe can train: accuracy on held-out training images.

    .venv/bin/python benchmarks/fast_limit.py --limits 30000 24000 21000 18000 --seeds 5 \
        [--output benchmarks/results/fast_limit.json]
    .venv/bin/python benchmarks/fast_limit.py --variants limit=30000 \
        limit=30000,batch_size=128,learning_rate=0.003 --seeds 5

Each (seed, variant) trains `--recipe fast` with the variant's settings (`--limits N` is
`limit=N`; the warm-up and cosine decay follow the images and batches) in this process and
reads the last 5,000 MNIST training images, which no variant may train on (`limit` at most
55,000). The test set is not read: this is for choosing a variant without tuning on the
figure the recipe is judged by.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from machine import provenance  # benchmarks/machine.py
from train_speed import parse_spec  # benchmarks/train_speed.py: `key=value,...` settings

import mnist_cnn

mnist_cnn.enable_onednn()  # before TensorFlow loads, as training does

import numpy as np  # noqa: E402

from mnist_cnn.config import recipe_config  # noqa: E402
from mnist_cnn.data import load_mnist, to_model_input  # noqa: E402
from mnist_cnn.train import train  # noqa: E402

HELD_OUT = 5000  # the last training images: beyond every limit allowed here
TRAINING_IMAGES = 60000
# Without --limits or --variants: the recipe's 30,000 and the limits near 0.3x of the
# tutorial's time (results/fast_limit.json).
DEFAULT_LIMITS = [30000, 24000, 21000, 18000]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[])
    parser.add_argument("--variants", nargs="+", default=[], help="key=value,... settings")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    limits = args.limits or ([] if args.variants else DEFAULT_LIMITS)
    variants = [f"limit={limit}" for limit in limits] + args.variants
    settings = {variant: parse_spec(f"fast:{variant}")[1] for variant in variants}
    for variant, values in settings.items():
        config = recipe_config("fast", **values)
        if config.limit is None or config.limit > TRAINING_IMAGES - HELD_OUT:
            parser.error(f"{variant}: limit must be at most {TRAINING_IMAGES - HELD_OUT}")
    dataset = load_mnist()  # read once: every run trains on it
    train_split = dataset.train
    held_out = to_model_input(train_split.images[-HELD_OUT:])
    labels = train_split.labels[-HELD_OUT:]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(args.seeds):
            for variant in variants:
                config = recipe_config("fast", **{**settings[variant], "seed": seed})
                result = train(
                    config, Path(scratch) / "run", overwrite=True, dataset=dataset, verbose=0
                )
                predicted = np.asarray(result.model.predict(held_out, verbose=0)).argmax(axis=1)
                accuracy = float((predicted == labels).mean())
                seconds = result.metrics["train_seconds"]
                runs.append(
                    {
                        "variant": variant,
                        "limit": config.limit,
                        "seed": seed,
                        "held_out_accuracy": accuracy,
                        "train_seconds": seconds,
                    }
                )
                print(f"{variant} seed {seed}: held out {accuracy:.4f}, {seconds:.1f} s")
    summary = {}
    for variant in variants:
        mine = [run for run in runs if run["variant"] == variant]
        summary[variant] = {
            "held_out_accuracy_median": statistics.median(r["held_out_accuracy"] for r in mine),
            "train_seconds_median": statistics.median(r["train_seconds"] for r in mine),
        }
        print(f"{variant}: {summary[variant]}")
    if args.output:
        document = {
            **provenance(),
            "summary": summary,
            "runs": runs,
        }
        args.output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
