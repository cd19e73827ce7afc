"""runtime: the training input pipeline and thread settings."""

import os
import subprocess
import sys

import numpy as np

from mnist_cnn import runtime


def epochs_of(batches, count: int) -> list[np.ndarray]:
    """Labels seen per epoch (each label is the image's index, so order is visible)."""
    return [np.concatenate([labels.numpy() for _, labels in batches]) for _ in range(count)]


def test_training_batches_cover_every_image_once_per_epoch_in_a_new_order():
    images = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    labels = np.arange(100, dtype=np.int64)
    batches = runtime.training_batches(images, labels, batch_size=32, seed=3)
    first, second = epochs_of(batches, 2)
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert not np.array_equal(first, second)  # reshuffled every epoch
    assert not np.array_equal(first, np.arange(100))  # shuffled at all
    sizes = [len(labels) for _, labels in batches]
    assert sizes == [32, 32, 32, 4]
    for batch_images, batch_labels in batches:  # images stay paired with their labels
        assert np.array_equal(batch_images.numpy().reshape(-1), batch_labels.numpy())


def test_training_batches_same_seed_same_order_other_seed_other_order():
    images = np.zeros((64, 1, 1, 1), dtype=np.float32)
    labels = np.arange(64)
    runs = [epochs_of(runtime.training_batches(images, labels, 16, seed), 2) for seed in (5, 5, 6)]
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not np.array_equal(runs[0][0], runs[2][0])


def onednn_in_fresh_process(environment: dict[str, str], first: str = "") -> list[str]:
    code = (
        f"{first}import os, mnist_cnn; on = mnist_cnn.enable_onednn(); "
        "print(on, os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return completed.stdout.split()


def test_enable_onednn_turns_it_on_before_tensorflow_loads_and_respects_the_user():
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    assert onednn_in_fresh_process(environment) == ["True", "1"]
    user_off = {**environment, "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert onednn_in_fresh_process(user_off) == ["False", "0"]
    # Too late once TensorFlow has loaded: it says so instead of pretending.
    assert onednn_in_fresh_process(environment, "import tensorflow; ") == ["False", "None"]


def test_importing_mnist_cnn_leaves_tensorflow_settings_alone():
    """The tutorial recipe trains on TensorFlow's default kernels: importing leaves them."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = "import os, mnist_cnn.train; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert completed.stdout.split()[-1] == "None"


def test_cpu_has_bf16_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not runtime.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert runtime.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert runtime.cpu_has_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: avx512_bf16x\n")  # a flag that only starts alike
    assert not runtime.cpu_has_bf16(cpuinfo)
    assert not runtime.cpu_has_bf16(tmp_path / "missing")
