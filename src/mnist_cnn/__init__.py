"""mnist-cnn: the classic Keras MNIST tutorial CNN, trained, evaluated, served."""

import os

__version__ = "0.1.0"

# Keras 3 picks its backend at import time; mnist-cnn is measured and tested on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter


class MnistCnnError(Exception):
    """A problem the user can fix (bad file, bad flag, missing model); shown without traceback."""
