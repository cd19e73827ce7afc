"""mnist-cnn: the classic Keras MNIST tutorial CNN, trained, evaluated, served."""

import os
import sys
import warnings

__version__ = "0.1.0"

# Keras 3 picks its backend at import time; mnist-cnn is measured and tested on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter
# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX;
# on the 2-core AMD EPYC (AVX2) we measure on they train the tutorial network 1.5-2.5x faster
# than its Eigen kernels (benchmarks/README.md). TF_ENABLE_ONEDNN_OPTS=0 turns them off.
if "tensorflow" in sys.modules and "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
    warnings.warn(
        "TensorFlow was imported before mnist_cnn, so its oneDNN kernels stay off and training "
        "runs slower; import mnist_cnn first or set TF_ENABLE_ONEDNN_OPTS=1",
        stacklevel=2,
    )
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


class MnistCnnError(Exception):
    """A problem the user can fix (bad file, bad flag, missing model); shown without traceback."""
