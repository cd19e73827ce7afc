"""Load a trained run directory and predict digits in arrays or image files."""

from __future__ import annotations

import glob
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError, files
from mnist_cnn.config import TrainConfig, load_config
from mnist_cnn.data import IMAGE_SIZE, NUM_CLASSES

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"


class ModelLoadError(MnistCnnError):
    """A run directory is missing, incomplete or holds a corrupt model."""


@dataclass(frozen=True)
class Run:
    path: Path
    config: TrainConfig
    model: Any  # keras.Model


def load_run(run_dir: str | Path) -> Run:
    """Load `model.keras` (Keras safe mode: no arbitrary code) and `config.json` of a run."""
    import keras

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelLoadError(
            f"{run_dir}: not a directory (expected a run made by 'mnist-cnn train')"
        )
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise ModelLoadError(
            f"{model_path}: missing (expected the model saved by 'mnist-cnn train')"
        )
    try:
        config = load_config(str(run_dir / CONFIG_FILE))
    except MnistCnnError as error:
        raise ModelLoadError(str(error)) from None
    try:
        model = keras.saving.load_model(model_path, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(f"{model_path}: cannot load the model ({reason[:200]})") from None
    expected = (None, 10)
    if tuple(model.output_shape) != expected:
        raise ModelLoadError(
            f"{model_path}: not a digit classifier (expected output shape {expected}, "
            f"found {tuple(model.output_shape)})"
        )
    return Run(path=run_dir, config=config, model=model)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: cannot read metrics ({error})") from None


class Predictor:
    """Class probabilities for MNIST-style images, through the fastest equivalent path.

    `backend="auto"` uses ONNX Runtime when it is installed and its probabilities match
    Keras's to 1e-5 (checked at load), else TensorFlow's compiled call; `backend` says which
    one was chosen (see export.fastest_call and benchmarks/README.md for why).
    """

    def __init__(self, run: Run, backend: str = "auto") -> None:
        from mnist_cnn.export import fastest_call

        self.run = run
        self.data_format = run.config.data_format
        self.backend, self._call = fastest_call(run, backend)

    @classmethod
    def from_dir(cls, run_dir: str | Path, backend: str = "auto") -> Predictor:
        return cls(load_run(run_dir), backend)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1], white digit on black -> float32 (N, 10)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (N, 28, 28), found {images.shape}")
        axis = 1 if self.data_format == "channels_first" else -1
        return self._call(np.expand_dims(images, axis))


# Suffixes taken from a directory argument; files named one by one (or by a glob) are tried
# whatever their suffix, and preprocess decides whether they are images.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
_GLOB_CHARACTERS = frozenset("*?[")


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


def _preprocess(file: str) -> np.ndarray | str:
    """The 28x28 input for `file`, or the reason it has none (without the file name)."""
    from mnist_cnn.preprocess import PreprocessError, preprocess

    try:
        return preprocess(file, name=file)
    except PreprocessError as error:
        return str(error).removeprefix(f"{file}: ")


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

    Each result is `{"file", "digit", "confidence", "probabilities"}` (plus `"top"`:
    `[[digit, probability], ...]` best first when `top > 1`, and `"preprocessed"`: the PNG
    path when `save_preprocessed` is given) or `{"file", "error"}`. One bad file never stops
    the others; all good images go through the model in one batch.
    """
    if not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"top must be between 1 and {NUM_CLASSES}, got {top}")
    results: list[dict[str, Any]] = []
    images: list[np.ndarray] = []
    for item in expand_paths(paths):
        outcome = item.error if item.error is not None else _preprocess(item.file)
        if isinstance(outcome, str):
            results.append({"file": item.file, "error": outcome})
        else:
            results.append({"file": item.file})
            images.append(outcome)
    if not images:
        return results
    probabilities = predictor.probabilities(np.stack(images))
    good = [result for result in results if "error" not in result]
    save_dir = Path(save_preprocessed) if save_preprocessed is not None else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for result, image, row in zip(good, images, probabilities, strict=True):
        ranked = np.argsort(-row, kind="stable")
        result["digit"] = int(ranked[0])
        result["confidence"] = float(row[ranked[0]])
        result["probabilities"] = [float(value) for value in row]
        if top > 1:
            result["top"] = [[int(digit), float(row[digit])] for digit in ranked[:top]]
        if save_dir is not None:
            target = save_dir / _unique_name(result["file"], taken)
            _save_png(image, target)
            result["preprocessed"] = str(target)
    return results
