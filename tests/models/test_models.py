"""Every registered model: right shape, finite, blind to padding, and a complete Keras citizen."""

from __future__ import annotations

import numpy as np
import pytest

from kit.errors import KitError
from kit.models import create_model, list_models
from kit.models.conv_transformer import ECA, Conv1DBlock, LateDropout, MaskedBatchNorm, TransformerBlock
from kit.models.layers import Attention, Dense, LlamaBlock, MaskedMeanPool, RMSNorm, SwiGLU
from kit.models.mlp import MaskedSegmentPool

MAX_LEN, N_FEATURES = 384, 170


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("length", [1, 7, 384])
def test_every_model_runs_on_odd_lengths_and_ignores_padding(name, length):
    """Logits are [B, 250] and finite; changing what sits in padded frames changes nothing, and the real frames
    alone (no padding at all, as the exported graph runs them) give the same logits."""
    model = create_model(name, max_len=MAX_LEN, n_features=N_FEATURES)
    rng = np.random.default_rng(length)
    features = np.zeros((2, MAX_LEN, N_FEATURES), np.float32)
    features[:, :length] = rng.normal(size=(2, length, N_FEATURES))
    mask = np.zeros((2, MAX_LEN), np.float32)
    mask[:, :length] = 1
    out = np.asarray(model({"features": features, "mask": mask}, training=False))
    assert out.shape == (2, 250) and np.all(np.isfinite(out))
    noisy = features.copy()
    noisy[:, length:] = rng.normal(size=(2, MAX_LEN - length, N_FEATURES))
    out_noisy = np.asarray(model({"features": noisy, "mask": mask}, training=False))
    np.testing.assert_allclose(out, out_noisy, atol=1e-4)
    real = {"features": features[:, :length], "mask": np.ones((2, length), np.float32)}
    np.testing.assert_allclose(np.asarray(model(real, training=False)), out, atol=1e-4)


@pytest.mark.parametrize("length", [1, 5, 15])
def test_centred_convolutions_see_zeros_past_the_real_frames_either_way(length):
    """conv_transformer with causal=False ("same" convolutions look ahead): at the last real frames the
    padded batch and the real frames alone agree, because padded frames are zeroed before every convolution."""
    model = create_model("conv_transformer_tiny", max_len=16, n_features=8, causal=False)
    rng = np.random.default_rng(length)
    features = rng.normal(size=(1, 16, 8)).astype(np.float32)  # padding full of noise
    mask = (np.arange(16) < length).astype(np.float32)[None]
    padded = np.asarray(model({"features": features, "mask": mask}, training=False))
    real = {"features": features[:, :length], "mask": np.ones((1, length), np.float32)}
    np.testing.assert_allclose(np.asarray(model(real, training=False)), padded, atol=1e-5)


def test_unknown_model_lists_the_valid_names():
    """A typo in a model name fails with the list of registered names."""
    with pytest.raises(KitError, match="llama_small"):
        create_model("lama_small", max_len=8, n_features=4)


def test_unknown_size_override_is_an_error():
    """An override the preset does not have is refused, never ignored."""
    with pytest.raises(KitError, match="no size"):
        create_model("llama_tiny", max_len=8, n_features=4, widht=3)


def test_sizes_that_do_not_fit_are_a_one_line_error():
    """A size override the architecture cannot use fails as a KitError naming the model and its sizes."""
    with pytest.raises(KitError, match="'llama_tiny' cannot be built"):
        create_model("llama_tiny", max_len=8, n_features=4, dim=-3)


@pytest.mark.parametrize("layer,args", [
    (RMSNorm(epsilon=1e-5), ((2, 8, 16),)),
    (Dense(12, activation="swish", name="frame_dense"), ((2, 8, 16),)),
    (SwiGLU(hidden=24), ((2, 8, 16),)),
    (Attention(heads=2, head_dim=8, max_len=8, dropout=0.1), ((2, 8, 16), (2, 8))),
    (LlamaBlock(heads=2, head_dim=8, hidden=24, max_len=8, dropout=0.1), ((2, 8, 16), (2, 8))),
    (MaskedMeanPool(), ((2, 8, 16), (2, 8))),
    (ECA(kernel_size=3), ((2, 8, 16), (2, 8))),
    (Conv1DBlock(dim=16, kernel_size=5, expand=2, dropout=0.1, causal=True), ((2, 8, 16), (2, 8))),
    (Conv1DBlock(dim=16, kernel_size=5, expand=3, dropout=0.1, causal=False), ((2, 8, 16), (2, 8))),
    (TransformerBlock(heads=2, head_dim=8, expand=2, max_len=8, dropout=0.1), ((2, 8, 16), (2, 8))),
    (LateDropout(rate=0.5, start_step=10), ((2, 16),)),
    (MaskedBatchNorm(momentum=0.9), ((2, 8, 16),)),
    (MaskedSegmentPool(segments=3), ((2, 8, 16), (2, 8))),
])
def test_layers_round_trip_config_and_saved_file(layer, args, tmp_path):
    """Each custom layer rebuilds from get_config and from a saved .keras file with identical outputs."""
    import keras

    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=s).astype(np.float32) if i == 0 else np.ones(s, np.float32) for i, s in enumerate(args)]
    tensors = [keras.Input(s[1:]) for s in args]
    model = keras.Model(tensors, layer(*tensors))
    expected = np.asarray(model(inputs))
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(inputs)), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["llama_tiny", "conv_transformer_tiny", "mlp"])
def test_weights_saved_with_keras_dense_load_and_answer_alike(name, tmp_path, monkeypatch):
    """Runs trained before the kit's Dense (with Keras' own) load unchanged: the same weights file layout, the same
    logits, padded or on the real frames only."""
    import keras

    import kit.models.conv_transformer
    import kit.models.layers
    import kit.models.llama
    import kit.models.mlp

    rng = np.random.default_rng(0)
    batch = {"features": rng.normal(size=(2, 16, 8)).astype(np.float32), "mask": np.ones((2, 16), np.float32)}
    with monkeypatch.context() as patch:
        for module in (kit.models.layers, kit.models.llama, kit.models.mlp, kit.models.conv_transformer):
            patch.setattr(module, "Dense", keras.layers.Dense)
        old = create_model(name, max_len=16, n_features=8)
        old.save_weights(tmp_path / "model.weights.h5")
        expected = np.asarray(old(batch, training=False))
    new = create_model(name, max_len=16, n_features=8)
    new.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_allclose(np.asarray(new(batch, training=False)), expected, atol=1e-5)
    real = {"features": batch["features"][:, :5], "mask": batch["mask"][:, :5]}
    np.testing.assert_allclose(np.asarray(new(real, training=False)), np.asarray(old(real, training=False)), atol=1e-5)
