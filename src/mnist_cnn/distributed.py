"""Data-parallel training across processes and hosts: TensorFlow's MultiWorkerMirroredStrategy.

Every worker runs the same `mnist-cnn train` command with `TF_CONFIG` set, the variable a
cluster manager sets on each host (`{"cluster": {"worker": ["host0:port", ...]}, "task":
{"type": "worker", "index": i}}`). Each worker builds the model under the strategy, reads its
shard of every global batch, and TensorFlow's collective all-reduce averages the gradients
(ring all-reduce over gRPC), so every worker holds the same weights after each step. Worker 0
(the chief) writes the run; the others train and exit. `mnist-cnn train --workers N` starts N
such workers on 127.0.0.1 (`launch_local_workers`): the same path as N hosts.

Keras 3.15 needs two fixes to train under this strategy on TensorFlow (keras-team/keras#20585,
reproduced here: both raise before the first step, nothing trains):
- `fit` first reduces a sample batch across workers to build the model symbolically
  (`_maybe_symbolic_build`), which fails with "Attempt to convert a value (PerReplica...) to a
  Tensor"; we build the model, loss, metrics and optimizer beforehand and skip that step.
- the per-step logs (loss, accuracy: scalars) are averaged with `axis=0`, which fails with
  "Invalid reduction dimension 0 for input with 0 dimensions"; we average them with
  `axis=None`. Only the logs' reduction changes: the gradients go through TensorFlow's own
  all-reduce inside the optimizer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from mnist_cnn import MnistCnnError

TF_CONFIG_VARIABLE = "TF_CONFIG"
LOCAL_HOST = "127.0.0.1"
POLL_SECONDS = 0.5  # how often the launcher looks for a failed worker


class DistributedError(MnistCnnError):
    """TF_CONFIG is malformed, or a worker failed."""


def cluster_task() -> tuple[int, int] | None:
    """(this worker's index, number of workers) from TF_CONFIG; None when it is not set or
    names a single worker (then training is the ordinary single-process kind)."""
    text = os.environ.get(TF_CONFIG_VARIABLE)
    if not text:
        return None
    try:
        document = json.loads(text)
        workers = document["cluster"]["worker"]
        task = document["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise DistributedError(
            f"{TF_CONFIG_VARIABLE}: expected {{'cluster': {{'worker': [addresses]}}, 'task': "
            f"{{'type': 'worker', 'index': N}}}}, could not read it ({error!r})"
        ) from None
    if not isinstance(workers, list) or not workers or task.get("type") != "worker":
        raise DistributedError(f"{TF_CONFIG_VARIABLE}: expected task type 'worker' and workers")
    if not 0 <= index < len(workers):
        raise DistributedError(
            f"{TF_CONFIG_VARIABLE}: task index {index} is not one of the {len(workers)} workers"
        )
    return (index, len(workers)) if len(workers) > 1 else None


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker run, and the strategy that connects it."""

    index: int
    workers: int
    strategy: Any

    @property
    def chief(self) -> bool:
        return self.index == 0

    def barrier(self) -> None:
        """Wait until every worker gets here (one all-reduce): the others wait for the chief
        to save the run, so that no worker's exit looks like a crash to the others."""
        import tensorflow as tf

        strategy = self.strategy

        @tf.function  # eagerly, the strategy warns of its overhead
        def all_reduce():
            return strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)

        all_reduce()


def join_cluster() -> Cluster | None:
    """The cluster TF_CONFIG names (connecting to its other workers), or None."""
    task = cluster_task()
    if task is None:
        return None
    return Cluster(index=task[0], workers=task[1], strategy=worker_strategy())


def worker_strategy() -> Any:
    """The strategy of this worker (it connects to the others: call before any other
    TensorFlow work), with Keras fixed to train under it (see the module docstring)."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tensorflow_trainer

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    reduce = tensorflow_trainer.reduce_per_replica
    if not getattr(reduce, "scalar_safe", False):

        def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
            multi_worker = tensorflow_trainer._collective_all_reduce_multi_worker(strategy)
            if multi_worker and reduction in ("auto", "mean"):
                return tf.nest.map_structure(
                    lambda value: strategy.reduce("MEAN", value, axis=None), values
                )
            return reduce(values, strategy, reduction)

        reduce_per_replica.scalar_safe = True
        tensorflow_trainer.reduce_per_replica = reduce_per_replica
    return strategy


def build_before_fit(model: Any, strategy: Any, sample: tuple[Any, Any]) -> None:
    """Build every variable of a compiled model under `strategy` from a local `sample` batch,
    and skip `fit`'s cross-worker symbolic build, which fails under this strategy."""
    with strategy.scope():
        model._symbolic_build(data_batch=sample)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def shard_by_data(dataset: Any) -> Any:
    """Each worker takes its share of every global batch (not whole files: the data are
    arrays in memory)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind((LOCAL_HOST, 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def cpu_share(index: int, workers: int) -> set[int]:
    """The CPUs worker `index` of `workers` on this machine may run on: an equal share, so
    that its thread pools (sized to the CPUs it sees) do not fight the others' for cores."""
    cpus = sorted(os.sched_getaffinity(0))
    size = max(1, len(cpus) // workers)
    start = (index * size) % len(cpus)
    return set(cpus[start : start + size])


def local_tf_configs(workers: int) -> list[str]:
    """TF_CONFIG for each of `workers` processes on this machine."""
    addresses = [f"{LOCAL_HOST}:{port}" for port in _free_ports(workers)]
    return [
        json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
        for index in range(workers)
    ]


def launch_local_workers(train_arguments: list[str], workers: int) -> int:
    """Run `mnist-cnn train ARGUMENTS` as `workers` processes on 127.0.0.1, each with its
    TF_CONFIG; 0 when all finish. The chief's output is shown; the others' stdout (the same
    progress) is dropped. A worker that fails stops the others, which would otherwise wait
    for it at the next all-reduce forever."""
    if workers < 2:
        raise ValueError(f"launch_local_workers needs 2 or more workers, got {workers}")
    command = [sys.executable, "-m", "mnist_cnn.cli", "train", *train_arguments]
    processes = []
    for index, tf_config in enumerate(local_tf_configs(workers)):
        environment = {**os.environ, TF_CONFIG_VARIABLE: tf_config}
        output = None if index == 0 else subprocess.DEVNULL
        cpus = cpu_share(index, workers)
        processes.append(
            subprocess.Popen(
                command,
                env=environment,
                stdout=output,
                preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus),  # noqa: PLW1509
            )
        )
    try:
        while any(process.poll() is None for process in processes):
            failed = [p for p in processes if p.returncode not in (None, 0)]
            if failed:
                break
            time.sleep(POLL_SECONDS)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait()
    statuses = [process.returncode for process in processes]
    for index, status in enumerate(statuses):
        if status != 0:
            print(f"mnist-cnn: worker {index} exited with status {status}", file=sys.stderr)
    return next((status for status in statuses if status != 0), 0)
