"""progress: one line per epoch (and every LINE_SECONDS) off a terminal, Keras's bar on one."""

from __future__ import annotations

import io
import re

from mnist_cnn import progress
from mnist_cnn.config import TrainConfig
from mnist_cnn.train import train

EPOCH_LINE = r"epoch {epoch}/2: step {step}/4, accuracy [0-9.]+, loss [0-9.]+, [0-9.]+ s"


def test_off_a_terminal_training_prints_one_line_per_epoch(tmp_path, tiny_data_dir, capsys):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=128, epochs=2)  # 4 batches of 32
    train(config, tmp_path / "run", verbose="auto")  # pytest's captured stdout is no terminal
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(EPOCH_LINE.format(epoch=epoch, step=4), line), line


def test_a_long_epoch_gets_a_line_every_line_seconds(tmp_path, tiny_data_dir, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)  # every batch is "long enough"
    # One batch per compiled call: Keras calls back after each, so each can get its line.
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=128, epochs=2, steps_per_execution=1)
    train(config, tmp_path / "run", verbose="auto")
    lines = capsys.readouterr().out.splitlines()
    expected = [
        EPOCH_LINE.format(epoch=epoch, step=step) for epoch in (1, 2) for step in (1, 2, 3, 4, 4)
    ]
    assert len(lines) == len(expected), lines
    for pattern, line in zip(expected, lines, strict=True):
        assert re.fullmatch(pattern, line), line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_keras_draws_its_bar_with_the_runs_epochs():
    (bar,) = progress.progress_callbacks("auto", epochs=15, steps_per_epoch=10, stream=Terminal())
    assert isinstance(bar, progress.EpochBar)
    bar.set_params({"verbose": 0, "epochs": 1, "steps": 10})  # what one per-epoch fit passes
    assert (bar.epochs, bar.verbose, bar.target) == (15, 1, 10)
    (lines,) = progress.progress_callbacks("auto", 15, 10, stream=io.StringIO())
    assert isinstance(lines, progress.EpochLines)
    assert progress.progress_callbacks(0, 15, 10) == []
    assert progress.progress_callbacks(2, 15, 10)[0].run_verbose == 2
