"""`ensemble(run_dirs, output_dir)`: several trained runs as one run that averages their
probabilities.

The members' networks sit side by side in one Keras model (input -> each member -> the mean
of their probabilities), saved as `model.keras` and exported as one ONNX graph whose second
output is the mean of the members' logits (what the energy score of "not a digit" reads). The
result is a normal run directory, so evaluate, report, calibrate, export, predict and serve
take it like any other; config.json's `ensemble` record names the members and their hashes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from mnist_cnn import MnistCnnError, runtime
from mnist_cnn.evaluate import evaluate_model
from mnist_cnn.export import onnx_model_or_none
from mnist_cnn.files import sha256_file
from mnist_cnn.image_folder import training_data
from mnist_cnn.inference import load_keras_model
from mnist_cnn.run import ENSEMBLE_KEY, Run, read_run, run_document, save_run
from mnist_cnn.train import check_output_dir

logger = logging.getLogger(__name__)
MIN_MEMBERS = 2
MEAN_LAYER = "mean_probabilities"


class EnsembleError(MnistCnnError):
    """The runs cannot be combined (too few, different layouts or data)."""


def _check_members(runs: list[Run]) -> None:
    if len(runs) < MIN_MEMBERS:
        raise EnsembleError(f"an ensemble needs at least {MIN_MEMBERS} runs, got {len(runs)}")
    paths = [run.path.resolve() for run in runs]
    if len(set(paths)) != len(paths):
        raise EnsembleError("the same run is given twice: each member must be another model")
    formats = {run.config.data_format for run in runs}
    if len(formats) > 1:
        raise EnsembleError(
            f"members differ in data_format ({', '.join(sorted(formats))}); "
            "retrain them in one layout"
        )
    data = {str(run.document.get("data_sha256")) for run in runs}
    if len(data) > 1:
        raise EnsembleError("members were trained on different data (data_sha256 differs)")
    for run in runs:
        if not run.model_path.is_file():
            raise EnsembleError(f"{run.model_path}: missing (a member needs its Keras model)")


def ensemble_model(members: list[Any]) -> Any:
    """One Keras model: the mean of the members' probabilities (members renamed member_N so
    that their layer names cannot clash)."""
    import keras

    inputs = keras.Input(shape=members[0].input_shape[1:], name="image")
    outputs = [
        keras.Model(member.inputs, member.outputs[0], name=f"member_{index}")(inputs)
        for index, member in enumerate(members)
    ]
    mean = keras.layers.Average(name=MEAN_LAYER)(outputs)
    return keras.Model(inputs, mean, name=f"ensemble_of_{len(members)}")


def ensemble(
    run_dirs: list[str | Path], output_dir: str | Path, *, overwrite: bool = False
) -> dict[str, Any]:
    """Combine trained runs into the run `output_dir`; returns its metrics (MNIST test)."""
    output_dir = Path(output_dir)
    runs = [read_run(run_dir) for run_dir in run_dirs]
    _check_members(runs)
    if any(run.path.resolve() == output_dir.resolve() for run in runs):
        raise MnistCnnError(f"{output_dir}: is one of the members; write the ensemble elsewhere")
    check_output_dir(output_dir, overwrite)
    runtime.configure(runs[0].config.seed)
    config = runs[0].config
    dataset = training_data(config)
    model = ensemble_model([load_keras_model(run) for run in runs])

    started = time.perf_counter()
    evaluation = evaluate_model(model, dataset.test, config.data_format)
    members = [
        {
            "run": str(run.path.resolve()),
            "model_sha256": sha256_file(run.model_path),
            "seed": run.config.seed,
            "test_accuracy": run.metrics().get("test_accuracy"),
        }
        for run in runs
    ]
    metrics = {
        "test_loss": evaluation["test_loss"],
        "test_accuracy": evaluation["test_accuracy"],
        "evaluate_seconds": time.perf_counter() - started,
        "members": len(runs),
        "member_test_accuracy": [member["test_accuracy"] for member in members],
        "per_class_accuracy": evaluation["per_class_accuracy"],
        "confusion_matrix": evaluation["confusion_matrix"],
    }
    onnx_data, onnx_record = onnx_model_or_none(model, config.data_format, "the ensemble")
    document = run_document(
        config,
        versions=runtime.library_versions(),
        data_source=dataset.source,
        data_sha256=dataset.sha256,
        onnx_record=onnx_record,
        dataset=dataset.identity,
    )
    document[ENSEMBLE_KEY] = {"members": members}
    save_run(
        output_dir,
        save_model=model.save,
        onnx_model=onnx_data,
        document=document,
        metrics=metrics,
        history_rows=[],
        batch_rows=[],
    )
    held_out = {run.config.validation_images for run in runs}
    if config.validation_images and onnx_data is not None and len(held_out) == 1:
        from mnist_cnn.fit_confidence import calibrate_run

        calibrate_run(output_dir)  # on the held-out images that every member left out
    elif len(held_out) > 1:
        logger.warning(
            "members held out different numbers of training images (%s), so some trained on "
            "the others' calibration images: the ensemble is left uncalibrated",
            ", ".join(map(str, sorted(held_out))),
        )
    return metrics
