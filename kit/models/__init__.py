"""Model registry: `create_model(name, max_len, n_features, **overrides)` builds any registered model.

Registering a model:

    @register_model
    def my_model(max_len, n_features, n_classes, **overrides) -> keras.Model: ...

Every model takes inputs `{"features": [B, T, F], "mask": [B, T]}` for any T up to max_len and returns logits
`[B, n_classes]`. Training feeds padded batches (T = max_len, mask 0 on padding); the exported graph feeds one
sequence's real frames only (mask all 1). Every layer must give the real frames the same answer either way.
"""

from kit.models.registry import create_model, list_models, register_model
from kit.models import llama  # noqa: F401  (registers the llama presets)
from kit.models import conv_transformer  # noqa: F401
from kit.models import mlp  # noqa: F401

__all__ = ["create_model", "list_models", "register_model"]
