"""The table of model builders, filled by `@register_model`."""

from __future__ import annotations

from collections.abc import Callable

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


def create_model(name: str, max_len: int, n_features: int, n_classes: int = 250, **overrides) -> keras.Model:
    """Build the registered model `name`; an unknown name is an error that lists the valid ones."""
    if name not in _MODELS:
        raise KitError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    try:
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
