"""Predict on realistic digit pictures vs a naive resize, and single-image latency.

    python benchmarks/predict_realistic.py RUN_DIR [--count 400] [--seed 0] [--output F.json]

Accuracy: `count` pictures from tests/realistic.py (font digits and MNIST test digits as ink
on paper, varied canvas, placement, rotation, paper, noise, blur and encoding), written to
files and run through `predict_files`; the baseline decodes, converts to grayscale and resizes
straight to 28x28. Latency: median and spread of `--calls` single-image calls through
`Predictor.probabilities` (traced, compiled call), Keras `model.predict`, and `predict_files`
end to end (read, preprocess, predict) on one picture.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/realistic.py

from tests.realistic import generate_realistic_images, naive_resize  # noqa: E402

from mnist_cnn.data import load_mnist  # noqa: E402
from mnist_cnn.predict import Predictor, predict_files  # noqa: E402
from mnist_cnn.runtime import cpu_count, library_versions  # noqa: E402


def accuracy(predictor: Predictor, count: int, seed: int) -> dict:
    mnist = load_mnist()
    pictures = generate_realistic_images(count, seed, mnist.test.images, mnist.test.labels)
    labels = np.array([digit for _, _, digit in pictures])
    from_font = np.array(["_font_" in name for name, _, _ in pictures])
    with tempfile.TemporaryDirectory() as folder:
        for name, data, _ in pictures:
            (Path(folder) / name).write_bytes(data)
        started = time.perf_counter()
        results = predict_files(predictor, [folder])
        seconds = time.perf_counter() - started
    predicted = np.array([result.get("digit", -1) for result in results])
    naive = predictor.probabilities(np.stack([naive_resize(data) for _, data, _ in pictures]))
    naive_predicted = naive.argmax(axis=1)
    return {
        "images": count,
        "seed": seed,
        "accuracy": float(np.mean(predicted == labels)),
        "naive_resize_accuracy": float(np.mean(naive_predicted == labels)),
        "font_digits": int(from_font.sum()),
        "accuracy_font_digits": float(np.mean((predicted == labels)[from_font])),
        "accuracy_mnist_digits": float(np.mean((predicted == labels)[~from_font])),
        "naive_font_digits": float(np.mean((naive_predicted == labels)[from_font])),
        "naive_mnist_digits": float(np.mean((naive_predicted == labels)[~from_font])),
        "errors": sum("error" in result for result in results),
        "wrong": [
            r["file"].rsplit("/", 1)[-1]
            for r, y in zip(results, labels, strict=True)
            if r.get("digit") != y
        ],
        "predict_files_seconds_per_image": seconds / count,
    }


def _timed_ms(function, calls: int) -> dict:
    for _ in range(5):  # warm-up: tracing, first allocations
        function()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    quartiles = statistics.quantiles(times, n=4)
    return {"median_ms": statistics.median(times), "q1_ms": quartiles[0], "q3_ms": quartiles[2]}


def latency(predictor: Predictor, calls: int) -> dict:
    image = load_mnist().test.images[:1].astype(np.float32) / 255
    model_input = image[..., None]
    picture_name, picture, _ = generate_realistic_images(1, 7)[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / picture_name
        path.write_bytes(picture)
        end_to_end = _timed_ms(lambda: predict_files(predictor, [path]), calls)
    return {
        "calls": calls,
        "predictor_probabilities": _timed_ms(lambda: predictor.probabilities(image), calls),
        "keras_model_predict": _timed_ms(
            lambda: predictor.run.model.predict(model_input, verbose=0), calls
        ),
        "predict_files_one_picture": {"picture": picture_name, **end_to_end},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="run directory written by 'mnist-cnn train'")
    parser.add_argument("--count", type=int, default=400, help="realistic pictures (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="picture seed (default 0)")
    parser.add_argument("--calls", type=int, default=200, help="latency calls each (default 200)")
    parser.add_argument(
        "--backend", default="auto", help="Predictor backend: auto, tensorflow, onnxruntime"
    )
    parser.add_argument("--skip-accuracy", action="store_true", help="measure latency only")
    parser.add_argument("--output", help="also write the results to this JSON file")
    args = parser.parse_args()
    predictor = Predictor.from_dir(args.run_dir, backend=args.backend)
    results = {
        "run_dir": args.run_dir,
        "machine": f"{platform.machine()}, {cpu_count()} CPUs, {platform.processor() or '?'}",
        "versions": library_versions(),
        "backend": predictor.backend,
        "accuracy": None if args.skip_accuracy else accuracy(predictor, args.count, args.seed),
        "latency": latency(predictor, args.calls),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
