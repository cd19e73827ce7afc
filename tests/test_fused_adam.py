import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnist_cnn.config import TrainConfig
from mnist_cnn.fused_adam import FusedAdam
from mnist_cnn.train import train

STEPS = 5


def _trained(optimizer):
    """Two variables after STEPS updates of fixed random gradients, and the optimizer."""
    random = np.random.default_rng(0)
    variables = [
        keras.Variable(random.normal(size=(64, 32)).astype("float32")),
        keras.Variable(random.normal(size=(32,)).astype("float32")),
    ]
    gradients = [
        [tf.constant(random.normal(size=v.shape).astype("float32")) for v in variables]
        for _ in range(STEPS)
    ]
    for step_gradients in gradients:
        optimizer.apply_gradients(zip(step_gradients, variables, strict=True))
    return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fused_adam_makes_keras_adams_updates(amsgrad, monkeypatch):
    fused_calls = []
    fused_kernel = tf.raw_ops.ResourceApplyAdam

    def counted(**arguments):
        fused_calls.append(arguments["var"])
        return fused_kernel(**arguments)

    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", counted)
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=STEPS)
    fused, fused_optimizer = _trained(FusedAdam(learning_rate=schedule, amsgrad=amsgrad))
    plain, plain_optimizer = _trained(
        keras.optimizers.Adam(learning_rate=schedule, amsgrad=amsgrad)
    )
    for ours, theirs in zip(fused, plain, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # float32 rounding
    # the same state: a checkpoint of one resumes the other
    for ours, theirs in zip(fused_optimizer.variables, plain_optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-7)
    # the fused kernel did the updates (2 variables x STEPS); AMSGrad takes Keras's path
    assert len(fused_calls) == (0 if amsgrad else 2 * STEPS)
    moved = np.abs(fused[0] - _trained(FusedAdam(learning_rate=0.0))[0][0]).max()
    assert moved > 1e-3  # the variables did move: the comparison is not of two no-ops


def test_a_run_trained_with_fused_adam_saves_a_model_plain_keras_loads(tmp_path, tiny_data_dir):
    config = TrainConfig(data_dir=str(tiny_data_dir), limit=256, bf16=False)
    assert config.fused_adam  # the default
    train(config, tmp_path / "run", verbose=0)
    with zipfile.ZipFile(tmp_path / "run" / "model.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert "FusedAdam" not in json.dumps(saved)
    loader = (
        "import keras, sys; model = keras.saving.load_model(sys.argv[1]); "
        "print(model.count_params())"
    )
    result = subprocess.run(
        [sys.executable, "-c", loader, str(tmp_path / "run" / "model.keras")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[-1] == "3274634"
