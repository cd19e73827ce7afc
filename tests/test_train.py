import csv
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig
from mnist_cnn.data import PACKAGED_DIR
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.run import FORMAT_VERSION, read_run
from mnist_cnn.train import resume_run, train

RUN_FILES = {
    "model.keras",
    "model.onnx",
    "config.json",
    "metrics.json",
    "history.csv",
    "batches.csv",
}


def test_tiny_run_writes_every_file(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == RUN_FILES
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for key in (
        "test_loss",
        "test_accuracy",
        "train_seconds",
        "epochs",
        "batch_size",
        "learning_rate",
        "seed",
    ):
        assert key in metrics
    assert metrics["train_images"] == 512
    assert 0.5 < metrics["test_accuracy"] <= 1.0  # 512 images at lr 1e-3 learn something
    saved = json.loads((tiny_run / "config.json").read_text())
    assert saved["config"]["batch_size"] == 64
    assert saved["format_version"] == FORMAT_VERSION
    assert Path(saved["config"]["data_dir"]).is_absolute()
    # model.onnx is checked against Keras at the end of training and its hash recorded
    onnx = saved["onnx"]
    assert onnx["sha256"] == hashlib.sha256((tiny_run / "model.onnx").read_bytes()).hexdigest()
    assert onnx["max_difference"] <= 1e-5 and onnx["check_images"] == 1000
    assert set(saved["versions"]) >= {"keras", "tensorflow", "numpy"}
    assert len(saved["data_sha256"]) == 4
    batches = list(csv.DictReader((tiny_run / "batches.csv").open()))
    assert [int(row["step"]) for row in batches] == [2, 4, 6, 8]  # 512/64 = 8 steps, every 2
    epochs = list(csv.DictReader((tiny_run / "history.csv").open()))
    assert len(epochs) == 1 and float(epochs[0]["loss"]) > 0


def test_bf16_trains_in_bfloat16_and_saves_a_float32_model(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=512, learning_rate=1e-3, bf16=True)
    result = train(config, tmp_path / "bf16", verbose=0)
    saved = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert saved["config"]["bf16"] is True
    assert 0.5 < result.metrics["test_accuracy"] <= 1.0  # it learns, as in float32
    model = keras.models.load_model(tmp_path / "bf16" / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert saved["onnx"]["max_difference"] <= 1e-5  # exported from the float32 copy


def test_an_unset_bf16_is_resolved_for_this_cpu_and_recorded(tmp_path, tiny_data_dir):
    from mnist_cnn.runtime import cpu_has_bf16

    train(TrainConfig(data_dir=str(tiny_data_dir), limit=128), tmp_path / "auto", verbose=0)
    saved = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert saved["config"]["bf16"] is cpu_has_bf16()


def test_same_seed_same_metrics(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=256, seed=3)
    first = train(config, tmp_path / "a", verbose=0).metrics
    second = train(config, tmp_path / "b", verbose=0).metrics
    assert first["test_loss"] == second["test_loss"]
    assert first["test_accuracy"] == second["test_accuracy"]
    other = train(config.replace(seed=4), tmp_path / "c", verbose=0).metrics
    assert other["test_loss"] != first["test_loss"]


def test_channels_first_still_trains(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=128, data_format="channels_first")
    result = train(config, tmp_path / "cf", verbose=0)
    assert result.model.input_shape == (None, 1, 28, 28)
    assert read_run(tmp_path / "cf").onnx_record["input_shape"] == [None, 1, 28, 28]
    # the exported channels_first model reads the test set as the trained Keras model did
    found = evaluate_run(tmp_path / "cf")["test_accuracy"]
    assert abs(found - result.metrics["test_accuracy"]) <= 1 / 200  # one of 200 test images


def test_non_empty_output_is_refused_unless_overwrite(tmp_path, tiny_data_dir):
    output = tmp_path / "run"
    output.mkdir()
    (output / "keep.txt").write_text("precious")
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=64)
    with pytest.raises(MnistCnnError, match="not empty.*--overwrite"):
        train(config, output, verbose=0)
    assert {p.name for p in output.iterdir()} == {"keep.txt"}
    train(config, output, overwrite=True, verbose=0)
    assert RUN_FILES <= {p.name for p in output.iterdir()}


def test_bad_data_writes_nothing(tmp_path, tiny_data_dir):
    path = tiny_data_dir / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    output = tmp_path / "never"
    with pytest.raises(MnistCnnError, match="train-images-idx3-ubyte.gz"):
        train(TrainConfig(data_dir=str(tiny_data_dir)), output, verbose=0)
    assert not output.exists()


@pytest.mark.slow
def test_tutorial_recipe_reaches_97_percent(tutorial_run):
    """The full tutorial recipe: 1 epoch, batch 32, Adam 1e-4 on all 60,000 images."""
    metrics = json.loads((tutorial_run / "metrics.json").read_text())
    assert metrics["train_images"] == 60_000 and metrics["epochs"] == 1
    assert metrics["test_accuracy"] >= 0.97
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000
    saved = json.loads((tutorial_run / "config.json").read_text())
    assert saved["data_source"] == str(PACKAGED_DIR)
    assert saved["config"]["batch_size"] == 32 and saved["config"]["learning_rate"] == 1e-4


@pytest.mark.parametrize("recipe", ["fast", "best"])
def test_recipes_train_a_few_steps(tmp_path, tiny_data_dir, recipe):
    from mnist_cnn.config import recipe_config

    config = recipe_config(recipe, data_dir=str(tiny_data_dir), limit=256, epochs=1)
    result = train(config, tmp_path / recipe, verbose=0)
    assert result.model.count_params() == 3_274_634  # augmentation is not saved with the model
    saved = json.loads((tmp_path / recipe / "config.json").read_text())["config"]
    assert saved["recipe"] == recipe and saved["schedule"] == "warmup_cosine"
    found = evaluate_run(tmp_path / recipe)["test_accuracy"]  # through the run's model.onnx
    assert abs(found - result.metrics["test_accuracy"]) <= 1 / 200  # one of 200 test images


def test_robust_recipe_holds_images_out_and_calibrates(tmp_path, tiny_data_dir):
    from mnist_cnn.config import recipe_config

    config = recipe_config(
        "robust", data_dir=str(tiny_data_dir), limit=256, epochs=1, validation_images=200
    )
    result = train(config, tmp_path / "robust", verbose=0)
    assert result.model.count_params() == 3_274_634  # capture augmentation is not saved
    assert result.metrics["train_images"] == 256 and result.metrics["validation_images"] == 200
    assert result.metrics["outlier_images"] == round(0.1 * 256)  # outlier exposure is on
    saved = json.loads((tmp_path / "robust" / "config.json").read_text())
    assert saved["config"]["capture"] is True
    assert saved["calibration"]["validation_images"] == 200
    assert saved["abstention"]["max_energy"] == result.calibration["abstention"]["max_energy"]


def test_held_out_images_must_leave_some_to_train_on(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), validation_images=512)
    with pytest.raises(MnistCnnError, match="leaves no training images"):
        train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()  # no started run left to refuse a retry


def test_a_bad_init_from_leaves_no_started_run(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=64, init_from=str(tmp_path / "no"))
    with pytest.raises(MnistCnnError):
        train(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_an_output_under_a_file_or_over_a_checkpoint_file_is_refused(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=64)
    (tmp_path / "f").write_text("a file")
    with pytest.raises(MnistCnnError, match=r"f is not a directory"):
        train(config, tmp_path / "f" / "run", verbose=0)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint").write_text("a file")
    with pytest.raises(MnistCnnError, match=r"checkpoint: exists and is not a directory"):
        train(config, tmp_path / "run", overwrite=True, verbose=0)


def test_an_overwrite_unmarks_the_old_run_before_it_trains(tmp_path, tiny_data_dir):
    """Until the new run is saved the folder holds an unfinished run (resumable), never the
    old config.json beside the new model."""
    output = tmp_path / "run"
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=64, checkpoint_every=1)
    train(config, output, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(config.replace(seed=5), output, overwrite=True, verbose=0, callbacks=[Interrupt(1)])
    assert not (output / "config.json").exists()
    result = resume_run(output, verbose=0)
    assert read_run(output).config.seed == 5 and result.metrics["test_accuracy"] > 0


def test_a_diverged_run_leaves_no_checkpoint_of_nan_weights(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=64, learning_rate=1e30)
    with pytest.raises(MnistCnnError, match="diverged"):
        train(config, tmp_path / "run", verbose=0)
    for checkpoint in (tmp_path / "run" / "checkpoint").glob("*.npz"):
        with np.load(checkpoint) as saved:
            assert all(
                np.isfinite(saved[key]).all() for key in saved.files if saved[key].dtype.kind == "f"
            )


class Interrupt(keras.callbacks.Callback):
    """Stops training, as a crash would, once the optimizer has taken `steps` steps."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) >= self.steps:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("recipe", "batch_size", "steps_per_execution", "interrupt_at", "resumed_at"),
    [
        # 8 batches an epoch, one per call, a checkpoint every 3: the one at step 12 is batch
        # 4 of epoch 2
        ("tutorial", 32, 1, 14, {"epoch": 2, "step": 4}),
        # augmentation's random draws, 8 batches per compiled call, 16 batches an epoch:
        # callbacks come every 8 steps, so the checkpoint at step 24 is batch 8 of epoch 2
        ("best", 16, 8, 30, {"epoch": 2, "step": 8}),
    ],
)
def test_an_interrupted_run_resumes_mid_epoch_to_the_same_model(
    tmp_path, tiny_data_dir, recipe, batch_size, steps_per_execution, interrupt_at, resumed_at
):
    from mnist_cnn.config import recipe_config

    config = recipe_config(
        recipe,
        data_dir=str(tiny_data_dir),
        limit=256,
        epochs=2,
        batch_size=batch_size,
        steps_per_execution=steps_per_execution,
        checkpoint_every=3,
        log_every=2,
    )
    whole = train(config, tmp_path / "whole", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", verbose=0, callbacks=[Interrupt(interrupt_at)])
    assert not (tmp_path / "resumed" / "config.json").exists()  # not taken for a complete run
    with pytest.raises(MnistCnnError, match="interrupted run: finish it with .*--resume"):
        train(config, tmp_path / "resumed", verbose=0)
    resumed = resume_run(tmp_path / "resumed", verbose=0)
    assert {p.name for p in (tmp_path / "resumed").iterdir()} == RUN_FILES  # no checkpoint left
    for key in ("test_loss", "test_accuracy", "per_class_accuracy", "confusion_matrix"):
        assert resumed.metrics[key] == whole.metrics[key], key
    for name in ("history.csv", "batches.csv"):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "whole" / name).read_text()
    assert read_run(tmp_path / "resumed").document["resumed"] == [resumed_at]
    assert "resumed" not in read_run(tmp_path / "whole").document
    with pytest.raises(MnistCnnError, match="complete.*nothing to resume"):
        resume_run(tmp_path / "resumed")


def test_a_run_killed_after_its_last_epoch_resumes_to_the_same_model(
    tmp_path, tiny_data_dir, monkeypatch
):
    """Interrupted while evaluating: the last epoch's checkpoint is all that is left to load."""
    import mnist_cnn.train as train_module

    config = TrainConfig(data_dir=str(tiny_data_dir), limit=128, epochs=2, seed=5)
    whole = train(config, tmp_path / "whole", verbose=0)
    evaluate = train_module.evaluate_model

    def crash(*arguments, **keywords):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "evaluate_model", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", verbose=0)
    monkeypatch.setattr(train_module, "evaluate_model", evaluate)
    resumed = resume_run(tmp_path / "resumed", verbose=0)
    assert resumed.metrics["test_loss"] == whole.metrics["test_loss"]
    assert read_run(tmp_path / "resumed").document["resumed"] == [{"epoch": 3, "step": 0}]
    assert (tmp_path / "resumed" / "history.csv").read_text() == (
        tmp_path / "whole" / "history.csv"
    ).read_text()
