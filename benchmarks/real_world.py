"""Real-world accuracy, "no digit" and "not a digit", per capture class of a corpus.

    python benchmarks/real_world.py --corpus corpus/eval --run runs/robust [--run DIR ...]
        [--peer-dir ../shared/peers] [--output benchmarks/results/real_world.json]

The corpus is one written by `python -m benchmarks.corpus.make` (a folder per class and a
manifest.csv). For each run, every picture goes through mnist-cnn's preprocessing and the
run's answers (calibrated, with its abstention), and, on the same model, through the peer
centre-of-mass preprocessor (`../shared/peers/centre_of_mass_preprocess.py`, imported, never
copied) and a plain resize to 28x28. Reported per class:
- digits: `accuracy` (the likeliest digit is right; a refused picture counts as wrong),
  `no_digit` (preprocessing found no ink), `null` (no answer: no ink, not a digit, not sure),
  `answered_accuracy`, the peer's and the resize's accuracy, the commonest misreadings;
- non-digits: `null` (the share correctly left unanswered);
- AUROC, digits against each non-digit class, for the max-softmax baseline (uncalibrated),
  the calibrated max probability and the energy (what a calibrated run abstains on, with
  the calibrated max probability; other scores are compared
  in benchmarks/abstention_methods.py); pictures that preprocessing refuses are scored as
  the least digit-like (they get no answer either way);
- ECE (15 bins) on the corpus digits before and after the temperature.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib
import json
import sys
from pathlib import Path

import numpy as np
from machine import git_commit, git_dirty  # benchmarks/machine.py
from PIL import Image

from mnist_cnn import calibrate
from mnist_cnn.abstain import energy
from mnist_cnn.decode import load_image
from mnist_cnn.inference import Predictor
from mnist_cnn.preprocess import NoDigitError, PreprocessError, preprocess

PRINTED_PREFIX = "printed"  # classes named printed_* are typefaces; the others handwriting
CONFUSIONS_KEPT = 5  # misreadings listed per digit class: enough to name a failure class


def read_manifest(corpus: Path) -> list[dict[str, str]]:
    with (corpus / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def plain_resize(path: Path) -> np.ndarray:
    """Decode, gray, resize straight to 28x28, dark-on-light inverted by the border."""
    gray = load_image(str(path))  # 2-D float in [0, 1], transparency flattened onto white
    small = np.asarray(
        Image.fromarray((gray * 255).astype(np.uint8)).resize((28, 28), Image.Resampling.BOX),
        dtype=np.float32,
    ) / np.float32(255)
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    return 1.0 - small if np.median(border) > 0.5 else small


def auroc(digit_scores: np.ndarray, other_scores: np.ndarray) -> float:
    """P(a non-digit scores above a digit), ties counted half (Mann-Whitney U)."""
    scores = np.concatenate([digit_scores, other_scores])
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks over ties
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    other_ranks = ranks[len(digit_scores) :].sum()
    count = len(other_scores)
    return float((other_ranks - count * (count + 1) / 2) / (count * len(digit_scores)))


def prepare(rows: list[dict], corpus: Path, peer) -> dict[str, list]:
    """Every picture through the three preprocessors (None where one refuses it)."""
    ours, peers, resized, refusals = [], [], [], []
    for row in rows:
        path = corpus / row["file"]
        try:
            ours.append(preprocess(str(path)))
            refusals.append(None)
        except NoDigitError as error:
            ours.append(None)
            refusals.append(str(error))
        except PreprocessError as error:
            raise SystemExit(f"{path}: {error}") from None
        peer_image = peer.mnistify(str(path))
        peers.append(None if peer_image is None else np.asarray(peer_image, np.float32))
        resized.append(plain_resize(path))
    return {"ours": ours, "peer": peers, "resize": resized, "refusals": refusals}


def likeliest_digits(predictor: Predictor, images: list) -> np.ndarray:
    """Likeliest digit per image, -1 where the preprocessor refused it."""
    present = [index for index, image in enumerate(images) if image is not None]
    predicted = np.full(len(images), -1)
    if present:
        probabilities = predictor.probabilities(np.stack([images[i] for i in present]))
        predicted[present] = probabilities.argmax(axis=1)
    return predicted


def _confusions(labels: np.ndarray, likeliest: np.ndarray) -> list[dict]:
    """The commonest misreadings, {"digit", "read_as", "pictures"}, most frequent first
    (`read_as` -1: refused as "no digit")."""
    wrong = labels != likeliest
    pairs, counts = np.unique(
        np.stack([labels[wrong], likeliest[wrong]]), axis=1, return_counts=True
    )
    order = np.argsort(-counts, kind="stable")[:CONFUSIONS_KEPT]
    return [
        {"digit": int(pairs[0, i]), "read_as": int(pairs[1, i]), "pictures": int(counts[i])}
        for i in order
    ]


def evaluate(predictor: Predictor, rows: list[dict], prepared: dict) -> dict:
    count = len(rows)
    kinds = np.array([row["kind"] for row in rows])
    classes = np.array([row["class"] for row in rows])
    labels = np.array([int(row["label"]) if row["label"] else -1 for row in rows])
    present = [index for index, image in enumerate(prepared["ours"]) if image is not None]
    stacked = np.stack([prepared["ours"][i] for i in present])
    answers = predictor.answers(stacked)
    raw, logits = predictor.outputs(stacked)  # uncalibrated; logits None for old exports
    digit = np.full(count, -1)
    null = np.ones(count, dtype=bool)  # refused pictures are unanswered
    likeliest = np.full(count, -1)
    msp = np.full(count, -np.inf)  # digit-likeness scores, higher = more digit-like
    calibrated = np.full(count, -np.inf)
    negative_energy = np.full(count, -np.inf)
    if logits is not None:  # None: a model exported before logits were
        negative_energy[present] = -energy(logits)
    calibrated_rows = np.zeros((count, 10))
    for index, answer, raw_row in zip(present, answers, raw, strict=True):
        null[index] = answer.digit is None
        digit[index] = -1 if answer.digit is None else answer.digit
        likeliest[index] = int(np.argmax(answer.probabilities))
        msp[index] = float(raw_row.max())
        calibrated[index] = answer.confidence
        calibrated_rows[index] = answer.probabilities
    peer = likeliest_digits(predictor, prepared["peer"])
    resize = likeliest_digits(predictor, prepared["resize"])
    refused = np.array([refusal is not None for refusal in prepared["refusals"]])
    scored = [("max_softmax", msp), ("calibrated_max", calibrated)]
    if logits is not None:
        scored.append(("energy", negative_energy))
    per_class = {}
    is_digit = kinds == "digit"
    for name in sorted(set(classes)):
        members = classes == name
        if kinds[members][0] == "digit":
            answered = members & ~null
            per_class[name] = {
                "kind": "digit",
                "images": int(members.sum()),
                "accuracy": float((likeliest[members] == labels[members]).mean()),
                "no_digit": float(refused[members].mean()),
                "null": float(null[members].mean()),
                "answered_accuracy": float((digit[answered] == labels[answered]).mean())
                if answered.any()
                else None,
                "peer_accuracy": float((peer[members] == labels[members]).mean()),
                "resize_accuracy": float((resize[members] == labels[members]).mean()),
                "confusions": _confusions(labels[members], likeliest[members]),
            }
        else:
            per_class[name] = {
                "kind": "nondigit",
                "images": int(members.sum()),
                "null": float(null[members].mean()),
                "no_digit": float(refused[members].mean()),
                "auroc": {
                    score_name: auroc(-scores[is_digit], -scores[members])
                    for score_name, scores in scored
                },
            }
    printed = is_digit & np.char.startswith(classes.astype(str), PRINTED_PREFIX)
    handwriting = is_digit & ~printed
    answered_digits = is_digit & ~refused
    raw_rows = np.zeros((count, 10))
    raw_rows[present] = raw
    summary = {
        "printed_accuracy": float((likeliest[printed] == labels[printed]).mean()),
        "handwriting_accuracy": float((likeliest[handwriting] == labels[handwriting]).mean()),
        "digit_no_digit": float(refused[is_digit].mean()),
        "digit_null": float(null[is_digit].mean()),
        "nondigit_null": float(null[~is_digit].mean()),
        "corpus_ece_before": calibrate.expected_calibration_error(
            raw_rows[answered_digits], labels[answered_digits]
        ),
        "corpus_ece_after": calibrate.expected_calibration_error(
            calibrated_rows[answered_digits], labels[answered_digits]
        ),
    }
    return {"summary": summary, "classes": per_class}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="folder with manifest.csv")
    parser.add_argument("--run", action="append", required=True, help="run directory (repeat)")
    default_peers = Path(__file__).resolve().parents[2] / "shared" / "peers"
    parser.add_argument("--peer-dir", type=Path, default=default_peers)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.peer_dir))
    peer = importlib.import_module("centre_of_mass_preprocess")
    rows = read_manifest(args.corpus)
    prepared = prepare(rows, args.corpus, peer)
    results = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "corpus": str(args.corpus),
        "pictures": len(rows),
        "runs": {},
    }
    for run_dir in args.run:
        report = evaluate(Predictor.from_dir(run_dir), rows, prepared)
        results["runs"][run_dir] = report
        print(f"== {run_dir}")
        print(json.dumps(report["summary"], indent=1))
        for name, figures in report["classes"].items():
            shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}
            print(f"  {name}: {shown}")
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
