"""Training configuration: one frozen dataclass with the tutorial recipe as its defaults.

No Keras import here, so `mnist-cnn --help` and the config tests stay fast.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from mnist_cnn import MnistCnnError

DATA_FORMATS = ("channels_last", "channels_first")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; saved as `config.json` beside `model.keras`."""

    recipe: str = "tutorial"  # name of the preset these values came from (see RECIPES)
    epochs: int = 1  # the tutorial trains a single pass over the 60,000 images
    batch_size: int = 32  # images per gradient step
    learning_rate: float = 1e-4  # Adam step size (peak value when a schedule is used)
    seed: int = 0  # seeds Python, NumPy and the backend: same seed, same machine, same result
    # channels_last is the fast layout on CPU; channels_first is the tutorial's 1x28x28 input.
    data_format: str = "channels_last"
    limit: int | None = None  # train on the first N training images only (quick runs)
    data_dir: str | None = None  # None: the MNIST files packaged with mnist-cnn
    log_every: int = 50  # record loss/accuracy every N batches for the training curves
    extra: dict[str, Any] = field(default_factory=dict)  # recipe-specific settings

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}"),
            (self.log_every >= 1, f"log_every must be >= 1, got {self.log_every}"),
            (
                self.data_format in DATA_FORMATS,
                f"data_format must be one of {', '.join(DATA_FORMATS)}, got {self.data_format!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise MnistCnnError(f"invalid config: {message}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MnistCnnError(f"invalid config: unknown field(s) {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def load_config(path: str) -> TrainConfig:
    """Read the `config` section of a run's config.json."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise MnistCnnError(f"{path}: missing (expected a config.json written by train)") from None
    except (OSError, ValueError) as error:
        raise MnistCnnError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise MnistCnnError(f"{path}: expected a JSON object with a 'config' object")
    try:
        return TrainConfig.from_dict(document["config"])
    except TypeError as error:
        raise MnistCnnError(f"{path}: bad config ({error})") from None
