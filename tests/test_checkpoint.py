"""checkpoint: atomic saves that keep the previous one, damaged files skipped, and a real
SIGKILL of `mnist-cnn train` mid-epoch and mid-save, then `--resume`, matching an
uninterrupted run."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import CheckpointError, TrainingState
from mnist_cnn.run import (
    BATCHES_FILE,
    CHECKPOINT_DIR,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    PREVIOUS_CHECKPOINT_FILE,
)
from tests.conftest import write_idx_dir

BOTH = (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE)


def _state(epoch: int, step: int, fill: float) -> TrainingState:
    values = {
        "model": [np.full((3, 2), fill, np.float32), np.array([fill], np.float32)],
        "optimizer": [np.array(step, np.int64)],
        "metrics": [np.array(fill * 2, np.float32)],
    }
    return TrainingState(
        epoch=epoch,
        step=step,
        values=values,
        history_rows=[{"epoch": 1, "loss": fill}],
        batch_rows=[{"step": step, "loss": fill}],
        train_seconds=fill * 10,
    )


def _same(first: TrainingState, second: TrainingState) -> bool:
    scalars = ("epoch", "step", "history_rows", "batch_rows", "train_seconds")
    if any(getattr(first, name) != getattr(second, name) for name in scalars):
        return False
    return all(
        len(first.values[group]) == len(second.values[group])
        and all(
            np.array_equal(a, b)
            for a, b in zip(first.values[group], second.values[group], strict=True)
        )
        for group in checkpoint.GROUPS
    )


def test_save_replaces_the_newest_and_keeps_the_one_before(tmp_path):
    first, second, third = _state(0, 3, 0.25), _state(0, 6, 0.5), _state(1, 0, 0.75)
    checkpoint.save_checkpoint(tmp_path, first)
    directory = tmp_path / CHECKPOINT_DIR
    assert _same(checkpoint.read_checkpoint(directory / CHECKPOINT_FILE), first)
    assert not (directory / PREVIOUS_CHECKPOINT_FILE).exists()
    checkpoint.save_checkpoint(tmp_path, second)
    checkpoint.save_checkpoint(tmp_path, third)
    assert _same(checkpoint.read_checkpoint(directory / CHECKPOINT_FILE), third)
    assert _same(checkpoint.read_checkpoint(directory / PREVIOUS_CHECKPOINT_FILE), second)
    assert _same(checkpoint.load_checkpoint(tmp_path), third)
    assert sorted(p.name for p in directory.iterdir()) == [
        CHECKPOINT_FILE,
        PREVIOUS_CHECKPOINT_FILE,
    ]


def test_a_save_that_fails_before_its_rename_leaves_both_checkpoints(tmp_path, monkeypatch):
    checkpoint.save_checkpoint(tmp_path, _state(0, 3, 0.25))
    checkpoint.save_checkpoint(tmp_path, _state(0, 6, 0.5))

    def full_disk(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        checkpoint.save_checkpoint(tmp_path, _state(1, 0, 0.75))
    directory = tmp_path / CHECKPOINT_DIR
    assert sorted(p.name for p in directory.iterdir()) == [
        CHECKPOINT_FILE,
        PREVIOUS_CHECKPOINT_FILE,
    ]
    assert _same(checkpoint.load_checkpoint(tmp_path), _state(0, 6, 0.5))


def test_a_damaged_newest_checkpoint_is_named_and_the_previous_one_used(tmp_path, caplog):
    checkpoint.save_checkpoint(tmp_path, _state(0, 3, 0.25))
    checkpoint.save_checkpoint(tmp_path, _state(0, 6, 0.5))
    latest = tmp_path / CHECKPOINT_DIR / CHECKPOINT_FILE
    latest.write_bytes(latest.read_bytes()[:1000])  # a torn file: no zip directory at its end
    leftover = tmp_path / CHECKPOINT_DIR / f"{checkpoint.TEMPORARY_PREFIX}abc.npz"
    leftover.write_bytes(b"half a checkpoint")
    with caplog.at_level(logging.WARNING, logger="mnist_cnn.checkpoint"):
        state = checkpoint.load_checkpoint(tmp_path)
    assert _same(state, _state(0, 3, 0.25))
    assert not leftover.exists()
    messages = [record.getMessage() for record in caplog.records]
    assert any(str(latest) in message and "damaged checkpoint" in message for message in messages)
    assert any(str(leftover) in message and "unfinished" in message for message in messages)
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        checkpoint.read_checkpoint(latest)


def test_no_readable_checkpoint_gives_none(tmp_path, caplog):
    assert checkpoint.load_checkpoint(tmp_path) is None  # never saved
    checkpoint.save_checkpoint(tmp_path, _state(0, 3, 0.25))
    latest = tmp_path / CHECKPOINT_DIR / CHECKPOINT_FILE
    latest.write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="mnist_cnn.checkpoint"):
        assert checkpoint.load_checkpoint(tmp_path) is None
    assert "damaged checkpoint" in caplog.text


def test_between_the_two_renames_the_previous_checkpoint_is_used(tmp_path):
    """A crash after latest became previous and before the new file took its place."""
    checkpoint.save_checkpoint(tmp_path, _state(0, 3, 0.25))
    directory = tmp_path / CHECKPOINT_DIR
    os.replace(directory / CHECKPOINT_FILE, directory / PREVIOUS_CHECKPOINT_FILE)
    assert _same(checkpoint.load_checkpoint(tmp_path), _state(0, 3, 0.25))


def test_a_checkpoint_of_another_model_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(CheckpointError, match="model variables .* do not fit"):
        checkpoint.restore(model, _state(0, 3, 0.25), ("model",))


# The SIGKILL test: 1,024 images at batch 32 is 32 batches an epoch, a checkpoint every 8.
KILL_IMAGES, KILL_BATCH, KILL_EVERY, KILL_EPOCHS = 1024, 32, 8, 2
POLL_SECONDS = 0.01  # a checkpoint comes every 8 batches, about half a second here
WAIT_SECONDS = 120  # TensorFlow's start-up and the first batches, on a loaded 2-core machine


def _train_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "mnist_cnn.cli", "train", "--no-report", *arguments]


def _wait_for(condition, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"training ended (code {process.returncode}) before the kill")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the moment to kill never came")
        time.sleep(POLL_SECONDS)


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


@pytest.fixture
def kill_data_dir(tmp_path, mnist) -> Path:
    splits = {
        "train": (mnist.train.images[:KILL_IMAGES], mnist.train.labels[:KILL_IMAGES]),
        "test": (mnist.test.images[:500], mnist.test.labels[:500]),
    }
    return write_idx_dir(tmp_path / "data", splits)


@pytest.mark.slow  # four training processes: about a minute on 2 shared cores
def test_sigkill_mid_epoch_and_mid_save_then_resume_matches_an_uninterrupted_run(
    tmp_path, kill_data_dir
):
    recipe = ["--data-dir", str(kill_data_dir), "--epochs", str(KILL_EPOCHS), "--seed", "2"]
    recipe += ["--batch-size", str(KILL_BATCH), "--learning-rate", "1e-3"]
    recipe += ["--checkpoint-every", str(KILL_EVERY)]
    environment = {**os.environ, "PYTHONPATH": str(Path(checkpoint.__file__).parents[1])}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": environment}
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"
    directory = interrupted / CHECKPOINT_DIR
    latest = directory / CHECKPOINT_FILE

    # 1. Killed mid-epoch, once a mid-epoch checkpoint exists.
    process = subprocess.Popen(_train_command("--output", str(interrupted), *recipe), **quiet)
    _wait_for(latest.exists, process)
    _kill(process)
    killed_at = checkpoint.read_checkpoint(latest)
    assert killed_at.epoch == 0 and 0 < killed_at.step < KILL_IMAGES // KILL_BATCH  # mid-epoch
    assert not (interrupted / CONFIG_FILE).exists()  # never taken for a complete run

    # 2. Resumed, then killed half-way through writing a checkpoint (the test hook pauses it).
    paused = {**quiet, "env": {**environment, checkpoint.PAUSE_ENVIRONMENT: "600"}}
    process = subprocess.Popen(_train_command("--resume", str(interrupted)), **paused)
    writes = lambda: list(directory.glob(f"{checkpoint.TEMPORARY_PREFIX}*"))  # noqa: E731
    _wait_for(writes, process)
    _kill(process)
    assert writes()  # the torn write is still there, beside a complete checkpoint
    with pytest.raises(CheckpointError):
        checkpoint.read_checkpoint(writes()[0])
    newest = checkpoint.read_checkpoint(latest)  # still the one the resume started from
    assert (newest.epoch, newest.step) == (killed_at.epoch, killed_at.step)

    # 3. Resumed to the end; and the same recipe never interrupted.
    finished = subprocess.run(
        _train_command("--resume", str(interrupted)),
        capture_output=True,
        text=True,
        env=environment,
    )
    assert finished.returncode == 0, finished.stderr
    assert "unfinished checkpoint write, removed" in finished.stderr
    reference = subprocess.run(
        _train_command("--output", str(whole), *recipe), capture_output=True, env=environment
    )
    assert reference.returncode == 0, reference.stderr

    assert sorted(p.name for p in interrupted.iterdir()) == sorted(p.name for p in whole.iterdir())
    resumed_metrics = json.loads((interrupted / METRICS_FILE).read_text())
    whole_metrics = json.loads((whole / METRICS_FILE).read_text())
    # Resume is deterministic: the same batches in the same order from the same state.
    assert resumed_metrics["test_accuracy"] == whole_metrics["test_accuracy"]
    assert resumed_metrics["test_loss"] == whole_metrics["test_loss"]
    for name in (HISTORY_FILE, BATCHES_FILE):
        assert (interrupted / name).read_text() == (whole / name).read_text(), name
    record = json.loads((interrupted / CONFIG_FILE).read_text())
    # both resumptions began at the mid-epoch checkpoint: the second one's save never finished
    assert record["resumed"] == [{"epoch": 1, "step": killed_at.step}] * 2
    assert "resumed" not in json.loads((whole / CONFIG_FILE).read_text())
