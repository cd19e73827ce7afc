"""Adam whose update is one fused kernel per variable: TensorFlow's `ResourceApplyAdam`.

Keras's Adam updates each variable with about ten element-wise operations, each a separate
pass over the variable's memory with a temporary of its size: for the tutorial network's 3.3
million parameters, 7.7 ms a step against 2.8 ms for TensorFlow's fused kernel, which reads
the gradient and the two moments and writes the variable and the moments in one pass (one
update of all variables, timed alone by benchmarks/adam_step.py on the 2-core dev machine).
In training, float32 gained nothing measurable (the update overlaps the backward pass there:
48.3 against 48.8 s); in mixed bfloat16 the tutorial recipe trained in 25.6 against 30.6 s
(medians of 3 seeds, benchmarks/README.md, "Run of 2026-12-07: fused Adam").
The arithmetic is Keras's own, term for term:

    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
    variable -= m * alpha / (sqrt(v) + epsilon)

The moments are Keras's own variables, so checkpoints and `--resume` hold the same state as
with `keras.optimizers.Adam`; the saved `model.keras` carries no optimizer (train saves a plain
copy), so plain Keras loads it. What the fused kernel does not cover (AMSGrad, sparse
gradients, a variable without a resource handle) takes Keras's path.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mnist_cnn")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` with the update step in one TensorFlow kernel."""

    def update_step(self, gradient, variable, learning_rate):
        if (
            self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or not hasattr(variable, "handle")
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        moment, velocity = self._momentums[index].value, self._velocities[index].value
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=moment.handle,
            v=velocity.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
