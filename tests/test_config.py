import pytest

from mnist_cnn import MnistCnnError
from mnist_cnn.config import RECIPES, TrainConfig, recipe_config


def test_defaults_are_the_tutorial_recipe():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.learning_rate) == (1, 32, 1e-4)
    assert config.recipe == "tutorial"


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("learning_rate", 0.0),
        ("learning_rate", float("inf")),
        ("learning_rate", float("nan")),
        ("batch_size", 10**20),  # reached TensorFlow as an integer it cannot hold
        ("data_format", "nhwc"),
        ("outliers", -0.1),
        ("outliers", 1.5),
        ("flagged_ones", -0.1),
        ("flagged_ones", 1.01),
        ("low_resolution", 0.2),  # without capture
        ("letter_outliers", True),  # without outliers
    ],
)
def test_invalid_values_are_refused(field, value):
    with pytest.raises(MnistCnnError, match=field):
        TrainConfig(**{field: value})


def test_recipes_apply_and_flags_override():
    assert recipe_config("tutorial") == TrainConfig()
    fast = recipe_config("fast", seed=5, epochs=None)
    assert fast.recipe == "fast" and fast.seed == 5
    assert fast.batch_size == RECIPES["fast"]["batch_size"]
    assert recipe_config("best").augments and not TrainConfig().augments
    # Every recipe trains on the fast kernels by default; flags override.
    assert fast.fast_kernels and TrainConfig().fast_kernels  # the fastest path by default
    assert not recipe_config("fast", fast_kernels=False).fast_kernels
    with pytest.raises(MnistCnnError, match="unknown recipe 'quick'.*tutorial, fast, best"):
        recipe_config("quick")


def test_bf16_defaults_to_the_cpu_for_one_channels_last_process():
    from mnist_cnn.config import bf16_by_default

    tutorial = TrainConfig()
    assert tutorial.bf16 is None  # resolved by train, then recorded in the run
    assert bf16_by_default(tutorial, distributed=False, resume=False, native=True)
    assert not bf16_by_default(tutorial, distributed=False, resume=False, native=False)
    assert not bf16_by_default(tutorial, distributed=True, resume=False, native=True)
    assert not bf16_by_default(tutorial, distributed=False, resume=True, native=True)
    for other in (TrainConfig(fast_kernels=False), TrainConfig(data_format="channels_first")):
        assert not bf16_by_default(other, distributed=False, resume=False, native=True)
    # every recipe lets the CPU decide (each was measured in both arithmetics)
    assert all(recipe_config(name).bf16 is None for name in RECIPES)
    with pytest.raises(MnistCnnError, match="bf16"):
        TrainConfig(bf16=True, data_format="channels_first")
