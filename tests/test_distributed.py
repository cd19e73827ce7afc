"""distributed.py: TF_CONFIG as a cluster sets it, and local worker configs."""

from __future__ import annotations

import json
import os

import pytest

from mnist_cnn.cli import main
from mnist_cnn.distributed import (
    TF_CONFIG_VARIABLE,
    DistributedError,
    cluster_task,
    cpu_share,
    local_tf_configs,
)
from mnist_cnn.evaluate import evaluate_run
from mnist_cnn.inference import Predictor
from mnist_cnn.run import checkpoint_dir, read_run


def test_no_tf_config_is_single_process_training(monkeypatch):
    monkeypatch.delenv(TF_CONFIG_VARIABLE, raising=False)
    assert cluster_task() is None


def test_a_cluster_of_one_is_single_process_training(monkeypatch):
    config = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv(TF_CONFIG_VARIABLE, json.dumps(config))
    assert cluster_task() is None


def test_local_configs_name_every_worker_once(monkeypatch):
    configs = [json.loads(text) for text in local_tf_configs(3)]
    addresses = configs[0]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert [c["task"]["index"] for c in configs] == [0, 1, 2]
    assert all(c["cluster"]["worker"] == addresses for c in configs)
    monkeypatch.setenv(TF_CONFIG_VARIABLE, json.dumps(configs[2]))
    assert cluster_task() == (2, 3)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "could not read it"),
        (json.dumps({"cluster": {}}), "could not read it"),
        (
            json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "ps", "index": 0}}),
            "worker",
        ),
        (
            json.dumps(
                {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}
            ),
            "index 2",
        ),
    ],
)
def test_a_malformed_tf_config_is_a_clear_error(monkeypatch, value, message):
    monkeypatch.setenv(TF_CONFIG_VARIABLE, value)
    with pytest.raises(DistributedError, match=message):
        cluster_task()


def test_two_local_workers_train_a_normal_run_like_one_worker(tiny_data_dir, tmp_path):
    """`train --workers 2`: two processes, one global batch split between them; the saved run
    is a normal one, within 0.5 points of a single worker on the same global batch."""
    common = ["--data-dir", str(tiny_data_dir), "--batch-size", "64", "--learning-rate", "1e-3"]
    common += ["--no-report", "--no-bf16"]  # workers train float32: the same arithmetic
    single, double = tmp_path / "one", tmp_path / "two"
    assert main(["train", "--output", str(single), *common]) == 0
    assert main(["train", "--output", str(double), "--workers", "2", *common]) == 0
    run = read_run(double)
    assert run.onnx_path.is_file() and run.model_path.is_file()
    assert not checkpoint_dir(double).exists()  # finished: no interrupted state left
    accuracy = {
        path: Predictor.from_dir(path).run.metrics()["test_accuracy"] for path in (single, double)
    }
    assert abs(accuracy[single] - accuracy[double]) <= 0.005, accuracy
    assert evaluate_run(double)["test_accuracy"] == pytest.approx(accuracy[double])


def test_workers_with_tf_config_set_is_refused(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(TF_CONFIG_VARIABLE, json.dumps({"cluster": {}}))
    assert main(["train", "--output", str(tmp_path / "x"), "--workers", "2"]) == 1
    assert "TF_CONFIG is set" in capsys.readouterr().err


def test_each_local_worker_gets_its_own_cpus():
    shares = [cpu_share(index, 2) for index in range(2)]
    cpus = len(os.sched_getaffinity(0))
    if cpus >= 2:
        assert not shares[0] & shares[1]
    assert all(len(share) == max(1, cpus // 2) for share in shares)
