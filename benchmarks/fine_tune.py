"""Fine-tuning on your own pictures: `train --images DIR --init-from RUN`, measured.

    .venv/bin/python benchmarks/fine_tune.py --base runs/tutorial --class printed_sans

Makes one corpus class twice (benchmarks/corpus): the `tune` split to fine-tune on (its
typeface set A, MNIST test digits < 5,000) and the `eval` split to measure on (typeface set
B, digits >= 5,000), so the held-out pictures are of the same kind but never trained on, not
even their typefaces. Arranges each as DIR/<digit>/, fine-tunes the base run, and reports,
for the base and the fine-tuned model: accuracy on the eval pictures (through predict's own
preprocessing; a picture refused as "no digit" counts as wrong) and on the 10,000 MNIST test
images. Results go to a JSON file.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from machine import cpu_model, git_commit, git_dirty  # benchmarks/machine.py

from mnist_cnn.data import PACKAGED_DIR
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import PreprocessError, preprocess

ROOT = Path(__file__).resolve().parent.parent


def make_class(split: str, class_name: str, per_class: int, out: Path) -> Path:
    """One split of one corpus class, arranged as out/<digit>/<file> (symlinks)."""
    corpus = out / f"{split}-corpus"
    command = [sys.executable, "-m", "benchmarks.corpus.make", "--split", split]
    command += ["--out", str(corpus), "--per-class", str(per_class), "--classes", class_name]
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    folder = out / split
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            target = folder / row["label"] / Path(row["file"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to((corpus / row["file"]).resolve())
    return folder


def folder_accuracy(run: Path, folder: Path) -> dict[str, float]:
    predictor = Predictor.from_dir(run)
    correct = refused = total = 0
    for digit_folder in sorted(folder.iterdir()):
        for picture in sorted(digit_folder.iterdir()):
            total += 1
            try:
                image = preprocess(str(picture))
            except PreprocessError:
                refused += 1
                continue
            probabilities = predictor.probabilities(image, calibrated=False)[0]
            correct += int(np.argmax(probabilities)) == int(digit_folder.name)
    return {"accuracy": correct / total, "refused": refused, "pictures": total}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the run to fine-tune (e.g. the tutorial)")
    parser.add_argument("--class", dest="class_name", default="printed_sans", help="corpus class")
    parser.add_argument("--per-class", type=int, default=300, help="pictures per split")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/fine_tune.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mnist-cnn-fine-tune-") as scratch:
        scratch = Path(scratch)
        tune = make_class("tune", args.class_name, args.per_class, scratch)
        evaluation = make_class("eval", args.class_name, args.per_class, scratch)
        tuned = scratch / "tuned"
        command = [sys.executable, "-m", "mnist_cnn.cli", "train", "--output", str(tuned)]
        command += ["--images", str(tune), "--init-from", args.base, "--no-report"]
        command += ["--epochs", str(args.epochs), "--learning-rate", str(args.learning_rate)]
        command += ["--batch-size", str(args.batch_size)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        results = {}
        for name, run in (("base", Path(args.base)), ("fine_tuned", tuned)):
            mnist = evaluate_run(run, data_dir=str(PACKAGED_DIR))
            results[name] = {
                "held_out_pictures": folder_accuracy(run, evaluation),
                "mnist_test_accuracy": mnist["test_accuracy"],
            }
        results["train_pictures"] = json.loads((tuned / "metrics.json").read_text())["train_images"]
    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_uncommitted_changes": git_dirty(),
        "cpu": cpu_model(),
        "settings": vars(args),
        "results": results,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(document, indent=2) + "\n")
    for name in ("base", "fine_tuned"):
        row = results[name]
        print(
            f"{name:>10}: {args.class_name} held out {row['held_out_pictures']['accuracy']:.4f} "
            f"({row['held_out_pictures']['pictures']} pictures), MNIST test "
            f"{row['mnist_test_accuracy']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
