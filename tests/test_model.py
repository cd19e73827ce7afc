import pytest

from mnist_cnn.model import TUTORIAL_PARAMETERS, build_model


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_tutorial_architecture(data_format):
    model = build_model(data_format)
    assert model.count_params() == TUTORIAL_PARAMETERS == 3_274_634
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    if data_format == "channels_first":
        expected = [(32, 28, 28), (32, 14, 14), (64, 14, 14), (64, 7, 7), (3136,), (1024,), (10,)]
    else:
        expected = [(28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64), (3136,), (1024,), (10,)]
    assert shapes == expected
    assert model.layers[-1].activation.__name__ == "softmax"
