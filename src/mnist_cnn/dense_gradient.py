"""A Dense layer whose input gradient runs on TensorFlow's fast matmul path in float32.

The tutorial network's big layer maps the 3,136 flattened features to 1,024. Backpropagation
takes the gradient with respect to its input as `gradient @ kernel^T`: TensorFlow's gradient of
MatMul is a MatMul with `transpose_b`, and in float32 that product of a batch of 32 took 7.1 ms
(29 GFLOP/s) on the 2-core dev machine, against 2.5 ms (81 GFLOP/s) for the same product
written as `(kernel @ gradient^T)^T` (oneDNN on; Eigen's kernels: 8.5 against 2.6 ms), about
a fifth of a float32 training step. bfloat16 does not have the problem (1.7 ms either way), so the
layer changes nothing there (benchmarks/dense_gradient.py, median of 5 rounds). The tutorial
recipe (batch 32) in float32 trains in 0.75x the time; at batch 128 (`best`) the gain was too
small to measure (benchmarks/README.md, "Run of 2026-12-07, later: the dense layer's input
gradient").

The arithmetic is the same product, summed in another order: the gradients agree with
TensorFlow's own to float32 rounding (tests/test_dense_gradient.py). The layer holds the same
weights as `keras.layers.Dense`; train saves a plain copy of the network, so no saved model
names this class.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def input_gradient(upstream: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """`upstream @ kernel^T`, computed as `(kernel @ upstream^T)^T`: the same product on
    the fast path (benchmarks/dense_gradient.py times both)."""
    return tf.transpose(tf.matmul(kernel, upstream, transpose_b=True))


@tf.custom_gradient
def matmul(inputs: tf.Tensor, kernel: tf.Tensor):
    """`inputs @ kernel`, whose input gradient is `input_gradient`; the kernel's is
    TensorFlow's own (`inputs^T @ upstream`)."""

    def gradient(upstream: tf.Tensor):
        kernel_gradient = tf.matmul(inputs, upstream, transpose_a=True)
        return input_gradient(upstream, kernel), kernel_gradient

    return tf.matmul(inputs, kernel), gradient


@keras.saving.register_keras_serializable(package="mnist_cnn")
class FastGradientDense(layers.Dense):
    """`keras.layers.Dense` whose float32 backward pass uses `matmul` above."""

    def call(self, inputs, training=None):
        plain = (
            self.compute_dtype != "float32"
            or self.lora_enabled
            or self.quantization_mode is not None
            or len(inputs.shape) != 2
        )
        if plain:
            return super().call(inputs, training=training)
        outputs = matmul(inputs, self.kernel.value)
        if self.bias is not None:
            outputs = outputs + self.bias.value
        return outputs if self.activation is None else self.activation(outputs)
