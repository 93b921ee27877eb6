"""Where training runs: one device, several GPUs (tf.distribute.MirroredStrategy) or a TPU; under the JAX
backend, Keras 3's own data parallelism.

`--strategy auto` picks mirrored when TensorFlow sees more than one GPU, else the default single device.

`train.batch_size` is the global batch on every machine: each step reads that many sequences and splits them
over the replicas, so one config trains the same recipe (steps, learning-rate schedule, mixup pairs) on a
laptop, on T4 x2 and on a TPU v5e-8. Every batch must split evenly (JAX's sharding refuses anything else, and
an uneven TF split gives one replica fewer sequences): training batches are full; the last evaluation batch is
padded by the input pipeline (kit.training.pipeline.eval_padding).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import keras

from kit.training.devices import announce
from kit.errors import KitError
from kit.progress import say

STRATEGIES = ("auto", "cpu", "mirrored", "tpu")


@dataclass(frozen=True)
class Replicas:
    """What one training step runs on: `count` copies of the model on devices of one `kind` (cpu, gpu, tpu)."""
    count: int = 1
    kind: str = "cpu"

    def __str__(self) -> str:
        """'cpu', 'gpu', '8 x tpu': what kit runs and metrics.json show as a fold's machine."""
        return self.kind if self.count == 1 else f"{self.count} x {self.kind}"


def split_batch(batch_size: int, replicas: int) -> int:
    """The sequences each replica reads per step of a global batch of `batch_size`; a batch that does not
    split evenly is an error naming the nearest one that does."""
    if batch_size < 1:
        raise KitError(f"train.batch_size={batch_size}: give a positive global batch")
    if batch_size % replicas:
        nearest = max(replicas, round(batch_size / replicas) * replicas)
        raise KitError(f"train.batch_size={batch_size} (the global batch) does not split evenly over {replicas} "
                       f"replicas: use --set train.batch_size={nearest}")
    return batch_size // replicas


def check_batch(batch_size: int, name: str = "auto") -> Replicas:
    """Fail before anything is written when the global batch does not split over the replicas `--strategy name`
    will train on; returns those replicas."""
    replicas = planned_replicas(name)
    split_batch(batch_size, replicas.count)
    return replicas


def planned_replicas(name: str = "auto") -> Replicas:
    """The replicas strategy_scope(name) will yield, found without building a strategy (no TPU system is
    initialised here: under TensorFlow, --strategy tpu counts the TPU devices TF lists)."""
    if name not in STRATEGIES:
        raise KitError(f"--strategy {name!r} is not known; use one of {', '.join(STRATEGIES)}")
    if keras.backend.backend() == "jax":
        import jax

        devices = jax.devices()
        return Replicas(1 if name == "cpu" else len(devices), devices[0].platform)
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name == "tpu":
        return Replicas(max(1, len(tf.config.list_logical_devices("TPU"))), "tpu")
    if name == "mirrored":
        return Replicas(len(gpus), "gpu") if gpus else Replicas(len(tf.config.list_logical_devices("CPU")), "cpu")
    if name == "auto" and len(gpus) > 1:
        return Replicas(len(gpus), "gpu")
    return Replicas(1, "gpu" if gpus and name != "cpu" else "cpu")


@contextlib.contextmanager
def strategy_scope(name: str = "auto") -> Iterator[Replicas]:
    """Build and compile models inside this scope; yields the replicas the global batch is split over."""
    if name not in STRATEGIES:
        raise KitError(f"--strategy {name!r} is not known; use one of {', '.join(STRATEGIES)}")
    announce()
    if keras.backend.backend() == "jax":
        yield _jax_data_parallel(name)
        return
    import tensorflow as tf

    strategy = _tf_strategy(name, tf)
    if strategy is None:
        yield Replicas(1, _tf_kind(tf, tf.config.list_logical_devices()))
        return
    devices = strategy.extended.worker_devices
    replicas = Replicas(strategy.num_replicas_in_sync, _tf_kind(tf, [tf.DeviceSpec.from_string(d) for d in devices]))
    say(f"training with {type(strategy).__name__} on {replicas.count} replicas ({replicas})")
    with strategy.scope():
        yield replicas


def _tf_kind(tf, devices) -> str:
    """The accelerator kind TF trains on among `devices` (a TPU or GPU wins over the CPU TF always lists)."""
    kinds = {d.device_type.lower() for d in devices}
    return next((k for k in ("tpu", "gpu") if k in kinds), "cpu")


def _tf_strategy(name: str, tf):
    if name == "cpu":
        return None
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.NotFoundError) as err:
            raise KitError(f"--strategy tpu: no TPU found ({err}); use --strategy auto")
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else None


def _jax_data_parallel(name: str) -> Replicas:
    import jax

    devices = jax.devices()
    if name == "tpu" and devices[0].platform != "tpu":
        raise KitError("--strategy tpu: JAX sees no TPU; use --strategy auto")
    if name == "cpu" or len(devices) == 1:
        keras.distribution.set_distribution(None)  # an earlier DataParallel in this process must not outlive it
        return Replicas(1, devices[0].platform)  # one device: JAX's default, the first
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    say(f"training with keras.distribution.DataParallel on {len(devices)} {devices[0].platform} devices")
    return Replicas(len(devices), devices[0].platform)
