"""`mnist-cnn ensemble`: runs averaged into one run that every other command takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mnist_cnn import MnistCnnError
from mnist_cnn.cli import main
from mnist_cnn.config import TrainConfig
from mnist_cnn.ensemble import EnsembleError, ensemble
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.inference import Predictor
from mnist_cnn.run import read_run
from mnist_cnn.serve import create_app
from tests.conftest import write_idx_dir


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_splits, tiny_run):
    """The tiny run and a second one from another seed, on the same data."""
    from mnist_cnn.train import train

    data_dir = read_run(tiny_run).config.data_dir
    output = tmp_path_factory.mktemp("runs") / "seed1"
    config = read_run(tiny_run).config.replace(seed=1, data_dir=data_dir)
    train(config, output, verbose=0)
    return [tiny_run, output]


@pytest.fixture(scope="module")
def combined(members, tmp_path_factory):
    output = tmp_path_factory.mktemp("runs") / "ensemble"
    assert main(["ensemble", *map(str, members), "--output", str(output)]) == 0
    return output


def test_the_ensemble_averages_its_members_probabilities_and_logits(members, combined, images):
    first, second = (Predictor.from_dir(member) for member in members)
    joint = Predictor.from_dir(combined)
    assert joint.backend == "onnxruntime"  # one ONNX graph for all members
    expected = (first.probabilities(images) + second.probabilities(images)) / 2
    np.testing.assert_allclose(joint.probabilities(images), expected, atol=1e-5)
    (_, first_logits), (_, second_logits) = first.outputs(images), second.outputs(images)
    _, logits = joint.outputs(images)
    np.testing.assert_allclose(logits, (first_logits + second_logits) / 2, atol=1e-4)


def test_the_ensemble_is_a_normal_run(members, combined, capsys):
    run = read_run(combined)
    record = run.ensemble
    assert [member["run"] for member in record["members"]] == [str(m.resolve()) for m in members]
    assert [member["seed"] for member in record["members"]] == [0, 1]
    saved = run.metrics()
    assert saved["members"] == 2
    assert evaluate_run(combined)["test_accuracy"] == pytest.approx(saved["test_accuracy"])
    assert main(["evaluate", str(combined), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == pytest.approx(
        saved["test_accuracy"]
    )
    assert main(["report", str(combined)]) == 0
    assert (run.report_dir / "confusion_matrix.png").is_file()
    with TestClient(create_app(combined)) as client:
        digit = client.post("/predict", json={"pixels": np.zeros((28, 28)).tolist()})
        assert digit.status_code == 200


def test_one_run_is_not_an_ensemble(tiny_run, tmp_path):
    with pytest.raises(EnsembleError, match="at least 2 runs"):
        ensemble([tiny_run], tmp_path / "out")


def test_the_same_run_twice_is_refused(tiny_run, tmp_path):
    with pytest.raises(EnsembleError, match="same run is given twice"):
        ensemble([tiny_run, tiny_run], tmp_path / "out")


def test_an_output_that_is_a_member_is_refused(members):
    before = (members[1] / "config.json").read_bytes()
    with pytest.raises(MnistCnnError, match="is one of the members"):
        ensemble(members, members[1], overwrite=True)
    assert (members[1] / "config.json").read_bytes() == before


def test_members_of_other_data_are_refused(tiny_run, tmp_path, tiny_splits, capsys):
    from mnist_cnn.train import train

    images, labels = tiny_splits["train"]
    other = {"train": (255 - images, labels), "test": tiny_splits["test"]}
    data_dir = write_idx_dir(tmp_path / "other-data", other)
    run = tmp_path / "other"
    config = TrainConfig(data_dir=str(data_dir), batch_size=64, learning_rate=1e-3)
    train(config, run, verbose=0)
    assert main(["ensemble", str(tiny_run), str(run), "--output", str(tmp_path / "o")]) == 1
    assert "different data" in capsys.readouterr().err
