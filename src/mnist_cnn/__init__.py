"""mnist-cnn: the classic Keras MNIST tutorial CNN, trained, evaluated, served."""

import os
import sys

__version__ = "0.1.0"

# Keras 3 picks its backend at import time; mnist-cnn is measured and tested on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter


def enable_onednn() -> bool:
    """Turn on TensorFlow's oneDNN kernels for this process; True if they will be used.

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX, and reads
    the setting once, when it loads: call this before anything imports TensorFlow or Keras.
    On the 2-core AMD EPYC (AVX2) we measure on they train the tutorial network 1.6-2.2x faster
    (benchmarks/README.md). A user's own TF_ENABLE_ONEDNN_OPTS=0 is respected.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "1"


class MnistCnnError(Exception):
    """A problem the user can fix (bad file, bad flag, missing model); shown without traceback."""
