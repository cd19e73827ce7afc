"""Training progress: on stdout Keras's bar on a terminal, a line per epoch anywhere else;
for the run's training curves, `BatchLogger`'s rows every `log_every` batches.

Keras's bar redraws itself in place on a terminal; in a CI log or a pipe it cannot, and
writes a new line at every update instead (1,875 per tutorial epoch). Off a terminal,
`EpochLines` writes one line at each epoch end and one every `LINE_SECONDS` within a long one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import keras

# Within an epoch, a progress line at most this often (seconds): a sign of life in a CI log
# during a long epoch, a few lines per tutorial epoch on a laptop CPU.
LINE_SECONDS = 30.0


class EpochBar(keras.callbacks.ProgbarLogger):
    """Keras's bar, told the run's epochs: train fits one epoch per `fit` call, so each call
    would otherwise announce "Epoch 1/1"."""

    def __init__(self, epochs: int, verbose: int) -> None:
        super().__init__()
        self.run_epochs = epochs
        self.run_verbose = verbose

    def set_params(self, params: dict) -> None:
        super().set_params({**params, "epochs": self.run_epochs, "verbose": self.run_verbose})


class EpochLines(keras.callbacks.Callback):
    """`epoch 2/15: step 1875/1875, loss 0.1234, accuracy 0.9612, 61.0 s` at each epoch end,
    and the same with the step reached every `interval` seconds within an epoch."""

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        interval: float | None = None,  # None: LINE_SECONDS
        stream: TextIO | None = None,
    ) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.interval = LINE_SECONDS if interval is None else interval
        self.stream = stream
        self.epoch = 0
        self.epoch_started = self.last_line = time.monotonic()

    def _write(self, logs: dict | None) -> None:
        steps_done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        step = steps_done - self.epoch * self.steps_per_epoch
        values = "".join(f", {key} {float(value):.4f}" for key, value in (logs or {}).items())
        seconds = time.monotonic() - self.epoch_started
        print(
            f"epoch {self.epoch + 1}/{self.epochs}: step {step}/{self.steps_per_epoch}"
            f"{values}, {seconds:.1f} s",
            file=self.stream or sys.stdout,
            flush=True,
        )
        self.last_line = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.epoch_started = self.last_line = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if time.monotonic() - self.last_line >= self.interval:
            self._write(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._write(logs)


def progress_callbacks(
    verbose: str | int, epochs: int, steps_per_epoch: int, stream: TextIO | None = None
) -> list[keras.callbacks.Callback]:
    """0: nothing; 1: Keras's bar; 2: Keras's line per epoch; "auto": the bar on a terminal,
    `EpochLines` anywhere else."""
    if verbose == "auto":
        stream = stream or sys.stdout
        if hasattr(stream, "isatty") and stream.isatty():
            return [EpochBar(epochs, 1)]
        return [EpochLines(epochs, steps_per_epoch, stream=stream)]
    if verbose:
        return [EpochBar(epochs, int(verbose))]
    return []


class BatchLogger(keras.callbacks.Callback):
    """Records the running loss and accuracy every `every` batches (Keras logs per epoch).

    The step is the optimizer's count (train fits one epoch per call, so fit's batch index
    restarts each epoch). With steps_per_execution > 1 Keras calls back once per group of
    batches, so a row is written at the first call at or past each multiple of `every`.
    `rows` continues the log of an interrupted run.
    """

    def __init__(self, every: int, rows: list[dict[str, float]] | None = None) -> None:
        super().__init__()
        self.every = every
        self.rows: list[dict[str, float]] = list(rows or [])
        self.epoch = 0
        self.next_log = (int(self.rows[-1]["step"]) // every + 1) * every if self.rows else every

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        steps_done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if logs and steps_done >= self.next_log:
            self.rows.append(
                {
                    "step": steps_done,
                    "epoch": self.epoch + 1,
                    "loss": float(logs["loss"]),
                    "accuracy": float(logs["accuracy"]),
                }
            )
            self.next_log = (steps_done // self.every + 1) * self.every
