"""Training speed and time-to-accuracy: recipes side by side, alternating, N seeds.

    .venv/bin/python benchmarks/train_speed.py --seeds 5 --recipes tutorial fast
    .venv/bin/python benchmarks/train_speed.py --seeds 3 --recipes tutorial \
        --torch-python /path/to/torch-venv/bin/python   # + the plain PyTorch peer, alternating

Each (seed, recipe) trains in a fresh subprocess, in the order seed 0: tutorial, fast; seed 1:
tutorial, fast; ... so that machine noise hits both alike. During training a probe copies the
weights at fixed fractions of an epoch (the copy's time is taken off the training clock); after
training each copy is evaluated on the 10,000 test images (benchmark-only mode: `mnist-cnn
train` runs no probe). The fp32 matmul peak is measured before
and after, in the same run. Everything goes to a JSON file beside the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_model, git_commit, git_dirty, matmul_peak_gflops  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent
# The plain PyTorch version of the tutorial recipe, run beside ours (never copied in), and the
# gzipped MNIST files it reads.
TORCH_PEER = ROOT.parent / "shared" / "peers" / "torch_tutorial.py"
PEER_DATA = ROOT.parent / "shared" / "data" / "mnist"
PEER = "torch-peer"
# Multiply-adds of one forward pass of the tutorial net (conv1, conv2, dense, output).
FORWARD_MACS = 28 * 28 * 32 * 25 + 14 * 14 * 64 * 25 * 32 + 3136 * 1024 + 1024 * 10
TRAIN_FLOP_PER_IMAGE = 3 * 2 * FORWARD_MACS  # forward + two backward products, 2 FLOP per MAC


def parse_spec(spec: str) -> tuple[str, dict]:
    """`fast` or `fast:batch_size=128,learning_rate=0.002` -> (recipe, overrides) for a lever."""
    name, _, settings = spec.partition(":")
    overrides = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    return name, overrides


def worker(spec: str, seed: int, probe_fraction: float, output: str) -> None:
    """One training run with accuracy probes; prints a JSON object."""
    from mnist_cnn import enable_onednn
    from mnist_cnn.config import recipe_config

    recipe, overrides = parse_spec(spec)
    config = recipe_config(recipe, **{**overrides, "seed": seed})
    if config.fast_kernels:
        enable_onednn()  # as `mnist-cnn train` does: before TensorFlow loads

    import keras

    from mnist_cnn import runtime
    from mnist_cnn.data import load_mnist, to_model_input
    from mnist_cnn.evaluate import metrics_from_probabilities
    from mnist_cnn.model import build_model
    from mnist_cnn.train import train

    dataset = load_mnist()
    train_images = min(len(dataset.train.images), config.limit or len(dataset.train.images))
    steps_per_epoch = -(-train_images // config.batch_size)
    probe_every = max(1, round(probe_fraction * steps_per_epoch))
    test_inputs = to_model_input(dataset.test.images, config.data_format)

    class Probe(keras.callbacks.Callback):
        """Copies the weights at fixed fractions of an epoch; they are evaluated after training.

        Evaluating inside training (an earlier version) ran a second compiled model and its
        thread pools in the middle of the timed run; now the run only pays for a copy of the
        weights (about 13 MB), and that is taken off its clock too.
        """

        def __init__(self) -> None:
            super().__init__()
            self.snapshots: list[tuple[float, float, list]] = []
            self.excluded = 0.0
            self.epoch_offset = 0
            self.next_probe = probe_every

        def on_train_begin(self, logs=None) -> None:
            self.started = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self.epoch_offset = epoch * steps_per_epoch

        def on_train_batch_end(self, batch, logs=None) -> None:
            step = self.epoch_offset + batch + 1
            if step < self.next_probe:
                return
            self.next_probe = (step // probe_every + 1) * probe_every
            paused = time.perf_counter()
            elapsed = paused - self.started - self.excluded
            network = self.model.layers[-1] if config.augments else self.model
            self.snapshots.append((step / steps_per_epoch, elapsed, network.get_weights()))
            self.excluded += time.perf_counter() - paused

    probe = Probe()
    result = train(config, output, dataset=dataset, verbose=0, callbacks=[probe])
    metrics = result.metrics
    probe_network = build_model(config.data_format)
    call = runtime.compiled_call(probe_network)
    points = []
    for epochs, elapsed, weights in probe.snapshots:
        probe_network.set_weights(weights)
        accuracy = metrics_from_probabilities(call(test_inputs), dataset.test.labels)
        points.append(
            {"epochs": epochs, "train_seconds": elapsed, "test_accuracy": accuracy["test_accuracy"]}
        )
    train_seconds = metrics["train_seconds"] - probe.excluded
    reached = [p for p in points if p["test_accuracy"] >= 0.99]
    print(
        json.dumps(
            {
                "recipe": spec,
                "seed": seed,
                "config": config.to_dict(),
                "train_seconds": train_seconds,
                "probe_seconds_excluded": probe.excluded,
                "evaluate_seconds": metrics["evaluate_seconds"],
                "images_per_second": metrics["train_images"] * config.epochs / train_seconds,
                "test_accuracy": metrics["test_accuracy"],
                "test_loss": metrics["test_loss"],
                "seconds_to_99": reached[0]["train_seconds"] if reached else None,
                "epochs_to_99": reached[0]["epochs"] if reached else None,
                "probes": points,
            }
        )
    )


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per recipe")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run from this one up")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["tutorial", "fast"],
        help="recipe names, or NAME:KEY=VALUE,... to measure a variant (a lever)",
    )
    parser.add_argument(
        "--probe-fraction",
        type=float,
        default=0.1,
        help="evaluate on the test set every this fraction of an epoch",
    )
    parser.add_argument(
        "--torch-python",
        help=f"python of a venv with torch==2.13.0: runs {TORCH_PEER.name} (batch 32, lr 1e-4, "
        "one epoch) after the recipes of each seed",
    )
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/train_speed.json"))
    parser.add_argument(
        "--worker", nargs=3, metavar=("RECIPE", "SEED", "DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.probe_fraction, args.worker[2])
        return 0

    peak_before = matmul_peak_gflops()
    runs = []
    contenders = [*args.recipes, *([PEER] if args.torch_python else [])]
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for recipe in contenders:
            if recipe == PEER:
                command = [args.torch_python, str(TORCH_PEER), str(PEER_DATA), "--seed", str(seed)]
                completed = subprocess.run(command, capture_output=True, text=True, check=True)
                run = json.loads(completed.stdout.strip().splitlines()[-1])
                run |= {"recipe": PEER, "seed": seed, "seconds_to_99": None}
                runs.append(run)
                print(
                    f"{PEER:>9} seed {seed}: {run['train_seconds']:7.1f} s  "
                    f"{run['images_per_second']:6.0f} img/s  acc {run['test_accuracy']:.4f}",
                    flush=True,
                )
                continue
            with tempfile.TemporaryDirectory() as directory:
                command = [
                    sys.executable,
                    __file__,
                    "--probe-fraction",
                    str(args.probe_fraction),
                    "--worker",
                    recipe,
                    str(seed),
                    str(Path(directory) / "run"),
                ]
                completed = subprocess.run(command, capture_output=True, text=True, check=True)
            run = json.loads(completed.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(
                f"{recipe:>9} seed {seed}: {run['train_seconds']:7.1f} s  "
                f"{run['images_per_second']:6.0f} img/s  acc {run['test_accuracy']:.4f}  "
                f"to 99%: {run['seconds_to_99']}",
                flush=True,
            )
    peak = max(peak_before, matmul_peak_gflops())

    summary = {}
    for recipe in contenders:
        mine = [r for r in runs if r["recipe"] == recipe]
        reached = [r["seconds_to_99"] for r in mine if r["seconds_to_99"] is not None]
        rate = summarize([r["images_per_second"] for r in mine])
        summary[recipe] = {
            "train_seconds": summarize([r["train_seconds"] for r in mine]),
            "images_per_second": rate,
            "percent_of_fp32_peak": 100 * rate["median"] * TRAIN_FLOP_PER_IMAGE / (peak * 1e9),
            "test_accuracy": summarize([r["test_accuracy"] for r in mine]),
            "seconds_to_99": summarize(reached) if reached else None,
            "runs_reaching_99": len(reached),
        }
        if recipe != PEER:
            summary[recipe]["evaluate_seconds"] = summarize([r["evaluate_seconds"] for r in mine])
    if PEER in summary:
        for recipe in summary:
            summary[recipe]["train_time_ratio_to_torch_peer"] = (
                summary[recipe]["train_seconds"]["median"]
                / summary[PEER]["train_seconds"]["median"]
            )
    if "tutorial" in summary:
        for recipe in summary:
            summary[recipe]["train_time_ratio_to_tutorial"] = (
                summary[recipe]["train_seconds"]["median"]
                / summary["tutorial"]["train_seconds"]["median"]
            )

    import keras
    import tensorflow as tf

    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "cpu": cpu_model(),
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
        "fp32_matmul_peak_gflops": peak,
        "train_flop_per_image": TRAIN_FLOP_PER_IMAGE,
        "probe_fraction": args.probe_fraction,
        "seeds": args.seeds,
        "summary": summary,
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nfp32 matmul peak {peak:.0f} GFLOP/s; {len(runs)} runs -> {args.output}")
    print(
        "| recipe | train s (median, min-max) | images/s | % fp32 peak | test acc (median, "
        "min-max) | s to 99% | train time vs tutorial | vs PyTorch peer |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for recipe, s in summary.items():
        t, a = s["train_seconds"], s["test_accuracy"]
        to99 = (
            f"{s['seconds_to_99']['median']:.1f} ({s['runs_reaching_99']}/{args.seeds})"
            if s["seconds_to_99"]
            else f"never (0/{args.seeds})"
        )
        print(
            f"| {recipe} | {t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f}) | "
            f"{s['images_per_second']['median']:.0f} | {s['percent_of_fp32_peak']:.0f}% | "
            f"{a['median']:.4f} ({a['min']:.4f}-{a['max']:.4f}) | {to99} | "
            f"{s.get('train_time_ratio_to_tutorial', float('nan')):.2f}x | "
            f"{s.get('train_time_ratio_to_torch_peer', float('nan')):.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
