import numpy as np
import pytest

from mnist_cnn.model import TUTORIAL_PARAMETERS, build_model

# Weights + biases per layer: conv 5x5x1->32, pool, conv 5x5x32->64, pool, flatten,
# dense 3136->1024, dense 1024->10 (the tutorial's network).
LAYER_PARAMETERS = [
    5 * 5 * 32 + 32,
    0,
    5 * 5 * 32 * 64 + 64,
    0,
    0,
    3136 * 1024 + 1024,
    1024 * 10 + 10,
]


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_tutorial_architecture(data_format):
    model = build_model(data_format)
    assert [layer.count_params() for layer in model.layers] == LAYER_PARAMETERS
    assert model.count_params() == TUTORIAL_PARAMETERS
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    if data_format == "channels_first":
        expected = [(32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 7, 7), (3136,), (1024,), (10,)]
    else:
        expected = [(28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64), (3136,), (1024,), (10,)]
    assert shapes == expected


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_untrained_model_outputs_a_distribution_per_image(data_format):
    model = build_model(data_format)
    shape = (1, 28, 28) if data_format == "channels_first" else (28, 28, 1)
    images = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    probabilities = np.asarray(model(images))
    assert probabilities.shape == (3, 10)
    assert (probabilities > 0).all()  # softmax: every digit possible
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1])  # depends on the image
