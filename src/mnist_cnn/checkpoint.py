"""Checkpoints of an unfinished run, so that `mnist-cnn train --resume DIR` continues it.

A checkpoint is one .npz file: every variable of the trained model (the weights and the
augmentation layers' random-generator states), of the optimizer (Adam's moments and its step
count, which the learning-rate schedule reads) and of the metrics (the epoch's running loss
and accuracy), with a JSON record of the epoch, the batches of it done, the logs so far and
the training time. It is written to a temporary file, fsynced, then renamed into place; the
checkpoint it replaces is kept as the previous one, so a damaged newest file still leaves
one to resume from. (Keras's BackupAndRestore writes in place, so a crash mid-save can ruin
its only copy, and restarts an interrupted epoch from its first batch.)
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnist_cnn import MnistCnnError
from mnist_cnn.run import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    PREVIOUS_CHECKPOINT_FILE,
    checkpoint_dir,
    read_started_run,
    write_started_run,
)

logger = logging.getLogger(__name__)

# Test hook: seconds to sleep half-way through writing a checkpoint that replaces another,
# so that a test can SIGKILL the process mid-save (tests/test_checkpoint.py). Unset: no pause.
PAUSE_ENVIRONMENT = "MNIST_CNN_CHECKPOINT_PAUSE_SECONDS"
STATE_KEY = "state"  # the npz member holding the JSON record
GROUPS = ("model", "optimizer", "metrics")  # npz members are named f"{group}_{index}"
TEMPORARY_PREFIX = ".checkpoint-"  # unfinished writes; a resume removes them


class CheckpointError(MnistCnnError):
    """A checkpoint file is missing, damaged or not of this model."""


@dataclass
class TrainingState:
    """Where training stands: `epoch` (0-based) is the epoch to continue, `step` the batches of
    it already done (0 at an epoch's start)."""

    epoch: int
    step: int
    values: dict[str, list[np.ndarray]]  # GROUPS -> variable values, in the model's order
    history_rows: list[dict[str, float]] = field(default_factory=list)
    batch_rows: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def variables_of(model: keras.Model) -> dict[str, list]:
    return {
        "model": list(model.variables),
        "optimizer": list(model.optimizer.variables),
        "metrics": list(model.metrics_variables),
    }


def capture(model: keras.Model, epoch: int, step: int, **records: Any) -> TrainingState:
    values = {
        group: [variable.numpy() for variable in variables]
        for group, variables in variables_of(model).items()
    }
    return TrainingState(epoch=epoch, step=step, values=values, **records)


def restore(model: keras.Model, state: TrainingState, groups: tuple[str, ...]) -> None:
    """Assign the saved values of `groups` to the model's variables (built by then)."""
    for group in groups:
        variables, values = variables_of(model)[group], state.values[group]
        shapes = [tuple(variable.shape) for variable in variables]
        if shapes != [value.shape for value in values]:
            raise CheckpointError(
                f"the checkpoint's {group} variables ({len(values)}) do not fit this model's "
                f"({len(variables)}): was the run's config.json edited?"
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def restore_training(model: keras.Model, state: TrainingState, x_batch, y_batch) -> None:
    """Put a checkpoint back into a compiled model: one throwaway step on (x_batch, y_batch)
    makes Keras build the optimizer's and the metrics' variables (it builds them lazily, in
    the first step), then every variable is assigned its saved value, so the step leaves no
    trace, its random draws included. The metrics are put back again when the interrupted
    epoch begins (fit resets them then): see Checkpointer."""
    model.train_on_batch(x_batch, y_batch)
    restore(model, state, GROUPS)


def save_checkpoint(run_dir: str | Path, state: TrainingState) -> Path:
    """Write `state` atomically as the newest checkpoint; the one it replaces becomes the
    previous. At no moment is there no complete checkpoint on disk once one was written."""
    directory = checkpoint_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "epoch": state.epoch,
        "step": state.step,
        "history_rows": state.history_rows,
        "batch_rows": state.batch_rows,
        "train_seconds": state.train_seconds,
        "counts": {group: len(state.values[group]) for group in GROUPS},
    }
    arrays = {
        f"{group}_{index}": value
        for group in GROUPS
        for index, value in enumerate(state.values[group])
    }
    buffer = io.BytesIO()
    np.savez(buffer, **{STATE_KEY: np.array(json.dumps(record))}, **arrays)
    data = buffer.getvalue()
    latest, previous = directory / CHECKPOINT_FILE, directory / PREVIOUS_CHECKPOINT_FILE
    descriptor, name = tempfile.mkstemp(dir=directory, prefix=TEMPORARY_PREFIX, suffix=".npz")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data[: len(data) // 2])
            pause = os.environ.get(PAUSE_ENVIRONMENT)
            if pause and latest.exists():
                handle.flush()
                time.sleep(float(pause))
            handle.write(data[len(data) // 2 :])
            handle.flush()
            os.fsync(handle.fileno())
        if latest.exists():
            os.replace(latest, previous)
        os.replace(name, latest)
        _fsync_directory(directory)
    finally:
        Path(name).unlink(missing_ok=True)
    return latest


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoint(path: Path) -> TrainingState:
    """One checkpoint file; CheckpointError naming what is wrong with it."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            record = json.loads(str(archive[STATE_KEY]))
            values = {
                group: [archive[f"{group}_{index}"] for index in range(record["counts"][group])]
                for group in GROUPS
            }
        return TrainingState(
            epoch=int(record["epoch"]),
            step=int(record["step"]),
            values=values,
            history_rows=list(record["history_rows"]),
            batch_rows=list(record["batch_rows"]),
            train_seconds=float(record["train_seconds"]),
        )
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        message = f"{path}: damaged checkpoint ({type(error).__name__}: {error})"
        raise CheckpointError(message) from None


def load_checkpoint(run_dir: str | Path) -> TrainingState | None:
    """The newest readable checkpoint of `run_dir` (None: there is none); unfinished writes are
    removed, and a damaged newest file is skipped with a warning for the previous one."""
    directory = checkpoint_dir(run_dir)
    for leftover in directory.glob(f"{TEMPORARY_PREFIX}*"):
        logger.warning("%s: an unfinished checkpoint write, removed", leftover)
        leftover.unlink()
    for name in (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE):
        path = directory / name
        if not path.exists():
            continue
        try:
            return read_checkpoint(path)
        except CheckpointError as error:
            logger.warning("%s; trying an older checkpoint", error)
    return None


def start_or_resume(
    run_dir: Path, document: dict[str, Any], resume: bool
) -> tuple[TrainingState | None, list[dict[str, int]]]:
    """(checkpoint to continue from, the run's resumptions so far). A new run records its
    config document first, so that it can be resumed; a resumed one must read the same data."""
    if not resume:
        shutil.rmtree(checkpoint_dir(run_dir), ignore_errors=True)  # an --overwrite's
        # An --overwrite's old run is no longer complete (config.json marks that): a crash
        # before the new run was saved left a mixed run that refused --resume.
        (run_dir / CONFIG_FILE).unlink(missing_ok=True)
        write_started_run(run_dir, document)
        return None, []
    started = read_started_run(run_dir)[1]
    if started.get("data_sha256") != document["data_sha256"]:
        raise MnistCnnError(
            f"{run_dir}: the run was started on other data ({started.get('data_source')})"
        )
    state = load_checkpoint(run_dir)
    if state is None:
        logger.warning("%s: no usable checkpoint; training again from the start", run_dir)
    where = {"epoch": state.epoch + 1, "step": state.step} if state else {"epoch": 1, "step": 0}
    resumed = [*started.get("resumed", []), where]
    write_started_run(run_dir, {**started, "resumed": resumed})
    return state, resumed


class Checkpointer(keras.callbacks.Callback):
    """Saves the training state every `every` batches (0: never mid-epoch) and at each epoch
    end; given `resumed`, puts it back first: the variables when training begins, the
    metrics' running sums when the interrupted epoch begins (after fit resets them).

    train fits one epoch per `fit` call, so the position comes from the optimizer's step
    count, not from the batch index `fit` gives (which restarts at every call).
    """

    def __init__(
        self,
        run_dir: Path,
        every: int,
        steps_per_epoch: int,
        batch_rows: list[dict[str, float]],
        resumed: TrainingState | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.every = every
        self.steps_per_epoch = steps_per_epoch
        self.batch_rows = batch_rows  # BatchLogger's rows, saved with the state
        self.history_rows = list(resumed.history_rows) if resumed else []
        self.seconds_before = resumed.train_seconds if resumed else 0.0
        self.started = time.perf_counter()
        self.pending_metrics = resumed if resumed and resumed.step else None
        self.epoch = 0
        self.next_save = every

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def _steps_done(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.every:
            self.next_save = (self._steps_done() // self.every + 1) * self.every

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        if self.pending_metrics is not None and epoch == self.pending_metrics.epoch:
            restore(self.model, self.pending_metrics, ("metrics",))
            self.pending_metrics = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.every:
            return
        steps_done = self._steps_done()
        step = steps_done - self.epoch * self.steps_per_epoch
        if steps_done >= self.next_save and step < self.steps_per_epoch:
            self._save(self.epoch, step)
            self.next_save = (steps_done // self.every + 1) * self.every

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.history_rows.append(
            {"epoch": epoch + 1, **{key: float(value) for key, value in (logs or {}).items()}}
        )
        self._save(epoch + 1, 0)

    def _save(self, epoch: int, step: int) -> None:
        if not all(np.isfinite(weight).all() for weight in self.model.get_weights()):
            return  # diverged (a resume finished "successfully" on NaN weights): keep the last
        state = capture(
            self.model,
            epoch,
            step,
            history_rows=self.history_rows,
            batch_rows=list(self.batch_rows),
            train_seconds=self.train_seconds(),
        )
        save_checkpoint(self.run_dir, state)
