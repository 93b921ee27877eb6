"""Fully connected network over engineered per-frame features (the 80th-place recipe).

Pair it with the feature options of the preprocessing layer (`kit train --recipe mlp80` sets them): distances,
angles, motion, the dominant hand and shoulder units carry what attention would otherwise have to find.

Frames -> a shared 2-layer MLP -> pooled over time as the mean of each third of the sign (so order still counts),
the overall mean and the overall max, all over real frames only -> `depth` wide layers -> logits.
"""

from __future__ import annotations

import keras
from keras import ops

from kit.models.layers import Dense
from kit.models.registry import merge_sizes, register_model


@keras.saving.register_keras_serializable(package="kit")
class MaskedSegmentPool(keras.layers.Layer):
    """`[B, T, D]` -> `[B, (segments + 2) * D]`: the mean of each of `segments` equal parts of the real frames,
    then the mean and the max over all real frames. Padded frames (mask 0) never count; a sequence with no real
    frame pools to zeros."""

    def __init__(self, segments: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.segments = segments

    def call(self, x, mask):
        dtype = x.dtype  # pooled in float32 (sums over many frames, and -1e9 is -inf in float16), returned in dtype
        x, mask = ops.cast(x, "float32"), ops.cast(mask, "float32")
        real = ops.sum(mask, axis=1, keepdims=True)  # [B, 1]
        length = ops.maximum(real, 1.0)
        position = ops.cumsum(mask, axis=1) - 1.0  # [B, T]: 0, 1, ... over the real frames
        part = ops.floor(position * self.segments / length)
        pooled = []
        for k in range(self.segments):
            weights = (mask * ops.cast(ops.equal(part, float(k)), "float32"))[:, :, None]
            pooled.append(ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0))
        pooled.append(ops.sum(x * mask[:, :, None], axis=1) / length)
        peak = ops.max(ops.where(mask[:, :, None] > 0, x, ops.full_like(x, -1e9)), axis=1)
        # No real frame: zeros, like the means (a -1e9 would be -inf in float16 and NaN after the next layer).
        pooled.append(ops.where(real > 0, peak, ops.zeros_like(peak)))
        return ops.cast(ops.concatenate(pooled, axis=-1), dtype)

    def get_config(self):
        return {**super().get_config(), "segments": self.segments}


def _dense_block(x, width: int, dropout: float, name: str):
    x = Dense(width, use_bias=False, name=f"{name}_dense")(x)
    x = keras.layers.LayerNormalization(name=f"{name}_norm")(x)
    x = keras.layers.Activation("gelu", name=f"{name}_gelu")(x)
    return keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)


def build_mlp(max_len: int, n_features: int, n_classes: int, frame_dim: int, hidden: int, depth: int,
              segments: int, dropout: float, name: str) -> keras.Model:
    features = keras.Input((None, n_features), name="features")
    mask = keras.Input((None,), name="mask")
    x = _dense_block(features, frame_dim, dropout / 2, "frame0")
    x = _dense_block(x, frame_dim, dropout / 2, "frame1")
    x = MaskedSegmentPool(segments, name="pool")(x, mask)
    for i in range(depth):
        x = _dense_block(x, hidden, dropout, f"fc{i}")
    logits = keras.layers.Dense(n_classes, name="logits", dtype="float32")(x)
    return keras.Model({"features": features, "mask": mask}, logits, name=name)


@register_model
def mlp(max_len: int, n_features: int, n_classes: int = 250, **overrides) -> keras.Model:
    """80th-place FC network: 256-wide frame MLP, thirds + mean + max pooling, 2 x 768 layers, dropout 0.3
    (about 2M parameters: three fit 40 MB in fp32)."""
    sizes = merge_sizes(dict(frame_dim=256, hidden=768, depth=2, segments=3, dropout=0.3), overrides, "mlp")
    return build_mlp(max_len, n_features, n_classes, name="mlp", **sizes)
