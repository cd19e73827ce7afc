"""The dense layer's input gradient, timed alone: TensorFlow's MatMul gradient against ours.

    .venv/bin/python benchmarks/dense_gradient.py --rounds 3 \
        --output benchmarks/results/dense_gradient.json

The tutorial network's big layer maps 3,136 features to 1,024; backpropagation needs
`gradient @ kernel^T` for a batch of 32. TensorFlow's gradient of MatMul computes it as a
MatMul with `transpose_b`; `mnist_cnn.dense_gradient` as `(kernel @ gradient^T)^T`. Both
are timed in one process, inside `tf.function` as training runs them, with oneDNN on (as
`fast_kernels` trains) and in float32 and bfloat16; the forward product is timed beside them
for scale. Rounds alternate the variants; medians of the rounds are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from machine import provenance  # benchmarks/machine.py

BATCH, FEATURES, UNITS = 32, 3136, 1024  # the tutorial network's flatten -> dense(1024)
CALLS = 300  # calls per timing: about 0.5-2 s each, long against the timer's resolution
WARM_UP_CALLS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/dense_gradient.json")
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from mnist_cnn.dense_gradient import input_gradient  # what training runs

    random = tf.random.Generator.from_seed(0)
    flop = 2 * BATCH * FEATURES * UNITS
    variants = {}
    for dtype in (tf.float32, tf.bfloat16):
        inputs = tf.cast(random.uniform((BATCH, FEATURES)), dtype)
        kernel = tf.Variable(tf.cast(random.normal((FEATURES, UNITS)), dtype))  # as in training
        upstream = tf.cast(random.uniform((BATCH, UNITS)), dtype)
        name = dtype.name
        variants[f"{name} forward: inputs @ kernel"] = lambda a=inputs, b=kernel: tf.matmul(a, b)
        variants[f"{name} input gradient, TensorFlow's: gradient @ kernel^T"] = (
            lambda g=upstream, b=kernel: tf.matmul(g, b, transpose_b=True)
        )
        variants[f"{name} input gradient, ours: (kernel @ gradient^T)^T"] = (
            lambda g=upstream, b=kernel: input_gradient(g, b)
        )
    compiled = {name: tf.function(function) for name, function in variants.items()}
    samples = {name: [] for name in compiled}
    for _ in range(args.rounds):
        for name, function in compiled.items():
            for _ in range(WARM_UP_CALLS):
                function()
            started = time.perf_counter()
            for _ in range(CALLS):
                result = function()
            result.numpy()  # wait for the last call
            samples[name].append((time.perf_counter() - started) / CALLS)
    summary = {}
    for name, seconds in samples.items():
        median = statistics.median(seconds)
        summary[name] = {
            "milliseconds_median": median * 1e3,
            "milliseconds": [s * 1e3 for s in seconds],
            "gflop_per_second": flop / median / 1e9,
        }
        print(f"{name:58s} {median * 1e3:6.2f} ms {flop / median / 1e9:6.1f} GFLOP/s")
    document = {
        **provenance(),
        "tensorflow": tf.__version__,
        "onednn": os.environ["TF_ENABLE_ONEDNN_OPTS"],
        "shape": {"batch": BATCH, "features": FEATURES, "units": UNITS},
        "summary": summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
