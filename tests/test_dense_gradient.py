import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import mnist_cnn.dense_gradient as dense_gradient
from mnist_cnn.config import TrainConfig
from mnist_cnn.dense_gradient import FastGradientDense
from mnist_cnn.model import build_model
from mnist_cnn.train import train


def _outputs_and_gradients(layer_class, inputs, weights, dtype=None):
    layer = layer_class(16, activation="relu", **({} if dtype is None else {"dtype": dtype}))
    layer.build(inputs.shape)
    layer.set_weights(weights)
    upstream = tf.constant(np.random.default_rng(1).normal(size=(inputs.shape[0], 16)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(tf.cast(outputs, tf.float32) * upstream)
    gradients = tape.gradient(loss, [inputs, *layer.trainable_variables])
    return outputs.numpy(), [g.numpy() for g in gradients]


def test_the_fast_gradient_is_tensorflows_gradient_to_float32_rounding(monkeypatch):
    calls = []
    fast_matmul = dense_gradient.matmul
    monkeypatch.setattr(dense_gradient, "matmul", lambda *a: calls.append(1) or fast_matmul(*a))
    random = np.random.default_rng(0)
    inputs = tf.constant(random.normal(size=(32, 48)), tf.float32)
    weights = [
        random.normal(size=(48, 16)).astype("float32"),
        random.normal(size=16).astype("float32"),
    ]
    ours, our_gradients = _outputs_and_gradients(FastGradientDense, inputs, weights)
    theirs, their_gradients = _outputs_and_gradients(keras.layers.Dense, inputs, weights)
    assert calls  # the float32 layer took the fast path
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert len(our_gradients) == 3  # inputs, kernel, bias
    for mine, reference in zip(our_gradients, their_gradients, strict=True):
        assert np.abs(reference).max() > 1.0  # a real gradient, not zeros on both sides
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-4)


def test_bfloat16_takes_keras_path(monkeypatch):
    def refused(*arguments):
        raise AssertionError("the fast matmul ran in bfloat16")

    monkeypatch.setattr(dense_gradient, "matmul", refused)
    random = np.random.default_rng(0)
    inputs = tf.constant(random.normal(size=(4, 8)), tf.float32)
    weights = [random.normal(size=(8, 16)).astype("float32"), np.zeros(16, "float32")]
    outputs, _ = _outputs_and_gradients(FastGradientDense, inputs, weights, "mixed_bfloat16")
    assert outputs.shape == (4, 16)


def test_the_network_with_it_has_the_tutorials_weights():
    plain, fast = build_model(), build_model(dense_layer=FastGradientDense)
    assert fast.count_params() == plain.count_params() == 3_274_634
    assert isinstance(fast.get_layer("dense"), FastGradientDense)
    assert [w.shape for w in fast.get_weights()] == [w.shape for w in plain.get_weights()]


@pytest.mark.parametrize("enabled", [True, False])
def test_a_run_saves_a_plain_dense_layer(tmp_path, tiny_data_dir, enabled):
    config = TrainConfig(
        data_dir=str(tiny_data_dir),
        limit=256,
        bf16=False,
        fused_adam=False,
        fast_dense_gradient=enabled,
    )
    result = train(config, tmp_path / "run", verbose=0)
    assert result.metrics["test_accuracy"] > 0.0
    with zipfile.ZipFile(tmp_path / "run" / "model.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert "FastGradientDense" not in json.dumps(saved)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert recorded["fast_dense_gradient"] is enabled
