"""Load a trained run directory and predict digits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig, load_config
from mnist_cnn.data import IMAGE_SIZE

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
    """Class probabilities for MNIST-style images, through the fastest equivalent path."""

    def __init__(self, run: Run) -> None:
        from mnist_cnn import runtime

        self.run = run
        self.data_format = run.config.data_format
        self._call = runtime.compiled_call(run.model)

    @classmethod
    def from_dir(cls, run_dir: str | Path) -> Predictor:
        return cls(load_run(run_dir))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 (N, 28, 28) in [0, 1], white digit on black -> float32 (N, 10)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (N, 28, 28), found {images.shape}")
        axis = 1 if self.data_format == "channels_first" else -1
        return self._call(np.expand_dims(images, axis))
