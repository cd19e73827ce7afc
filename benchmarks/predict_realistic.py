"""Predict on realistic digit pictures vs a naive resize, and single-image latency.

    python benchmarks/predict_realistic.py RUN_DIR [RUN_DIR ...] [--count 400] [--seed 0]
        [--seeds 1] [--skip-latency] [--output F.json]

Accuracy: for each picture seed (`--seed` to `--seed + --seeds - 1`), `count` pictures from
tests/realistic.py (font digits and MNIST test digits as ink on paper, varied canvas, placement,
rotation, paper, noise, blur and encoding), written to files once and run through
`predict_files` for every run; the baseline decodes, converts to grayscale and resizes straight
to 28x28. Each run also gets its accuracy on the MNIST test digits those pictures were made
from, as they are and rotated by the same angles range (up to 15 degrees), which bounds what
preprocessing can recover. Latency (first run only): median and spread of `--calls`
single-image calls through `Predictor.probabilities`, Keras `model.predict`, and
`predict_files` end to end (read, preprocess, predict) on one picture.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/realistic.py

from machine import git_commit, git_dirty  # noqa: E402  (benchmarks/machine.py)
from tests.realistic import generate_realistic_images, naive_resize  # noqa: E402

from mnist_cnn.data import load_mnist  # noqa: E402
from mnist_cnn.inference import Predictor, load_keras_model  # noqa: E402
from mnist_cnn.predict import predict_files  # noqa: E402
from mnist_cnn.runtime import cpu_count, library_versions  # noqa: E402


def accuracy(predictor: Predictor, pictures: list, folder: Path) -> dict:
    """Accuracy of `predict_files` on the pictures already written to `folder`."""
    labels = np.array([digit for _, _, digit in pictures])
    from_font = np.array(["_font_" in name for name, _, _ in pictures])
    started = time.perf_counter()
    results = predict_files(predictor, [folder])
    seconds = time.perf_counter() - started
    by_name = {Path(r["file"]).name: r for r in results}
    predicted = np.array([by_name[name].get("digit", -1) for name, _, _ in pictures])
    naive = predictor.probabilities(np.stack([naive_resize(data) for _, data, _ in pictures]))
    naive_predicted = naive.argmax(axis=1)
    right, naive_right = predicted == labels, naive_predicted == labels
    return {
        "images": len(pictures),
        "accuracy": float(right.mean()),
        "naive_resize_accuracy": float(naive_right.mean()),
        "font_digits": int(from_font.sum()),
        "accuracy_font_digits": float(right[from_font].mean()),
        "accuracy_mnist_digits": float(right[~from_font].mean()),
        "naive_font_digits": float(naive_right[from_font].mean()),
        "naive_mnist_digits": float(naive_right[~from_font].mean()),
        "errors": sum("error" in result for result in results),
        "no_digit_found": sum(
            "error" not in result and result["probabilities"] is None for result in results
        ),
        "wrong": [
            f"{name} read as {digit}"
            for (name, _, _), digit, ok in zip(pictures, predicted, right, strict=True)
            if not ok
        ],
        "predict_files_seconds_per_image": seconds / len(pictures),
    }


def mnist_source_accuracy(predictor: Predictor, pictures: list, seed: int, mnist) -> dict:
    """The model on the MNIST test digits behind the pictures: as they are, and rotated."""
    index = [
        int(name.split("_mnist")[1].split("_")[0]) for name, _, _ in pictures if "_mnist" in name
    ]
    images = mnist.test.images[index].astype(np.float32) / 255
    labels = mnist.test.labels[index]
    rng = np.random.default_rng(seed)
    rotated = np.stack(
        [
            np.asarray(
                Image.fromarray(image, "F").rotate(float(rng.uniform(-15, 15)), Image.BILINEAR)
            )
            for image in images
        ]
    )
    return {
        "digits": len(index),
        "as_they_are": float(np.mean(predictor.probabilities(images).argmax(1) == labels)),
        "rotated_up_to_15_degrees": float(
            np.mean(predictor.probabilities(rotated).argmax(1) == labels)
        ),
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
    keras_model = load_keras_model(predictor.run)
    return {
        "calls": calls,
        "predictor_probabilities": _timed_ms(lambda: predictor.probabilities(image), calls),
        "keras_model_predict": _timed_ms(
            lambda: keras_model.predict(model_input, verbose=0), calls
        ),
        "predict_files_one_picture": {"picture": picture_name, **end_to_end},
    }


def _pooled(samples: list[dict], key: str) -> float:
    return sum(x[key] * x["images"] for x in samples) / sum(x["images"] for x in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", help="run directories written by 'mnist-cnn train'")
    parser.add_argument("--count", type=int, default=400, help="pictures per seed (default 400)")
    parser.add_argument("--seed", type=int, default=0, help="first picture seed (default 0)")
    parser.add_argument("--seeds", type=int, default=1, help="picture seeds (default 1)")
    parser.add_argument("--calls", type=int, default=200, help="latency calls each (default 200)")
    parser.add_argument(
        "--backend", default="auto", help="Predictor backend: auto, tensorflow, onnxruntime"
    )
    parser.add_argument("--skip-accuracy", action="store_true", help="measure latency only")
    parser.add_argument("--skip-latency", action="store_true", help="measure accuracy only")
    parser.add_argument("--output", help="also write the results to this JSON file")
    args = parser.parse_args()
    predictors = {run: Predictor.from_dir(run, backend=args.backend) for run in args.run_dirs}
    runs = {
        run: {"backend": p.backend, "config": p.run.config.to_dict(), "samples": []}
        for run, p in predictors.items()
    }
    mnist = load_mnist()
    for seed in [] if args.skip_accuracy else range(args.seed, args.seed + args.seeds):
        pictures = generate_realistic_images(args.count, seed, mnist.test.images, mnist.test.labels)
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            for file_name, data, _ in pictures:
                (folder / file_name).write_bytes(data)
            for run, predictor in predictors.items():
                sample = {"seed": seed, **accuracy(predictor, pictures, folder)}
                sample["mnist_sources"] = mnist_source_accuracy(predictor, pictures, seed, mnist)
                runs[run]["samples"].append(sample)
    for result in runs.values():
        if result["samples"]:
            keys = ["accuracy", "naive_resize_accuracy", "accuracy_font_digits"]
            keys += ["accuracy_mnist_digits"]
            result["pooled"] = {key: _pooled(result["samples"], key) for key in keys}
    first = predictors[args.run_dirs[0]]
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "machine": f"{platform.machine()}, {cpu_count()} CPUs, {platform.processor() or '?'}",
        "versions": library_versions(),
        "pictures_per_seed": args.count,
        "runs": runs,
        "latency": None
        if args.skip_latency
        else {"run": args.run_dirs[0], **latency(first, args.calls)},
    }
    text = json.dumps(results, indent=2, default=str)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print(
        "| run | test accuracy | pictures | predict | naive resize | font digits | MNIST digits |"
        " MNIST sources rotated |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run, result in runs.items():
        if not result["samples"]:
            continue
        pooled, samples = result["pooled"], result["samples"]
        per_seed = ", ".join(f"{x['accuracy']:.4f}" for x in samples)
        sources = [x["mnist_sources"] for x in samples]
        rotated = sum(x["rotated_up_to_15_degrees"] * x["digits"] for x in sources) / sum(
            x["digits"] for x in sources
        )
        metrics = Path(run) / "metrics.json"
        test = (
            json.loads(metrics.read_text())["test_accuracy"] if metrics.is_file() else float("nan")
        )
        print(
            f"| {run} | {test:.4f} | {sum(x['images'] for x in samples)} | {pooled['accuracy']:.4f}"
            f" ({per_seed}) | {pooled['naive_resize_accuracy']:.4f} |"
            f" {pooled['accuracy_font_digits']:.4f} | {pooled['accuracy_mnist_digits']:.4f} |"
            f" {rotated:.4f} |"
        )


if __name__ == "__main__":
    main()
