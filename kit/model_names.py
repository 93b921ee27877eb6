"""The registered model names with one line each, readable without importing Keras: `kit models` lists them in a
moment, and kit train checks `model.name` against them before TensorFlow loads.

kit.models registers the builders themselves; tests/test_first_hour.py checks that this table names exactly them.
The table sits in the shared core, not in kit/models/: importing anything there runs kit/models/__init__.py, which
imports Keras.
"""

from __future__ import annotations

MODELS = {
    "conv_transformer": "the 1st-place architecture: depthwise Conv1D blocks and a transformer block per stage",
    "conv_transformer_tiny": "the same, one small stage: for CPUs and tests",
    "llama_single": "LLaMa-style transformer (26th place), its single-model size",
    "llama_small": "LLaMa-style transformer (26th place), small: the kit's default",
    "llama_tiny": "LLaMa-style transformer, tiny: trains 3 folds in minutes on 2 CPU cores (the demo)",
    "mlp": "fully connected network over engineered per-frame features (80th place; kit train --recipe mlp80)",
}
