"""The run directory: file names, reading config.json without Keras, atomic saves."""

from __future__ import annotations

import json
import shutil

import pytest

from mnist_cnn import run as run_module
from mnist_cnn.config import TrainConfig
from mnist_cnn.run import FORMAT_VERSION, ModelLoadError, read_run, run_document, save_run


def _document(**overrides):
    return run_document(
        TrainConfig(**overrides),
        versions={"numpy": "2"},
        data_source="/data",
        data_sha256={},
        onnx_record=None,
    )


def test_read_run_gives_config_metrics_and_paths(tiny_run):
    run = read_run(tiny_run)
    assert run.config.batch_size == 64 and run.format_version == FORMAT_VERSION
    assert run.model_path == tiny_run / "model.keras" and run.onnx_path.is_file()
    assert run.metrics()["train_images"] == 512
    assert [row["step"] for row in run.batch_rows()] == [2.0, 4.0, 6.0, 8.0]
    assert len(run.history_rows()) == 1


def test_config_round_trips_through_save_and_read(tmp_path):
    document = _document(epochs=3, seed=7, schedule="warmup_cosine", shift=0.1)
    save_run(
        tmp_path / "run",
        save_model=lambda path: path.write_bytes(b"model"),
        onnx_model=None,
        document=document,
        metrics={"test_accuracy": 0.5},
        history_rows=[{"epoch": 1, "loss": 0.25}],
        batch_rows=[],
    )
    run = read_run(tmp_path / "run")
    assert run.config == TrainConfig(epochs=3, seed=7, schedule="warmup_cosine", shift=0.1)
    assert run.metrics() == {"test_accuracy": 0.5}
    assert run.history_rows() == [{"epoch": 1.0, "loss": 0.25}]
    assert run.onnx_record is None and not run.onnx_path.exists()


def test_save_run_refuses_an_onnx_hash_that_is_not_the_model(tmp_path):
    document = _document()
    document["onnx"] = {"sha256": "0" * 64}
    with pytest.raises(ValueError, match="does not match"):
        save_run(
            tmp_path / "run",
            save_model=lambda path: path.write_bytes(b"model"),
            onnx_model=b"other bytes",
            document=document,
            metrics={},
            history_rows=[],
            batch_rows=[],
        )
    assert not (tmp_path / "run").exists()  # checked before anything is written


def test_a_crash_while_saving_the_model_leaves_no_config(tmp_path):
    """config.json is written last: a run interrupted mid-save is never taken for complete."""

    def crash(path):
        path.write_bytes(b"half a model")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_run(
            tmp_path / "run",
            save_model=crash,
            onnx_model=None,
            document=_document(),
            metrics={},
            history_rows=[],
            batch_rows=[],
        )
    assert not (tmp_path / "run" / "config.json").exists()
    assert not (tmp_path / "run" / "model.keras").exists()  # the temporary file is gone too
    with pytest.raises(ModelLoadError, match="config.json: missing"):
        read_run(tmp_path / "run")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON"),
        ("[]", "expected a JSON object with a 'config' object"),
        (json.dumps({"config": {"epochs": 1, "colour": "red"}}), "unknown field.*colour"),
        (json.dumps({"config": {"epochs": 0}}), "epochs must be >= 1"),
        (json.dumps({"config": {}, "format_version": 99}), "format_version 99"),
    ],
)
def test_bad_config_json_is_a_one_line_error_naming_the_file(tmp_path, content, message):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ModelLoadError, match=message) as caught:
        read_run(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "config.json"))
    assert "\n" not in str(caught.value)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="no-run: not a directory"):
        read_run(tmp_path / "no-run")


def test_a_version_1_run_still_reads(tiny_run, tmp_path):
    """Runs made before format_version existed have neither it nor an ONNX record."""
    old = shutil.copytree(tiny_run, tmp_path / "old")
    document = json.loads((old / "config.json").read_text())
    del document["format_version"], document["onnx"]
    (old / "config.json").write_text(json.dumps(document))
    run = read_run(old)
    assert run.format_version == 1 and run.onnx_record is None


def test_no_other_module_spells_a_run_file_name():
    """run.py is the one owner of the run directory's file names."""
    import pathlib

    names = [
        run_module.MODEL_FILE,
        run_module.ONNX_FILE,
        run_module.CONFIG_FILE,
        run_module.METRICS_FILE,
        run_module.HISTORY_FILE,
        run_module.BATCHES_FILE,
        run_module.CHECKPOINT_DIR,
        run_module.CHECKPOINT_FILE,
        run_module.PREVIOUS_CHECKPOINT_FILE,
    ]
    source_dir = pathlib.Path(run_module.__file__).parent
    offenders = []
    for path in source_dir.glob("*.py"):
        if path.name == "run.py":
            continue
        for name in names:
            if f'"{name}"' in path.read_text(encoding="utf-8"):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_the_dataset_record_is_written_and_read(tmp_path):
    record = {"name": "fashion-mnist", "class_names": list("abcdefghij"), "identified_by": "sha256"}
    document = run_document(
        TrainConfig(),
        versions={},
        data_source="/data",
        data_sha256={},
        onnx_record=None,
        dataset=record,
    )
    (tmp_path / "config.json").write_text(json.dumps(document))
    run = read_run(tmp_path)
    assert run.dataset == record and run.class_names == tuple("abcdefghij")


def test_a_run_from_before_the_dataset_record_is_named_by_its_data_hashes(tmp_path):
    from mnist_cnn.data import MNIST_SHA256

    for name, hashes in (("mnist", MNIST_SHA256), (None, {"x": "0" * 64})):
        document = _document()
        document.update(format_version=3, data_sha256=hashes)  # no "dataset" record
        (tmp_path / "config.json").write_text(json.dumps(document))
        run = read_run(tmp_path)
        assert run.dataset["name"] == name and run.class_names == tuple("0123456789")
