"""`kit config`'s page: a config setting by setting, each with its source, and the model it builds.

For a recipe (kit/recipes.py) every setting it changes prints with the cell, line or file it comes from, then the
keys left at the kit's defaults, the recipe's departures from its source and how its source built a submission.
The model line counts the parameters of the model the config builds and the width of a preprocessed frame, so a
recipe's model can be held to its source (the 1st place's summary prints 1,836,569 parameters on 708 channels).
"""

from __future__ import annotations

import textwrap

from kit import config as config_mod
from kit.config import Config
from kit.recipes import RECIPES

WIDTH = 118


def model_line(cfg: Config) -> str:
    """`conv_transformer: 1,836,569 parameters, 708 input channels (max_len 384)`."""
    from kit.preprocessing.preprocess import n_features
    from kit.training.train import build_model

    params = build_model(cfg, precision="float32").count_params()
    return (f"{cfg.model.name}: {params:,} parameters, {n_features(cfg.preprocess)} input channels "
            f"(max_len {cfg.preprocess.max_len})")


def card(cfg: Config, recipe: str | None = None, overrides: list[str] | None = None) -> str:
    """The page `kit config` prints for `cfg`, built from `recipe` (or the kit's defaults) and `overrides`."""
    flat = config_mod.flatten(cfg.to_dict())
    lines = []
    sourced: dict[str, str] = {}
    if recipe is not None:
        r = RECIPES[recipe]
        lines += [f"recipe {r.name}: {r.title}", f"source: {r.source}"]
        sourced = {s.key: s.source for s in r.settings}
    else:
        lines.append("the kit's defaults: its own choices for small data and CPUs (kit/config.py says why, key by key)")
    set_by_hand = {item.split("=", 1)[0] for item in overrides or []}
    lines += [f"model: {model_line(cfg)}", ""]
    rows = [(key, flat[key], "--set" if key in set_by_hand else sourced[key])
            for key in sourced | dict.fromkeys(sorted(set_by_hand)) if key in flat]
    if rows:
        key_width = max(len(k) for k, _, _ in rows) + 2
        value_width = max(len(_show(v)) for _, v, _ in rows) + 2
        lines.append(f"{'setting':<{key_width}}{'value':<{value_width}}source")
        indent = " " * (key_width + value_width)
        for key, value, source in rows:
            wrapped = textwrap.wrap(source, WIDTH - len(indent)) or [""]
            lines.append(f"{key:<{key_width}}{_show(value):<{value_width}}{wrapped[0]}")
            lines += [indent + more for more in wrapped[1:]]
        lines.append("")
    rest = [f"{key}={_show(value)}" for key, value in flat.items() if not any(key == r[0] for r in rows)]
    title = "the other settings, at the kit's defaults:" if rows else "settings (the kit's defaults):"
    lines.append(title)
    lines += textwrap.wrap(", ".join(rest), WIDTH, initial_indent="  ", subsequent_indent="  ")
    if recipe is not None and RECIPES[recipe].departures:
        lines += ["", "where the kit departs from the source, and why:"]
        for item in RECIPES[recipe].departures:
            lines += textwrap.wrap(item, WIDTH, initial_indent="  - ", subsequent_indent="    ")
    if recipe is not None and RECIPES[recipe].submission:
        lines += ["", *textwrap.wrap(f"submission: {RECIPES[recipe].submission}", WIDTH, subsequent_indent="  ")]
    lines += ["", "kit config --json prints the same config as JSON (for kit train --config FILE)."]
    return "\n".join(lines)


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
