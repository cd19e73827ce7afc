"""One Adam update of the tutorial network's variables: Keras's Adam against FusedAdam.

    .venv/bin/python benchmarks/adam_step.py [--steps 200] [--rounds 3]
        [--output benchmarks/results/adam_step.json]

Each round times `--steps` updates (fixed random gradients, one compiled call per update) of
each optimizer in turn, after a warm-up call; reported: milliseconds per update, median of
the rounds. This is the update alone; in training it can overlap the backward pass
(benchmarks/README.md, "Fused Adam", times whole training runs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

from machine import git_commit, git_dirty  # benchmarks/machine.py

import mnist_cnn

mnist_cnn.enable_onednn()  # before TensorFlow loads, as training does

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from mnist_cnn.fused_adam import FusedAdam  # noqa: E402
from mnist_cnn.model import build_model  # noqa: E402


def timed_update(optimizer_class, steps: int) -> tuple:
    variables = build_model("channels_last").trainable_variables
    gradients = [tf.random.stateless_normal(v.shape, seed=(0, 1)) * 1e-3 for v in variables]
    optimizer = optimizer_class(learning_rate=1e-4)
    optimizer.build(variables)

    @tf.function
    def update():
        optimizer.apply_gradients(zip(gradients, variables, strict=True))

    update()  # trace and warm up

    def run() -> float:
        started = time.perf_counter()
        for _ in range(steps):
            update()
        return (time.perf_counter() - started) / steps * 1000

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="updates per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    runners = {"keras_adam": timed_update(keras.optimizers.Adam, args.steps)}
    runners["fused_adam"] = timed_update(FusedAdam, args.steps)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            samples[name].append(run())
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "steps": args.steps,
        "ms_per_update": {name: statistics.median(values) for name, values in samples.items()},
        "samples": samples,
    }
    for name, value in result["ms_per_update"].items():
        print(f"{name}: {value:.2f} ms per update (rounds: {samples[name]})")
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
