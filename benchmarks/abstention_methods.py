"""Which score should decide "not a digit"? Every candidate, one model, one corpus split.

    python benchmarks/abstention_methods.py --corpus corpus/tune --run runs/robust
        [--output benchmarks/results/abstention_methods_tune.json]

Scores (higher = less digit-like), all from the same network on the same preprocessed
pictures; the penultimate features and logits come from the run's Keras model:
- `max_softmax`: 1 - max probability, the baseline (Hendrycks & Gimpel, 2017);
- `calibrated_max`: the same after the run's temperature (what predict abstains on);
- `energy`: -logsumexp(logits) (Liu et al., 2020); `max_logit`: -max logit;
- `mahalanobis_all` / `mahalanobis_top128`: squared distance to the nearest class mean under
  the shared within-class covariance of the training images' features (Lee et al., 2018),
  all 1,024 directions (ridge 1e-2) or the top 128;
- `outlier_head`: logistic regression on the features, digits (clean and capture-augmented
  training images) against outliers made from MNIST training images only (patch-shuffled,
  two digits overlaid, mirrored non-symmetric digits, filled blobs, fragments).
For each: AUROC digits vs each non-digit class (refused pictures count as least digit-like),
and the share of each non-digit class left unanswered at the threshold that leaves 2% of
the digit pictures unanswered (the shipped thresholds' figures come from real_world.py).
Tune split: used to choose; eval split: to report.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from real_world import auroc
from scipy.ndimage import grey_dilation
from scipy.optimize import minimize
from scipy.special import logsumexp

from mnist_cnn.data import load_mnist
from mnist_cnn.inference import Predictor, load_keras_model
from mnist_cnn.preprocess import NoDigitError, PreprocessError, preprocess, to_mnist

DIGIT_NULL_BUDGET = 0.02  # share of digit pictures allowed unanswered (the bound)
TRAIN_FEATURES = 20000  # training images whose features fit the class means and covariance
OUTLIERS = 6000  # synthetic outliers for the outlier head (before preprocessing drops some)
HEAD_L2 = 1e-2  # the head's weight decay on standardised features


def features_and_logits(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import keras

    dense, last = model.get_layer("dense"), model.get_layer("probabilities")
    extractor = keras.Model(model.inputs, dense.output)
    features = extractor.predict(images[..., None], batch_size=1000, verbose=0).astype(float)
    weights, bias = last.get_weights()
    return features, features @ weights + bias


def mahalanobis(train_features, train_labels, components: int | None, ridge: float):
    means = np.stack([train_features[train_labels == digit].mean(0) for digit in range(10)])
    centred = train_features - means[train_labels]
    values, vectors = np.linalg.eigh(centred.T @ centred / len(centred))
    if components is not None:
        values, vectors = values[-components:], vectors[:, -components:]
    whitening = vectors / np.sqrt(values + ridge)
    centres = means @ whitening

    def score(features):
        projected = features @ whitening
        squared = (
            (projected**2).sum(1, keepdims=True) - 2 * projected @ centres.T + (centres**2).sum(1)
        )
        return squared.min(1)

    return score


def synthetic_outliers(images, labels, count: int, seed: int = 0) -> np.ndarray:
    """Non-digits made from MNIST training digits, framed by the real preprocessor."""
    generator = np.random.default_rng(seed)
    made = []
    for first, second in generator.integers(0, len(images), size=(count, 2)):
        digit, kind = images[first], generator.integers(0, 5)
        if kind == 0:  # 16 patches of 7x7, shuffled
            patches = digit.reshape(4, 7, 4, 7).transpose(0, 2, 1, 3).reshape(16, 7, 7)
            patches = patches[generator.permutation(16)]
            picture = patches.reshape(4, 4, 7, 7).transpose(0, 2, 1, 3).reshape(28, 28)
        elif kind == 1 and labels[first] != labels[second]:  # two digits on top of each other
            shift = generator.integers(-6, 7)
            picture = np.clip(digit + np.roll(images[second], shift, axis=1), 0, 1)
        elif kind == 2 and labels[first] not in (0, 1, 8):  # mirrored: no longer a digit
            picture = digit[:, ::-1]
        elif kind == 3:  # a filled blob
            picture = grey_dilation(digit, size=(7, 7))
        elif kind == 4:  # a quarter of a digit
            row, column = generator.integers(0, 14, size=2)
            picture = np.zeros_like(digit)
            picture[row : row + 14, column : column + 14] = digit[
                row : row + 14, column : column + 14
            ]
        else:
            continue
        paper = Image.fromarray((255 - picture * 255).astype(np.uint8)).resize((84, 84))
        try:
            made.append(to_mnist(np.asarray(paper, np.float32) / 255))
        except PreprocessError:
            continue
    return np.stack(made)


def capture_augmented(images: np.ndarray, seed: int) -> np.ndarray:
    """The robust recipe's training augmentation applied once to float (N, 28, 28) images."""
    from mnist_cnn.augment import augmenter
    from mnist_cnn.config import recipe_config

    layer = augmenter(recipe_config("robust", seed=seed))
    return np.clip(np.asarray(layer(images[..., None], training=True))[..., 0], 0, 1)


def outlier_head(digit_features, outlier_features):
    inputs = np.concatenate([digit_features, outlier_features])
    targets = np.concatenate([np.zeros(len(digit_features)), np.ones(len(outlier_features))])
    mean, spread = inputs.mean(0), inputs.std(0) + 1e-6
    standard = (inputs - mean) / spread

    def loss(weights):
        logits = standard @ weights[:-1] + weights[-1]
        error = 1 / (1 + np.exp(-logits)) - targets
        value = np.mean(np.logaddexp(0, logits) - targets * logits)
        value += HEAD_L2 * np.sum(weights[:-1] ** 2) / 2
        gradient = np.concatenate(
            [standard.T @ error / len(targets) + HEAD_L2 * weights[:-1], [error.mean()]]
        )
        return value, gradient

    start = np.zeros(inputs.shape[1] + 1)
    weights = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 300}).x
    return lambda features: ((features - mean) / spread) @ weights[:-1] + weights[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    rows = list(csv.DictReader((args.corpus / "manifest.csv").open(encoding="utf-8")))
    pictures, refused = [], []
    for row in rows:
        try:
            pictures.append(preprocess(str(args.corpus / row["file"])))
            refused.append(False)
        except NoDigitError:
            pictures.append(np.zeros((28, 28), np.float32))
            refused.append(True)
    refused, pictures = np.array(refused), np.stack(pictures)
    classes = np.array([row["class"] for row in rows])
    is_digit = np.array([row["kind"] == "digit" for row in rows])

    predictor = Predictor.from_dir(args.run)
    model = load_keras_model(predictor.run)
    train = load_mnist(predictor.run.config.data_dir).train
    held_out = predictor.run.config.validation_images
    train_images = train.images[: len(train.images) - held_out].astype(np.float32) / 255
    train_labels = train.labels[: len(train.images) - held_out]
    train_features, _ = features_and_logits(model, train_images[:TRAIN_FEATURES])
    features, logits = features_and_logits(model, pictures)
    raw = predictor.probabilities(pictures, calibrated=False)
    calibrated = predictor.probabilities(pictures)

    digits_for_head = np.concatenate(
        [train_images[:3000], capture_augmented(train_images[3000:6000], seed=1)]
    )
    outliers = synthetic_outliers(train_images, train_labels, OUTLIERS)
    head = outlier_head(
        features_and_logits(model, digits_for_head)[0], features_and_logits(model, outliers)[0]
    )
    labels_for_means = train_labels[:TRAIN_FEATURES]
    scores = {
        "max_softmax": 1 - raw.max(1),
        "calibrated_max": 1 - calibrated.max(1),
        "energy": -logsumexp(logits, axis=1),
        "max_logit": -logits.max(1),
        "mahalanobis_all": mahalanobis(train_features, labels_for_means, None, 1e-2)(features),
        "mahalanobis_top128": mahalanobis(train_features, labels_for_means, 128, 1e-6)(features),
        "outlier_head": head(features),
    }
    nondigit_classes = sorted(set(classes[~is_digit]))
    results = {"corpus": str(args.corpus), "run": args.run, "methods": {}}
    for name, score in scores.items():
        score = np.where(refused, np.inf, score)
        threshold = np.quantile(score[is_digit], 1 - DIGIT_NULL_BUDGET)
        results["methods"][name] = {
            "auroc": {c: auroc(score[is_digit], score[classes == c]) for c in nondigit_classes},
            "null_at_2pct_digits": {
                c: float(np.mean(score[classes == c] > threshold)) for c in nondigit_classes
            },
            "all_nondigits_null_at_2pct_digits": float(np.mean(score[~is_digit] > threshold)),
        }
        shown = {c: round(v, 3) for c, v in results["methods"][name]["auroc"].items()}
        share = results["methods"][name]["all_nondigits_null_at_2pct_digits"]
        print(f"{name:20s} AUROC {shown}  non-digits null at 2% digits null: {share:.3f}")
    if args.output is not None:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
