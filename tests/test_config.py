import json

import pytest

from mnist_cnn import MnistCnnError
from mnist_cnn.config import TrainConfig, load_config


def test_defaults_are_the_tutorial_recipe():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.learning_rate) == (1, 32, 1e-4)
    assert config.recipe == "tutorial"


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("batch_size", -1), ("learning_rate", 0.0), ("data_format", "nhwc")],
)
def test_invalid_values_are_refused(field, value):
    with pytest.raises(MnistCnnError, match=field):
        TrainConfig(**{field: value})


def test_round_trip_through_json(tmp_path):
    config = TrainConfig(epochs=3, seed=7, extra={"schedule": "onecycle"})
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": config.to_dict()}))
    assert load_config(str(path)) == config


def test_unknown_fields_and_bad_json_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": {"epochs": 1, "colour": "red"}}))
    with pytest.raises(MnistCnnError, match="unknown field.*colour"):
        load_config(str(path))
    path.write_text("{not json")
    with pytest.raises(MnistCnnError, match="config.json: not a readable JSON"):
        load_config(str(path))
