"""The run directory: its file names, `Run` (config, metrics, paths), `save_run` and `read_run`.

This module is the one owner of the format: nobody else spells a run file's name. A run holds
`model.keras` (Keras), `model.onnx` (ONNX Runtime, what predict and serve load), `config.json`
(every setting, the format version, library versions, data and model hashes), `metrics.json`,
`history.csv` (per epoch) and `batches.csv` (every `log_every` batches). While a run is
unfinished it holds only `checkpoint/`: the started run's config.json (so `train --resume DIR`
knows the recipe) and checkpoint.py's files; save_run removes it once the run is complete.
No Keras import here: reading a run for predict or serve must not load TensorFlow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_cnn import MnistCnnError, __version__, files
from mnist_cnn.config import TrainConfig
from mnist_cnn.dataset_registry import DIGITS, find_by_hash

MODEL_FILE = "model.keras"
ONNX_FILE = "model.onnx"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BATCHES_FILE = "batches.csv"
REPORT_DIR = "report"
ENSEMBLE_KEY = "ensemble"  # config.json's record of an ensemble's members (ensemble.py)
CHECKPOINT_DIR = "checkpoint"  # an unfinished run's state; gone once the run is saved
CHECKPOINT_FILE = "latest.npz"  # the newest complete checkpoint
PREVIOUS_CHECKPOINT_FILE = "previous.npz"  # the one before it, kept in case the newest is bad
# Version 1: runs before `format_version` existed (no ONNX record, data_dir as given).
# Version 2: `onnx` record (SHA-256 and the check against Keras), data_dir absolute.
# Version 3 adds, after `mnist-cnn calibrate`, a `calibration` record (temperature, ECE) and
# an `abstention` record (the "not a digit" and "not sure" thresholds), and model.onnx has a
# second output, the logits. Version 2 runs still read.
# Version 4 adds a `dataset` record: {"name" (registry name, null for unknown IDX data),
# "class_names", "identified_by"}. Older runs read as digits 0-9, named by their data hashes.
FORMAT_VERSION = 4


class ModelLoadError(MnistCnnError):
    """A run directory is missing, incomplete or holds a corrupt model."""


@dataclass(frozen=True)
class Run:
    """A run directory as read from disk: its settings and records, no model loaded."""

    path: Path
    config: TrainConfig
    document: dict[str, Any]  # the whole of config.json

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def calibration(self) -> dict[str, Any] | None:
        """`{"temperature", "validation_images", "test_ece_before", "test_ece_after", ...}`."""
        record = self.document.get("calibration")
        return record if isinstance(record, dict) else None

    @property
    def abstention(self) -> dict[str, Any] | None:
        """`{"method", "max_energy", "min_confidence", ...}`: when predict answers null."""
        record = self.document.get("abstention")
        return record if isinstance(record, dict) else None

    @property
    def ensemble(self) -> dict[str, Any] | None:
        """`{"members": [{"run", "model_sha256", "seed", "test_accuracy"}, ...]}` or None."""
        record = self.document.get(ENSEMBLE_KEY)
        return record if isinstance(record, dict) else None

    @property
    def dataset(self) -> dict[str, Any]:
        """`{"name", "class_names", "identified_by"}`: what the run was trained on. Runs from
        before the record name it from their data hashes (every one matching one dataset)."""
        record = self.document.get("dataset")
        names = record.get("class_names") if isinstance(record, dict) else None
        if isinstance(names, list) and len(names) == len(DIGITS):
            return {**record, "class_names": [str(name) for name in names]}
        hashes = self.document.get("data_sha256")
        found = {
            info.name
            for digest in (hashes.values() if isinstance(hashes, dict) else ())
            for info, _ in find_by_hash(str(digest))
        }
        name = found.pop() if len(found) == 1 else None
        return {
            "name": name,
            "class_names": list(DIGITS),
            "identified_by": "sha256" if name else "none",
        }

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.dataset["class_names"])

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    @property
    def format_version(self) -> int:
        return int(self.document.get("format_version", 1))

    @property
    def onnx_record(self) -> dict[str, Any] | None:
        """`{"sha256", "max_difference", "check_images"}` written when model.onnx was made."""
        record = self.document.get("onnx")
        return record if isinstance(record, dict) else None

    def metrics(self) -> dict[str, Any]:
        """metrics.json as saved by train ({} when missing or unreadable: older or partial runs)."""
        return files.read_json_object(self.path / METRICS_FILE)

    def history_rows(self) -> list[dict[str, float]]:
        return read_csv_rows(self.path / HISTORY_FILE)

    def batch_rows(self) -> list[dict[str, float]]:
        return read_csv_rows(self.path / BATCHES_FILE)


def read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a CSV log as floats ([] when the file is missing)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def read_run(run_dir: str | Path) -> Run:
    """Read a run's config.json (no model loaded); one-line ModelLoadError when it is unusable."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelLoadError(
            f"{run_dir}: not a directory (expected a run made by 'mnist-cnn train')"
        )
    path = run_dir / CONFIG_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing (expected a config.json written by train)") from None
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ModelLoadError(f"{path}: expected a JSON object with a 'config' object")
    version = document.get("format_version", 1)
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ModelLoadError(
            f"{path}: format_version {version!r} is not one this mnist-cnn reads "
            f"(1 to {FORMAT_VERSION}); a newer mnist-cnn made it"
        )
    try:
        config = TrainConfig.from_dict(document["config"])
    except (TypeError, MnistCnnError) as error:
        raise ModelLoadError(f"{path}: bad config ({error})") from None
    return Run(path=run_dir, config=config, document=document)


def run_document(
    config: TrainConfig,
    *,
    versions: dict[str, str],
    data_source: str,
    data_sha256: dict[str, str],
    onnx_record: dict[str, Any] | None,
    dataset: dict[str, Any] | None = None,
    resumed: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The contents of config.json for a new run; `dataset` is data.Dataset.identity;
    `resumed` lists where an interrupted run was continued (`{"epoch", "step"}`: the 1-based
    epoch and the batches of it already done; epoch `epochs + 1` when only the evaluation and
    the save were left)."""
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "mnist_cnn_version": __version__,
        "versions": versions,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "data_source": data_source,
        "data_sha256": data_sha256,
    }
    if dataset is not None:
        document["dataset"] = dataset
    if onnx_record is not None:
        document["onnx"] = onnx_record
    if resumed:
        document["resumed"] = resumed
    return document


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR


def write_started_run(run_dir: str | Path, document: dict[str, Any]) -> None:
    """Record, before training, the config document of a run so that it can be resumed."""
    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files.write_json(directory / CONFIG_FILE, document)


def read_started_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """(config, document) of the unfinished run in `run_dir`; MnistCnnError if there is none."""
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).is_file():
        raise MnistCnnError(f"{run_dir}: the run is complete ({CONFIG_FILE}): nothing to resume")
    path = checkpoint_dir(run_dir) / CONFIG_FILE
    document = files.read_json_object(path)
    if not isinstance(document.get("config"), dict):
        raise MnistCnnError(
            f"{path}: missing or unreadable: {run_dir} is not a run started by 'mnist-cnn train'"
        )
    try:
        return TrainConfig.from_dict(document["config"]), document
    except (TypeError, MnistCnnError) as error:
        raise MnistCnnError(f"{path}: bad config ({error})") from None


def save_run(
    output_dir: Path,
    *,
    save_model: Callable[[Path], None],
    onnx_model: bytes | None,
    document: dict[str, Any],
    metrics: dict[str, Any],
    history_rows: list[dict[str, Any]],
    batch_rows: list[dict[str, Any]],
) -> None:
    """Write every file of the run atomically; the models after the logs, config.json last.

    `config.json` is what every reader opens first, so it is written after the models: a run
    interrupted mid-save is never taken for a complete one. `document["onnx"]["sha256"]` must
    be the hash of `onnx_model` (checked here: a mismatch is a bug, never a run to write).
    """
    record = document.get("onnx")
    if onnx_model is not None:
        if not record or record.get("sha256") != hashlib.sha256(onnx_model).hexdigest():
            raise ValueError("config document's onnx.sha256 does not match the ONNX model")
    elif record is not None:
        raise ValueError("config document records an ONNX model that is not given")
    output_dir.mkdir(parents=True, exist_ok=True)
    files.write_text(output_dir / HISTORY_FILE, csv_text(history_rows))
    files.write_text(output_dir / BATCHES_FILE, csv_text(batch_rows))
    files.write_json(output_dir / METRICS_FILE, metrics)
    files.save_with(output_dir / MODEL_FILE, save_model)
    stale_onnx = output_dir / ONNX_FILE
    if onnx_model is not None:
        files.write_bytes(stale_onnx, onnx_model)
    elif stale_onnx.exists():  # an --overwrite of an older run: its ONNX is another model
        stale_onnx.unlink()
    files.write_json(output_dir / CONFIG_FILE, document)
    shutil.rmtree(checkpoint_dir(output_dir), ignore_errors=True)  # the run is complete


def record_calibration(run: Run, calibration: dict[str, Any], abstention: dict[str, Any]) -> None:
    """Write the two records into config.json (atomically: a crash leaves the old file)."""
    document = {
        **run.document,
        "calibration": calibration,
        "abstention": abstention,
        "format_version": FORMAT_VERSION,
    }
    files.write_json(run.path / CONFIG_FILE, document)


def record_onnx(run: Run, onnx_model: bytes, record: dict[str, Any]) -> None:
    """Write `model.onnx` into an existing run and its record into config.json (export)."""
    files.write_bytes(run.onnx_path, onnx_model)
    document = {**run.document, "onnx": record, "format_version": FORMAT_VERSION}
    files.write_json(run.path / CONFIG_FILE, document)
