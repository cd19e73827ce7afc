"""Training throughput levers on the TensorFlow backend, side by side: oneDNN, input pipeline.

    .venv/bin/python benchmarks/train_step_levers.py --rounds 3

Each configuration trains the tutorial network for `--images` random images in a fresh process
(TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at import), configurations alternating round by
round. Reported per configuration: images/s and CPU use (process CPU seconds per wall second;
2.0 means both cores busy), medians and every sample, to `results/train_step_levers.json`.

- `onednn`: TF_ENABLE_ONEDNN_OPTS=1 (set by `fast_kernels`) or 0 (TensorFlow's default on
  CPUs without AVX-512 VNNI/BF16 or AMX, such as this AMD EPYC; the tutorial recipe's path).
- `pipeline`: `keras` is `fit(x, y)` on NumPy arrays (Keras builds an autotuned tf.data
  pipeline) compiled with XLA, as the tutorial recipe trains; `mnist_cnn` is
  `runtime.training_batches` (one private thread, no autotuning) without XLA, as
  `fast_kernels` trains.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import git_commit, git_dirty  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = [
    {"onednn": "0", "pipeline": "keras", "batch_size": 32},
    {"onednn": "1", "pipeline": "keras", "batch_size": 32},
    {"onednn": "1", "pipeline": "mnist_cnn", "batch_size": 32},
    {"onednn": "0", "pipeline": "keras", "batch_size": 256},
    {"onednn": "1", "pipeline": "keras", "batch_size": 256},
    {"onednn": "1", "pipeline": "mnist_cnn", "batch_size": 256},
]


def worker(config: dict, images: int) -> None:
    """Train `images` random images once after a warm-up; print one JSON line."""
    import numpy as np

    from mnist_cnn import runtime  # TF_ENABLE_ONEDNN_OPTS comes from the parent, per config
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.model import build_model
    from mnist_cnn.train import compile_model

    runtime.configure(0)
    batch = config["batch_size"]
    rng = np.random.default_rng(0)
    x = rng.random((images, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, images)]
    model = build_model("channels_last")
    fast = config["pipeline"] == "mnist_cnn"  # fast_kernels: in-memory batches, no XLA
    settings = TrainConfig(batch_size=batch, learning_rate=1e-3, fast_kernels=fast)
    compile_model(model, settings, images // batch)
    model.fit(x[: batch * 10], y[: batch * 10], batch_size=batch, verbose=0)  # warm-up
    if config["pipeline"] == "mnist_cnn":
        data = {"x": runtime.training_batches(x, y, batch, 0)}
    else:
        data = {"x": x, "y": y, "batch_size": batch}
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(**data, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"images_per_second": images / wall, "cpu_use": cpu / wall}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=12800, help="timed images per run")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/train_step_levers.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker), args.images)
        return 0

    samples: list[list[dict]] = [[] for _ in CONFIGS]
    for round_number in range(args.rounds):
        for index, config in enumerate(CONFIGS):
            environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": config["onednn"]}
            completed = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--images",
                    str(args.images),
                    "--worker",
                    json.dumps(config),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=environment,
            )
            sample = json.loads(completed.stdout.strip().splitlines()[-1])
            samples[index].append(sample)
            print(
                f"round {round_number}: {config} {sample['images_per_second']:6.0f} img/s "
                f"cpu {sample['cpu_use']:.2f}",
                flush=True,
            )

    rows = []
    for config, runs in zip(CONFIGS, samples, strict=True):
        rates = [run["images_per_second"] for run in runs]
        rows.append(
            {
                **config,
                "images_per_second_median": statistics.median(rates),
                "cpu_use_median": statistics.median(run["cpu_use"] for run in runs),
                "samples": runs,
            }
        )
    result = {
        "benchmark": "train_step_levers",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "images_per_run": args.images,
        "rounds": args.rounds,
        "configs": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| oneDNN | pipeline | batch | images/s (median) | min-max | CPU use (median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        rates = [run["images_per_second"] for run in row["samples"]]
        print(
            f"| {row['onednn']} | {row['pipeline']} | {row['batch_size']} | "
            f"{row['images_per_second_median']:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | "
            f"{row['cpu_use_median']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
