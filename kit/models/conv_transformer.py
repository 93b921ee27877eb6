"""The 1st-place ISLR architecture: stages of three depthwise Conv1D blocks and one transformer block.

Frames -> Dense stem + BatchNorm -> `stages` x [3 x Conv1DBlock, TransformerBlock] -> Dense(2 dim) -> masked mean
-> late dropout -> logits. The convolutions see the motion of nearby frames; attention relates distant ones.

Padding: padded frames are zeroed before every depthwise convolution, attention never looks at them, every
pooling skips them, and BatchNorm takes its training statistics from real frames only (Keras' `mask=`), so the
answer does not depend on how much padding a sequence got. BatchNorm is kept, rather than a per-frame norm,
because at inference it is a fixed per-channel affine map: free in TFLite and the 1st place's choice.
"""

from __future__ import annotations

import keras
from keras import ops

from kit.models.layers import Attention, Dense, MaskedMeanPool
from kit.models.registry import merge_sizes, register_model

BN_MOMENTUM = 0.95  # the 1st place's value (Keras default 0.99): moving statistics keep up with fast-changing weights
CONVS_PER_STAGE = 3


@keras.saving.register_keras_serializable(package="kit")
class MaskedBatchNorm(keras.layers.BatchNormalization):
    """BatchNorm that takes its training statistics from the real frames (call it with `mask=`).

    Its output carries no Keras mask: the kit passes masks explicitly, and an attached one would make each
    following layer warn that it drops it.
    """

    def compute_mask(self, inputs, previous_mask):
        return None


def _batch_norm(name: str) -> MaskedBatchNorm:
    return MaskedBatchNorm(momentum=BN_MOMENTUM, name=name)


@keras.saving.register_keras_serializable(package="kit")
class ECA(keras.layers.Layer):
    """Efficient channel attention: gate each channel by a 1D convolution over the channels' masked means."""

    def __init__(self, kernel_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size

    def build(self, input_shape):
        self.pool = MaskedMeanPool(name="pool")
        self.conv = keras.layers.Conv1D(1, self.kernel_size, padding="same", use_bias=False, name="conv")
        self.conv.build((None, input_shape[-1], 1))  # channels are the conv's "time" axis

    def call(self, x, mask):
        means = ops.expand_dims(self.pool(x, mask), -1)  # [B, C, 1]
        gate = ops.sigmoid(ops.squeeze(self.conv(means), -1))
        return x * gate[:, None, :]

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="kit")
class Conv1DBlock(keras.layers.Layer):
    """x + drop(project(ECA(BN(depthwise_conv(swish(expand(x))))))): a MobileNet-style block over time."""

    def __init__(self, dim: int, kernel_size: int = 17, expand: int = 2, dropout: float = 0.2,
                 causal: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.kernel_size, self.expand, self.dropout, self.causal = dim, kernel_size, expand, dropout, causal

    def build(self, input_shape):
        if input_shape[-1] != self.dim:
            raise ValueError(f"Conv1DBlock(dim={self.dim}) adds a residual: its input needs {self.dim} channels, "
                             f"got {input_shape[-1]}")
        inner = (*input_shape[:-1], self.dim * self.expand)
        self.up = Dense(self.dim * self.expand, activation="swish", name="expand")
        self.up.build(input_shape)
        # Causal pads on the left by hand (Keras' DepthwiseConv1D has no "causal"); "same" pads both sides itself.
        self.conv = keras.layers.DepthwiseConv1D(self.kernel_size, padding="valid" if self.causal else "same",
                                                 use_bias=False, name="depthwise")
        # It sees the frames after the causal padding (the build checks that the kernel fits in them).
        padded = (inner[0], None if inner[1] is None else inner[1] + self.kernel_size - 1, inner[2])
        self.conv.build(padded if self.causal else inner)
        self.norm = _batch_norm("norm")
        self.norm.build(inner)
        self.eca = ECA(name="eca")
        self.eca.build(inner)
        self.down = Dense(self.dim, name="project")
        self.down.build(inner)
        # noise_shape (B, 1, 1) drops the whole branch of a sample (stochastic depth), as the 1st place did.
        self.drop = keras.layers.Dropout(self.dropout, noise_shape=(None, 1, 1))

    def call(self, x, mask, training=None):
        h = self.up(x) * mask[:, :, None]  # zero padded frames: the convolution must not carry them into real ones
        if self.causal:
            h = ops.pad(h, [[0, 0], [self.kernel_size - 1, 0], [0, 0]])
        h = self.norm(self.conv(h), training=training, mask=mask)
        h = self.down(self.eca(h, mask))
        return x + self.drop(h, training=training)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "kernel_size": self.kernel_size, "expand": self.expand,
                "dropout": self.dropout, "causal": self.causal}


@keras.saving.register_keras_serializable(package="kit")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm block: x + attn(BN(x)), then x + mlp(BN(x)) with a swish MLP, branch dropout on both."""

    def __init__(self, heads: int, head_dim: int, expand: int = 2, max_len: int = 64, dropout: float = 0.2,
                 rope: bool = False, attention_scale: str = "dim", **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim, self.expand, self.max_len, self.dropout = heads, head_dim, expand, max_len, dropout
        self.rope, self.attention_scale = rope, attention_scale

    def build(self, input_shape):
        dim = input_shape[-1]
        self.norm1, self.norm2 = _batch_norm("norm1"), _batch_norm("norm2")
        self.attn = Attention(self.heads, self.head_dim, self.max_len, self.dropout, self.rope, self.attention_scale,
                              name="attn")
        self.up = Dense(dim * self.expand, activation="swish", use_bias=False, name="mlp_up")
        for layer in (self.norm1, self.norm2, self.attn, self.up):
            layer.build(input_shape)
        self.down = Dense(dim, use_bias=False, name="mlp_down")
        self.down.build((*input_shape[:-1], dim * self.expand))
        self.drop = keras.layers.Dropout(self.dropout, noise_shape=(None, 1, 1))

    def call(self, x, mask, training=None):
        h = self.attn(self.norm1(x, training=training, mask=mask), mask, training=training)
        x = x + self.drop(h, training=training)
        h = self.down(self.up(self.norm2(x, training=training, mask=mask)))
        return x + self.drop(h, training=training)

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "head_dim": self.head_dim, "expand": self.expand,
                "max_len": self.max_len, "dropout": self.dropout, "rope": self.rope,
                "attention_scale": self.attention_scale}


@keras.saving.register_keras_serializable(package="kit")
class LateDropout(keras.layers.Layer):
    """Dropout that switches on after `start_step` training steps: a heavy rate would stall early learning."""

    def __init__(self, rate: float, start_step: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.start_step = rate, start_step

    def build(self, input_shape):
        self.drop = keras.layers.Dropout(self.rate)
        # Saved with the weights, so a resumed run keeps counting where it stopped.
        self.step = self.add_weight(name="step", shape=(), initializer="zeros", dtype="int32", trainable=False,
                                    aggregation="only_first_replica")

    def call(self, x, training=None):
        if not training:
            return x
        self.step.assign_add(1)
        return ops.where(self.step > self.start_step, self.drop(x, training=True), x)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "start_step": self.start_step}


def build_conv_transformer(max_len: int, n_features: int, n_classes: int, dim: int, stages: int, kernel_size: int,
                           expand: int, heads: int, mlp_expand: int, dropout: float, head_dropout: float,
                           late_dropout_step: int, causal: bool, rope: bool, attention_scale: str,
                           name: str) -> keras.Model:
    """Frames -> stem -> `stages` x [3 conv blocks, 1 transformer block] -> Dense(2 dim) -> masked mean -> logits."""
    features = keras.Input((None, n_features), name="features")
    mask = keras.Input((None,), name="mask")
    x = Dense(dim, use_bias=False, name="stem")(features)
    x = _batch_norm("stem_norm")(x, mask=mask)
    for s in range(stages):
        for c in range(CONVS_PER_STAGE):
            x = Conv1DBlock(dim, kernel_size, expand, dropout, causal, name=f"stage{s}_conv{c}")(x, mask)
        x = TransformerBlock(heads, dim // heads, mlp_expand, max_len, dropout, rope, attention_scale,
                             name=f"stage{s}_attn")(x, mask)
    x = Dense(dim * 2, name="top")(x)
    x = MaskedMeanPool(name="pool")(x, mask)
    x = LateDropout(head_dropout, late_dropout_step, name="late_dropout")(x)
    logits = keras.layers.Dense(n_classes, name="logits", dtype="float32")(x)
    return keras.Model({"features": features, "mask": mask}, logits, name=name)


def _preset(name: str, sizes: dict):
    def builder(max_len: int, n_features: int, n_classes: int = 250, **overrides) -> keras.Model:
        return build_conv_transformer(max_len, n_features, n_classes, name=name,
                                      **merge_sizes(sizes, overrides, name))

    builder.__name__ = name
    builder.__doc__ = f"Conv1D + transformer preset {name}: {sizes}"
    return register_model(builder)


# The 1st place's single model (notebook cell 16, get_model with dim 192; cell 19's CFG): dim 192, kernel 17, 2 x
# [3 conv blocks + 1 transformer block], expand 2, 4 heads, branch dropout 0.2, late dropout 0.8, attention without
# positions scaled by dim ** -0.5: 1,836,569 parameters on its 708 input channels, as its model summary prints.
# The late dropout switched on at epoch 15 of 300; here the preset counts 2400 steps (5 % of 40 kit epochs of the
# full data at batch 64: 94,477 x 4/5 / 64 = 1,180 steps an epoch) unless train.late_dropout_epoch says when.
conv_transformer = _preset("conv_transformer", dict(
    dim=192, stages=2, kernel_size=17, expand=2, heads=4, mlp_expand=2, dropout=0.2, head_dropout=0.8,
    late_dropout_step=2400, causal=True, rope=False, attention_scale="dim"))
# For tests and CPU demos: one stage, light dropout from the first step (a demo trains only a few hundred steps).
conv_transformer_tiny = _preset("conv_transformer_tiny", dict(
    dim=64, stages=1, kernel_size=17, expand=2, heads=2, mlp_expand=2, dropout=0.1, head_dropout=0.2,
    late_dropout_step=0, causal=True, rope=False, attention_scale="dim"))
