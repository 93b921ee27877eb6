"""Building blocks written in `keras.ops`, so every model trains under the TensorFlow or the JAX backend.

Padded frames carry mask 0: attention never looks at them and pooling never averages them, so the answer
does not depend on how much padding a sequence got.

Mixed precision (`train.precision`): the matmuls run in the 16-bit compute dtype, but the sums that can overflow
or lose the small terms (the norm's variance, attention scores with the -1e9 mask and their softmax, the pooled
means) are taken in float32. In a float32 model those casts are no-ops, so the exported graph is unchanged.

The exported graph runs on a sequence's real frames, so its time axis has no fixed length. Every reshape here
names the batch (1 in that graph) and leaves the one unknown axis to -1, and this module's `Dense` flattens the
frames itself, so no shape is read back between the matmuls: Keras' own lowering reads it with about a dozen ops a
layer (3 x llama_small: 1,765 ops before, 1,236 after).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

NEG_INF = -1e9  # finite: a fully masked row then softmaxes to uniform instead of NaN


def leading(x, n: int) -> tuple:
    """The first `n` axes of `x` for a reshape: the static sizes as numbers, the first unknown one as -1 (a
    reshape infers it), any further unknown one as the run-time size."""
    dims, inferred = [], False
    for static, dynamic in zip(x.shape[:n], ops.shape(x)[:n]):
        if static is not None:
            dims.append(static)
        elif not inferred:
            dims.append(-1)
            inferred = True
        else:
            dims.append(dynamic)
    return tuple(dims)


@keras.saving.register_keras_serializable(package="kit")
class Dense(keras.layers.Dense):
    """Keras' Dense, lowered for a graph whose length varies: `[..., C] -> [..., units]`, the same weights.

    Keras lowers a matmul of a 3-D input by `tensordot`, which reads the input's shape at run time (a dozen shape
    ops per layer in a graph whose length varies). Here the frames are flattened to `[N, C]`, multiplied, and put
    back with the shape from `leading`: one fully connected op between two reshapes.
    The class keeps Keras' name because a saved weights file names a model's top-level layers by their class:
    runs trained with Keras' Dense load unchanged.
    """

    def call(self, inputs, training=None):
        if len(inputs.shape) <= 2:
            return super().call(inputs, training=training)
        flat = super().call(ops.reshape(inputs, (-1, inputs.shape[-1])), training=training)
        return ops.reshape(flat, (*leading(inputs, len(inputs.shape) - 1), self.units))


@keras.saving.register_keras_serializable(package="kit")
class RMSNorm(keras.layers.Layer):
    """Root-mean-square norm with a learned scale and no bias (LLaMa)."""

    def __init__(self, epsilon: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        x32 = ops.cast(x, "float32")  # a float16 square overflows past 256
        variance = ops.mean(ops.square(x32), axis=-1, keepdims=True)
        return ops.cast(x32 * ops.rsqrt(variance + self.epsilon), x.dtype) * self.scale

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def rotary_tables(max_len: int, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables `[max_len, head_dim]` of rotary position embedding (RoPE, base 10000)."""
    inv_freq = 1.0 / (10000 ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    angles = np.arange(max_len, dtype=np.float32)[:, None] * inv_freq[None, :]
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _rotate(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = ops.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


ATTENTION_SCALES = ("head", "dim")


@keras.saving.register_keras_serializable(package="kit")
class Attention(keras.layers.Layer):
    """Multi-head self-attention with a key padding mask, and rotary positions unless `rope=False`.

    `scale`: scores divided by sqrt(head_dim) ("head", the usual rule) or by sqrt(heads x head_dim) ("dim": the
    1st place's MultiHeadSelfAttention scaled by its model width, dim ** -0.5, whatever the heads).
    """

    def __init__(self, heads: int, head_dim: int = 64, max_len: int = 64, dropout: float = 0.0, rope: bool = True,
                 scale: str = "head", **kwargs):
        super().__init__(**kwargs)
        if scale not in ATTENTION_SCALES:
            raise ValueError(f"Attention(scale={scale!r}): use one of {', '.join(ATTENTION_SCALES)}")
        self.heads, self.head_dim, self.max_len, self.dropout = heads, head_dim, max_len, dropout
        self.rope, self.scale = rope, scale

    def build(self, input_shape):
        inner = self.heads * self.head_dim
        self.qkv = Dense(3 * inner, use_bias=False, name="qkv")
        self.qkv.build(input_shape)
        self.out = Dense(input_shape[-1], use_bias=False, name="out")
        self.out.build((*input_shape[:-1], inner))
        self.drop = keras.layers.Dropout(self.dropout)
        cos, sin = rotary_tables(self.max_len, self.head_dim)
        self.cos, self.sin = cos[None, None], sin[None, None]  # [1, 1, T, D]: constants, not weights

    def call(self, x, mask, training=None):
        qkv = ops.reshape(self.qkv(x), (*leading(x, 2), 3, self.heads, self.head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # [3, B, H, T, D]
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.rope:
            # The first t rows, taken rather than sliced: t is a graph value when the length varies (the exported
            # graph's real frames), and JAX's symbolic shapes know a take of t rows is t long (a slice is
            # min(max_len, t)).
            rows = ops.arange(ops.shape(x)[1])
            cos, sin = (ops.cast(ops.take(table, rows, axis=2), x.dtype) for table in (self.cos, self.sin))
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        scores = ops.cast(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), "float32")  # NEG_INF is -inf in float16
        width = self.head_dim * (self.heads if self.scale == "dim" else 1)
        scores = scores / np.sqrt(width).astype(np.float32)
        scores = scores + (1.0 - ops.cast(mask, "float32")[:, None, None, :]) * NEG_INF
        weights = self.drop(ops.cast(ops.softmax(scores, axis=-1), v.dtype), training=training)
        context = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        return self.out(ops.reshape(context, (*leading(x, 2), self.heads * self.head_dim)))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "head_dim": self.head_dim,
                "max_len": self.max_len, "dropout": self.dropout, "rope": self.rope, "scale": self.scale}


@keras.saving.register_keras_serializable(package="kit")
class SwiGLU(keras.layers.Layer):
    """Gated MLP: down(silu(gate(x)) * up(x)) (LLaMa)."""

    def __init__(self, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        self.gate = Dense(self.hidden, use_bias=False, name="gate")
        self.up = Dense(self.hidden, use_bias=False, name="up")
        self.down = Dense(input_shape[-1], use_bias=False, name="down")
        self.gate.build(input_shape)
        self.up.build(input_shape)
        self.down.build((*input_shape[:-1], self.hidden))

    def call(self, x):
        return self.down(ops.silu(self.gate(x)) * self.up(x))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="kit")
class LlamaBlock(keras.layers.Layer):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)), with residual dropout."""

    def __init__(self, heads: int, head_dim: int, hidden: int, max_len: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim, self.hidden, self.max_len, self.dropout = heads, head_dim, hidden, max_len, dropout

    def build(self, input_shape):
        self.norm1, self.norm2 = RMSNorm(name="norm1"), RMSNorm(name="norm2")
        self.attn = Attention(self.heads, self.head_dim, self.max_len, self.dropout, name="attn")
        self.mlp = SwiGLU(self.hidden, name="mlp")
        for layer in (self.norm1, self.norm2, self.attn, self.mlp):
            layer.build(input_shape)
        self.drop = keras.layers.Dropout(self.dropout)

    def call(self, x, mask, training=None):
        x = x + self.drop(self.attn(self.norm1(x), mask, training=training), training=training)
        return x + self.drop(self.mlp(self.norm2(x)), training=training)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "head_dim": self.head_dim, "hidden": self.hidden,
                "max_len": self.max_len, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="kit")
class MaskedMeanPool(keras.layers.Layer):
    """Mean over the real (mask 1) frames only."""

    def call(self, x, mask):
        weights = ops.cast(mask, "float32")[:, :, None]  # summed in float32: up to max_len frames
        pooled = ops.sum(ops.cast(x, "float32") * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        return ops.cast(pooled, x.dtype)
