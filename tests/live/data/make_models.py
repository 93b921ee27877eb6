"""Writes the two small TFLite models the kit live tests load (run it from the repository root; TensorFlow needed):

- sign_model.tflite: someone else's sign model, not the kit's: the competition's contract (inputs [frames, 543, 3],
  outputs [250]), a softmax over where the hands are on average and how long the sequence is;
- not_a_sign_model.tflite: a model of another task (inputs [n, 10], outputs [3]), which kit live must refuse.

They are committed (8 KB in all) so that the tests need not import TensorFlow to build them.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

HERE = Path(__file__).resolve().parent


def convert(function, module) -> bytes:
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], module).convert()


def sign_model() -> bytes:
    weights = tf.constant(np.random.default_rng(0).normal(size=(3, 250)), tf.float32)
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, 543, 3], tf.float32, name="inputs")])
    def serving_default(x):
        hands = tf.concat([x[:, 468:489, :2], x[:, 522:543, :2]], axis=1)
        where = tf.reduce_mean(tf.where(tf.math.is_nan(hands), 0.0, hands), axis=[0, 1])
        n = tf.cast(tf.shape(x)[0], tf.float32) / 30.0
        return {"outputs": tf.nn.softmax(tf.matmul(tf.concat([where, [n]], 0)[None], weights)[0])}

    return convert(serving_default, module)


def not_a_sign_model() -> bytes:
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, 10], tf.float32, name="inputs")])
    def serving_default(x):
        return {"outputs": tf.nn.softmax(x[:, :3])}

    return convert(serving_default, module)


if __name__ == "__main__":
    (HERE / "sign_model.tflite").write_bytes(sign_model())
    (HERE / "not_a_sign_model.tflite").write_bytes(not_a_sign_model())
