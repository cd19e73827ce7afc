"""distributed.py: TF_CONFIG as a cluster sets it, and local worker configs."""

from __future__ import annotations

import json

import pytest

from mnist_cnn.distributed import (
    TF_CONFIG_VARIABLE,
    DistributedError,
    cluster_task,
    local_tf_configs,
)


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
