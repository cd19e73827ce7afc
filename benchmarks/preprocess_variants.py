"""Preprocessing variants side by side: the same pictures, the same model, paired counts.

    python benchmarks/preprocess_variants.py [--run DIR] \
        [--corpus corpus/tune_big --classes blur,canvas] [--mnist-scans 10000] \
        [--variant "no thickening:_WIDTH_MIN=0"] [--variant "no slant:deslant=off"] \
        [--peer-dir ../shared/peers] [--output benchmarks/results/preprocess_variants.json]

Pictures come from classes of a corpus written by `python -m benchmarks.corpus.make`, and/or
from `--mnist-scans N`: the first N MNIST test digits drawn dark on white paper and enlarged
3x, 4x or 6x, smoothly or blockily (in turn), the cleanest "scan" there is, so whatever a
variant costs or gains on them is the pipeline's own distortion. A variant sets constants of
`mnist_cnn.preprocess` (`NAME=VALUE`, a number; the constant must exist), or of another
preprocessing module (`blocky.NAME=VALUE` for `mnist_cnn.blocky`, `slant.NAME=VALUE` for
`mnist_cnn.slant`), or turns its slant correction off (`deslant=off`). Every picture goes
through the unchanged preprocessing (`base`), each variant, and the peer centre-of-mass
preprocessor (`../shared/peers/centre_of_mass_preprocess.py`, imported, never copied); the
likeliest digit of the run's model is scored (a refused picture counts as wrong). Per source
and variant: accuracy, pictures wrong, pictures the run leaves unanswered (its abstention, or
refused) and answers right, and against `base` the pictures it fixes and breaks, since on the
same pictures the difference is what a change does, not sampling noise between draws.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from machine import provenance  # benchmarks/machine.py
from PIL import Image
from real_world import read_manifest  # benchmarks/real_world.py

import mnist_cnn.blocky as blocky
import mnist_cnn.preprocess as preprocessing
import mnist_cnn.slant as slant
from mnist_cnn.data import load_mnist
from mnist_cnn.inference import Predictor
from mnist_cnn.packaged import packaged_run_dir

BASE, PEER = "base", "peer"
# MNIST scans: enlargements and resampling taken in turn, picture by picture.
SCAN_SCALES = (3, 4, 6)
SCAN_METHODS = (Image.Resampling.BICUBIC, Image.Resampling.NEAREST)
MNIST_SCANS = "mnist_scans"
# Modules whose constants a variant may set as MODULE.NAME (a bare NAME is preprocess's).
MODULES = {"preprocess": preprocessing, "blocky": blocky, "slant": slant}


def _target(key: str) -> tuple[object, str]:
    """'NAME' or 'MODULE.NAME' -> (module, NAME); exits naming an unknown module."""
    module, _, name = key.rpartition(".")
    if module and module not in MODULES:
        raise SystemExit(f"--variant: unknown module {module!r} in {key!r}, known: {list(MODULES)}")
    return MODULES[module or "preprocess"], name


def parse_variant(text: str) -> tuple[str, dict[str, float | str]]:
    """'NAME:CONST=VALUE,...' -> (NAME, settings); exits naming the bad part."""
    name, _, body = text.partition(":")
    if not name or not body or name in (BASE, PEER):
        raise SystemExit(f"--variant {text!r}: expected NAME:CONST=VALUE[,...], NAME not base/peer")
    settings: dict[str, float | str] = {}
    for item in body.split(","):
        key, _, value = item.partition("=")
        if key == "deslant":
            if value != "off":
                raise SystemExit(f"--variant {text!r}: deslant takes 'off', found {value!r}")
            settings[key] = value
            continue
        module, constant = _target(key)
        current = getattr(module, constant, None)
        if not isinstance(current, (int, float)) or isinstance(current, bool):
            raise SystemExit(f"--variant {text!r}: {key!r} is no numeric constant")
        try:
            settings[key] = float(value)
        except ValueError:
            raise SystemExit(f"--variant {text!r}: {key}={value!r} is not a number") from None
    return name, settings


class Settings:
    """Applies a variant's settings to the preprocessing modules, and puts the originals back."""

    def __init__(self, settings: dict[str, float | str]) -> None:
        self.settings = settings
        self.saved = {key: getattr(*_target(key)) for key in settings}

    def __enter__(self) -> None:
        for key, value in self.settings.items():
            module, constant = _target(key)
            if key == "deslant":
                setattr(module, constant, lambda crop: crop)
            else:
                kind = type(self.saved[key])
                setattr(module, constant, kind(value) if kind is int else value)

    def __exit__(self, *_: object) -> None:
        for key, value in self.saved.items():
            setattr(*_target(key), value)


def mnist_scans(count: int) -> tuple[list, np.ndarray]:
    """The first `count` MNIST test digits as grayscale scans (dark on white), and labels."""
    test = load_mnist().test
    pictures = []
    for index in range(count):
        scale = SCAN_SCALES[index % len(SCAN_SCALES)]
        method = SCAN_METHODS[(index // len(SCAN_SCALES)) % len(SCAN_METHODS)]
        image = Image.fromarray(255 - test.images[index]).resize((28 * scale, 28 * scale), method)
        pictures.append(np.asarray(image, dtype=np.float64) / 255.0)
    return pictures, test.labels[:count].astype(int)


def corpus_pictures(corpus: Path, classes: list[str]) -> dict[str, tuple[list, np.ndarray]]:
    rows = read_manifest(corpus)
    sources = {}
    for name in classes:
        members = [row for row in rows if row["class"] == name]
        if not members or members[0]["kind"] != "digit":
            raise SystemExit(f"{corpus}: no digit class {name!r} in manifest.csv")
        files = [str(corpus / row["file"]) for row in members]
        sources[name] = (files, np.array([int(row["label"]) for row in members]))
    return sources


def _ours(picture) -> np.ndarray | None:
    try:
        return preprocessing.preprocess(picture)
    except preprocessing.NoDigitError:
        return None  # refused: scored as wrong


def _peer(peer, picture) -> np.ndarray | None:
    if isinstance(picture, np.ndarray):  # a scan: the peer reads files, so give it a PNG
        buffer = io.BytesIO()
        Image.fromarray(np.round(picture * 255).astype(np.uint8)).save(buffer, "PNG")
        buffer.seek(0)
        picture = buffer
    return peer.mnistify(picture)


def run_variant(predictor, pictures, prepare) -> tuple[np.ndarray, np.ndarray, float]:
    """Likeliest digit per picture (-1 where refused), whether the run leaves it unanswered
    (refused, or its abstention), and the seconds preparing took."""
    start = time.perf_counter()
    images = [prepare(picture) for picture in pictures]
    seconds = time.perf_counter() - start
    present = [index for index, image in enumerate(images) if image is not None]
    likeliest = np.full(len(images), -1)
    unanswered = np.ones(len(images), dtype=bool)
    if present:  # one pass of the model: an answer carries its calibrated probabilities
        answers = predictor.answers(np.stack([images[index] for index in present]))
        likeliest[present] = [int(np.argmax(answer.probabilities)) for answer in answers]
        unanswered[present] = [answer.digit is None for answer in answers]
    return likeliest, unanswered, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a run directory (default: the packaged model)")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--classes", default="", help="comma-separated digit classes")
    parser.add_argument("--mnist-scans", type=int, default=0, metavar="N")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:SETTINGS")
    parser.add_argument("--peer-dir", type=Path, default=Path("../shared/peers"))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    variants = dict(parse_variant(text) for text in args.variant)
    classes = [name for name in args.classes.split(",") if name]
    if bool(classes) != bool(args.corpus):
        raise SystemExit("--corpus and --classes go together")
    if not classes and args.mnist_scans <= 0:
        raise SystemExit("nothing to measure: give --corpus with --classes, or --mnist-scans N")
    sys.path.insert(0, str(args.peer_dir))
    peer = importlib.import_module("centre_of_mass_preprocess")
    predictor = Predictor.from_dir(args.run or packaged_run_dir())
    sources = corpus_pictures(args.corpus, classes) if classes else {}
    if args.mnist_scans > 0:
        sources[MNIST_SCANS] = mnist_scans(args.mnist_scans)
    results = {}
    for source, (pictures, labels) in sources.items():
        base, unanswered, seconds = run_variant(predictor, pictures, _ours)
        rows = {BASE: (base, unanswered, seconds)}
        rows[PEER] = run_variant(predictor, pictures, lambda picture: _peer(peer, picture))
        for name, settings in variants.items():
            with Settings(settings):
                rows[name] = run_variant(predictor, pictures, _ours)
        results[source] = {}
        for name, (digits, unanswered, seconds) in rows.items():
            right = digits == labels
            results[source][name] = {
                "pictures": len(labels),
                "accuracy": float(right.mean()),
                "wrong": int((~right).sum()),
                "unanswered": int(unanswered.sum()),
                "answered_right": int((right & ~unanswered).sum()),
                "fixed": int((right & (base != labels)).sum()),
                "broken": int((~right & (base == labels)).sum()),
                "seconds": round(seconds, 1),
            }
            row = results[source][name]
            print(
                f"{source:22} {name:16} {100 * row['accuracy']:6.2f}%  wrong {row['wrong']:4}"
                f"  unanswered {row['unanswered']:4}  fixed {row['fixed']:3}"
                f"  broken {row['broken']:3}",
                flush=True,
            )
    if args.output:
        record = {
            **provenance(),
            "run": str(args.run or "packaged model"),
            "corpus": str(args.corpus) if args.corpus else None,
            "variants": {name: settings for name, settings in variants.items()},
            "results": results,
        }
        args.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
