"""The table of model builders, filled by `@register_model`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras

from kit.errors import KitError

_MODELS: dict[str, Callable[..., keras.Model]] = {}


def register_model(builder: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
    """Add `builder` under its function name."""
    if builder.__name__ in _MODELS:
        raise ValueError(f"model {builder.__name__!r} is registered twice")
    _MODELS[builder.__name__] = builder
    return builder


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, max_len: int, n_features: int, n_classes: int = 250, precision: str = "float32",
                 **overrides) -> keras.Model:
    """Build the registered model `name` under the dtype policy `precision` (float32, mixed_bfloat16 or
    mixed_float16: weights stay float32, builders keep the logits float32); an unknown name lists the valid ones."""
    if name not in _MODELS:
        raise KitError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    try:
        with dtype_policy(precision):
            return _MODELS[name](max_len=max_len, n_features=n_features, n_classes=n_classes, **overrides)
    except ValueError as err:  # sizes that do not fit together, e.g. a dim the heads do not divide
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise KitError(f"model {name!r} cannot be built with max_len={max_len}, n_features={n_features}"
                       f"{', ' + str(overrides) if overrides else ''}: {first}") from None


def merge_sizes(preset: dict, overrides: dict, model: str) -> dict:
    """The preset with `overrides` applied; an override the preset does not have is an error."""
    unknown = sorted(set(overrides) - set(preset))
    if unknown:
        raise KitError(f"model {model!r} has no size {', '.join(unknown)}; its sizes: {', '.join(sorted(preset))}")
    return {**preset, **overrides}


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Keras' global dtype policy set to `precision` inside the block and restored after it: every layer built
    inside takes it, and nothing leaks into the next model (export rebuilds float32 in the same process)."""
    from kit.config import PRECISIONS

    if precision not in PRECISIONS:
        raise KitError(f"train.precision={precision!r} is not known; use one of {', '.join(PRECISIONS)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
