"""Where training runs: one device, several GPUs (tf.distribute.MirroredStrategy) or a TPU; under the JAX
backend, Keras 3's own data parallelism.

`--strategy auto` picks mirrored when TensorFlow sees more than one GPU, else the default single device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from kit.devices import announce
from kit.errors import KitError
from kit.progress import say

STRATEGIES = ("auto", "cpu", "mirrored", "tpu")


@contextlib.contextmanager
def strategy_scope(name: str = "auto") -> Iterator[int]:
    """Build and compile models inside this scope; yields the number of replicas (scale the batch by it)."""
    if name not in STRATEGIES:
        raise KitError(f"--strategy {name!r} is not known; use one of {', '.join(STRATEGIES)}")
    announce()
    if keras.backend.backend() == "jax":
        yield _jax_data_parallel(name)
        return
    import tensorflow as tf

    strategy = _tf_strategy(name, tf)
    if strategy is None:
        yield 1
        return
    say(f"training with {type(strategy).__name__} on {strategy.num_replicas_in_sync} replicas")
    with strategy.scope():
        yield strategy.num_replicas_in_sync


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


def _jax_data_parallel(name: str) -> int:
    import jax

    devices = jax.devices()
    if name == "tpu" and devices[0].platform != "tpu":
        raise KitError("--strategy tpu: JAX sees no TPU; use --strategy auto")
    if name == "cpu" or len(devices) == 1:
        return 1
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    say(f"training with keras.distribution.DataParallel on {len(devices)} {devices[0].platform} devices")
    return len(devices)
