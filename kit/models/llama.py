"""LLaMa-style transformer over landmark frames (the 26th place's model): RMSNorm, RoPE, SwiGLU, pre-norm blocks.

The 26th place's write-up says "LLaMa-inspired" and names RMSNorm; the rotary positions (RoPE) and the SwiGLU MLP
follow its public code (dajes/asl-signs, modeling/llama.py). Where the kit departs: a masked mean over the frames
reads the sequence out (kit's choice: exact under padding and on the exported graph's real frames; that code adds
learned positions and reads a class token).
"""

from __future__ import annotations

import keras

from kit.models.layers import Dense, LlamaBlock, MaskedMeanPool, RMSNorm
from kit.models.registry import merge_sizes, register_model


def build_llama(max_len: int, n_features: int, n_classes: int, dim: int, heads: int, head_dim: int,
                depth: int, mlp_ratio: float, dropout: float, head_dropout: float, name: str) -> keras.Model:
    """Frames -> linear embedding -> `depth` LLaMa blocks -> RMSNorm -> masked mean -> logits."""
    features = keras.Input((None, n_features), name="features")
    mask = keras.Input((None,), name="mask")
    x = Dense(dim, use_bias=False, name="embed")(features)
    hidden = int(dim * mlp_ratio)
    for i in range(depth):
        x = LlamaBlock(heads, head_dim, hidden, max_len, dropout, name=f"block{i}")(x, mask)
    x = RMSNorm(name="final_norm")(x)
    x = MaskedMeanPool(name="pool")(x, mask)
    x = keras.layers.Dropout(head_dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(n_classes, name="logits", dtype="float32")(x)
    return keras.Model({"features": features, "mask": mask}, logits, name=name)


def _preset(name: str, sizes: dict):
    def builder(max_len: int, n_features: int, n_classes: int = 250, **overrides) -> keras.Model:
        return build_llama(max_len, n_features, n_classes, name=name, **merge_sizes(sizes, overrides, name))

    builder.__name__ = name
    builder.__doc__ = f"LLaMa preset {name}: {sizes}"
    return register_model(builder)


# The 26th place's write-up: head dimension 64 throughout; its single model 6 heads x 5 layers, its ensemble's
# 2 heads x 6 layers (~1.7M parameters each); dropout 0.1. mlp_ratio 8/3 keeps the SwiGLU's weights equal to a 4x
# plain MLP. head_dropout 0.2 on the pooled vector is kit's choice (the head overfits first); llama26 sets 0.1.
llama_single = _preset("llama_single", dict(dim=384, heads=6, head_dim=64, depth=5, mlp_ratio=8 / 3, dropout=0.1,
                                            head_dropout=0.2))
llama_small = _preset("llama_small", dict(dim=128, heads=2, head_dim=64, depth=6, mlp_ratio=4.0, dropout=0.1,
                                          head_dropout=0.2))
# Small enough to train three folds in minutes on 2 CPU cores: the demo and the tests use it.
llama_tiny = _preset("llama_tiny", dict(dim=64, heads=2, head_dim=32, depth=2, mlp_ratio=2.0, dropout=0.1,
                                        head_dropout=0.2))
