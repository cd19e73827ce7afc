"""The one place that talks to TensorFlow directly: threads, determinism, compiled inference.

Everything else in mnist-cnn is backend-agnostic Keras. Importing this module loads nothing heavy:
TensorFlow and Keras are imported inside the functions that use them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # TensorFlow loads in the functions that need it: cpu_count stays light
    import keras


def cpu_count() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# CPU flags (Linux /proc/cpuinfo names) of native bfloat16 arithmetic, which oneDNN uses for
# mixed_bfloat16 layers; elsewhere it emulates bfloat16, slower than float32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """True if the CPU computes bfloat16 natively (False where /proc/cpuinfo is unreadable)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not BF16_CPU_FLAGS.isdisjoint(line.partition(":")[2].split())
    return False


def configure(seed: int | None = None) -> None:
    """Fix thread pools to the CPUs available and seed every random generator.

    Left to itself TensorFlow sized its pools differently from run to run here (one core busy
    in some runs); fixing both pools to the CPU count makes the thread use the same every run.
    TensorFlow's `enable_op_determinism` is not used: Keras turns XLA off under it, and the
    model is compiled with XLA (see train.compile_model); runs are reproducible without it on
    CPU (tests/test_train.py checks identical metrics for the same seed).
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpu_count())
        tf.config.threading.set_inter_op_parallelism_threads(cpu_count())
    except RuntimeError:  # already initialised in this process: the first setting stays
        pass
    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)


def training_batches(images, labels, batch_size: int, seed: int):
    """Shuffled batches of (images, labels) for `fit`, reshuffled every epoch, from memory.

    Used with `TrainConfig.fast_kernels`. Keras's own pipeline for NumPy arrays lets tf.data
    autotune its threads; on 2 cores those threads took CPU from the training kernels in about
    half the runs (1 of 2 cores idle, a third to a half slower). Here the whole arrays are
    constants, each batch is one gather of shuffled indices, and tf.data runs with one private
    thread and no autotuning.
    """
    import tensorflow as tf

    images = tf.constant(images)
    labels = tf.constant(labels)
    count = int(images.shape[0])
    batches = (
        tf.data.Dataset.range(count)
        .shuffle(count, seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
        .prefetch(2)
    )
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.deterministic = True
    return batches.with_options(options)


def batches_in_order(images, labels, batch_size: int):
    """`order -> batches of (images[order], labels[order])` for `fit`, gathered from memory.

    The pipeline of `training_batches`, given the order instead of drawing it (train's own
    seeded order per epoch, so that a resumed run can skip the batches already done); the
    arrays become constants once, not once per epoch.
    """
    import tensorflow as tf

    images = tf.constant(images)
    labels = tf.constant(labels)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.deterministic = True

    def batches(order):
        dataset = (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch_size)
            .map(lambda index: (tf.gather(images, index), tf.gather(labels, index)))
            .prefetch(2)
        )
        return dataset.with_options(options)

    return batches


def library_versions() -> dict[str, str]:
    import keras
    import numpy
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": numpy.__version__}


def compiled_call(model: keras.Model, jit_compile: bool = False):
    """A traced function `images -> probabilities` of the model: no `model.predict` overhead.

    `model.predict` builds a data pipeline per call (tens of ms); a traced call with a fixed
    input signature costs about a millisecond for one image and never retraces on batch size.
    `jit_compile=True` compiles it with XLA instead (one compilation per new batch size).
    """
    import tensorflow as tf

    signature = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)]

    @tf.function(input_signature=signature, reduce_retracing=True, jit_compile=jit_compile)
    def call(images):
        return model(images, training=False)

    return lambda images: call(images).numpy()
