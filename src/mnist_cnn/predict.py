"""Predict the digits in image files, directories and globs: `predict_files(predictor, paths)`.

No TensorFlow here: the model runs through inference.Predictor (ONNX Runtime for any run that
carries model.onnx).
"""

from __future__ import annotations

import glob
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import files
from mnist_cnn.abstain import no_digit_answer
from mnist_cnn.data import DIGITS, IMAGE_SIZE, NUM_CLASSES
from mnist_cnn.inference import Predictor

logger = logging.getLogger(__name__)

# Suffixes taken from a directory argument; files named one by one (or by a glob) are tried
# whatever their suffix, and preprocess decides whether they are images.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
_GLOB_CHARACTERS = frozenset("*?[")
# Pictures per model call. One call for all of 8,000 files held their activations at once
# (1.2 GB; the first convolution's output alone is 100 KB a picture, so 25 MB for 256).
MODEL_BATCH = 256


@dataclass(frozen=True)
class FileEntry:
    """One file to predict, or an argument that yielded none (`error` says why)."""

    file: str  # as the user will read it: the argument, or the path found under it
    error: str | None = None


def expand_paths(paths: Iterable[str | Path]) -> list[FileEntry]:
    """Files, directories (their images, sorted, not recursive) and globs -> one item per file.

    An argument that yields nothing (missing path, empty directory, glob matching nothing)
    becomes an item carrying the error, so it is reported in place.
    """
    items: list[FileEntry] = []
    for argument in map(str, paths):
        items.extend(_expand(argument))
    seen: set[str] = set()  # a file named twice (a folder and a glob over it) is predicted once
    unique = []
    for item in items:
        key = os.path.realpath(item.file) if item.error is None else item.file
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _expand(argument: str) -> list[FileEntry]:
    if not argument:
        return [FileEntry(argument, "empty argument (no file name)")]  # Path("") is "."
    try:
        return _expand_path(argument)
    except OSError as error:  # a name too long for the file system, and the like
        return [FileEntry(argument, f"cannot read ({error.strerror or error})")]


def _expand_path(argument: str) -> list[FileEntry]:
    path = Path(argument)
    if path.is_dir():
        try:
            found = sorted(
                child
                for child in path.iterdir()
                if child.suffix.lower() in IMAGE_SUFFIXES
                and not child.name.startswith(".")
                and child.is_file()
            )
        except OSError as error:
            return [FileEntry(argument, f"cannot list directory ({error.strerror})")]
        if not found:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            return [FileEntry(argument, f"directory holds no images ({suffixes})")]
        return [FileEntry(str(child)) for child in found]
    if path.exists():
        return [FileEntry(argument)]
    if _GLOB_CHARACTERS & set(argument):
        matches = sorted(glob.glob(argument, recursive=True))
        if not matches:
            return [FileEntry(argument, "no file matches this pattern")]
        return [entry for match in matches for entry in _expand(match)]
    return [FileEntry(argument, "no such file or directory")]


@dataclass(frozen=True)
class NoDigit:
    """An image that was read but holds no digit (blank paper, a speck, a solid shape's
    outline): answered with a null digit and this reason, as the HTTP API answers it."""

    reason: str


def _preprocess(file: str) -> np.ndarray | NoDigit | str:
    """The 28x28 input for `file`; NoDigit when the picture holds none; or the reason the file
    could not be read as an image (without the file name)."""
    from mnist_cnn.preprocess import NoDigitError, PreprocessError, preprocess

    try:
        return preprocess(file, name=file)
    except NoDigitError as error:
        return NoDigit(str(error).removeprefix(f"{file}: "))
    except PreprocessError as error:
        return str(error).removeprefix(f"{file}: ")


def _resize_plain(file: str) -> np.ndarray | str:
    """For a run on non-digit data: the whole picture scaled to 28x28, pixel values as they
    are (the digit preprocessing, which crops, thickens and centres ink, does not apply)."""
    from PIL import Image

    from mnist_cnn.decode import PreprocessError, load_image

    try:
        gray = load_image(file, name=file)
    except PreprocessError as error:
        return str(error).removeprefix(f"{file}: ")
    # BOX averages every source pixel into the target one: no aliasing when shrinking photos.
    scaled = Image.fromarray(gray.astype(np.float32), mode="F").resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX
    )
    return np.clip(np.asarray(scaled), 0.0, 1.0).astype(np.float32)


def _save_png(image: np.ndarray, target: Path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    files.write_bytes(target, buffer.getvalue())


def _unique_name(file: str, taken: set[str]) -> str:
    """`photo.jpg` -> `photo.png`; a second `photo` (`photo.gif`, other folder) -> `photo-2.png`."""
    stem = Path(file).stem or "image"
    name, counter = f"{stem}.png", 1
    while name in taken:
        counter += 1
        name = f"{stem}-{counter}.png"
    taken.add(name)
    return name


def predict_files(
    predictor: Predictor,
    paths: Iterable[str | Path],
    *,
    top: int = 1,
    save_preprocessed: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Preprocess and classify image files, directories and globs, one result per file.

    Each result is `{"file", "digit", "confidence", "probabilities"}` (`digit` None and a
    `"reason"` when the model abstains: not a digit, or not sure; plus `"top"`:
    `[[digit, probability], ...]` best first when `top > 1`, and `"preprocessed"`: the PNG
    path when `save_preprocessed` is given), or for a picture preprocessing finds no digit in
    the same keys with `digit`, `confidence` and `probabilities` None and the `"reason"`, or
    `{"file", "error"}` for a file that is no readable image. One bad file never stops the
    others; the good images go through the model in batches of MODEL_BATCH.
    """
    if not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"top must be between 1 and {NUM_CLASSES}, got {top}")
    save_dir = Path(save_preprocessed) if save_preprocessed is not None else None
    if save_dir is not None:  # before any picture is read: a bad folder costs no work
        try:
            save_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            reason = error.strerror or error
            raise ValueError(
                f"--save-preprocessed {save_dir}: cannot make folder ({reason})"
            ) from None
    results: list[dict[str, Any]] = []
    good: list[dict[str, Any]] = []  # the results whose image goes to the model, in order
    images: list[np.ndarray] = []
    prepare = _preprocess
    if predictor.run.class_names != DIGITS:
        prepare = _resize_plain
        logger.warning(
            "this run was trained on %s, not digits: images are only resized to 28x28 (give "
            "them as its data looks: light on a dark background)",
            predictor.run.dataset["name"] or "unknown IDX data",
        )
    for item in expand_paths(paths):
        outcome = item.error if item.error is not None else prepare(item.file)
        if isinstance(outcome, str):
            results.append({"file": item.file, "error": outcome})
        elif isinstance(outcome, NoDigit):
            results.append({"file": item.file, **no_digit_answer(outcome.reason)})
        else:
            results.append({"file": item.file})
            good.append(results[-1])
            images.append(outcome)
    if not images:
        return results
    answers = [
        answer
        for start in range(0, len(images), MODEL_BATCH)
        for answer in predictor.answers(np.stack(images[start : start + MODEL_BATCH]))
    ]
    taken: set[str] = set()
    for result, image, answer in zip(good, images, answers, strict=True):
        result.update(answer.to_dict())
        if top > 1:
            ranked = np.argsort(-answer.probabilities, kind="stable")[:top]
            result["top"] = [[int(digit), float(answer.probabilities[digit])] for digit in ranked]
        if save_dir is not None:
            target = save_dir / _unique_name(result["file"], taken)
            _save_png(image, target)
            result["preprocessed"] = str(target)
    return results
