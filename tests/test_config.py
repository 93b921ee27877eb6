"""Config overrides are type-checked and an unknown key is an error, never ignored."""

from __future__ import annotations

import pytest

from kit import config as C
from kit.errors import KitError


def test_override_sets_typed_values_and_round_trips(tmp_path):
    """section.key=value overrides land with the field's type; save then load gives the same config."""
    cfg = C.apply_overrides(C.Config(), ["train.epochs=3", "train.learning_rate=1e-3", "model.dim=32",
                                         "preprocess.use_z=true", 'model.name="llama_tiny"'])
    assert cfg.train.epochs == 3 and cfg.train.learning_rate == 1e-3 and cfg.preprocess.use_z is True
    assert cfg.model.name == "llama_tiny" and cfg.model.overrides == {"dim": 32}
    cfg.save(tmp_path / "c.json")
    assert C.load(tmp_path / "c.json") == cfg


@pytest.mark.parametrize("override,message", [
    ("train.epoch=3", "unknown key 'train.epoch'"),
    ("trian.epochs=3", "unknown config section 'trian'"),
    ("train.epochs=three", "train.epochs must be int"),
    ("train.epochs=2.5", "train.epochs must be int"),
    ("epochs=3", "must look like section.key=value"),
])
def test_bad_override_is_refused(override, message):
    """Typos and wrong types fail with a message naming the key."""
    with pytest.raises(KitError, match=message):
        C.apply_overrides(C.Config(), [override])


def test_unknown_key_in_a_config_file_is_refused(tmp_path):
    """A config file with a key the dataclass lacks fails instead of being silently ignored."""
    path = tmp_path / "c.json"
    path.write_text('{"train": {"epochs": 2, "mixup": 0.5}}')
    with pytest.raises(KitError, match="unknown key train.mixup"):
        C.load(path)


def test_config_is_frozen():
    """A config cannot be changed after it is built (it is the record of a run)."""
    with pytest.raises(Exception):
        C.Config().train.epochs = 5


def test_kit_config_prints_what_train_would_use():
    """`kit config` prints the resolved config as JSON; a typo exits 1 listing the valid keys."""
    import json

    from typer.testing import CliRunner

    from kit.cli import app

    result = CliRunner().invoke(app, ["config", "--json", "--set", "train.epochs=3"])
    assert result.exit_code == 0
    assert json.loads(result.output)["train"]["epochs"] == 3
    bad = CliRunner().invoke(app, ["config", "--set", "train.epoc=3"])
    assert bad.exit_code == 1 and "valid: train.epochs" in bad.output


@pytest.mark.parametrize("name", sorted(C.RECIPES))
def test_every_recipe_is_a_valid_config_whose_model_builds(name):
    """Each named recipe resolves to a config that builds its model at its preprocessing's width."""
    from kit.training.train import build_model

    cfg = C.recipe(name)
    assert build_model(cfg).count_params() > 0


def test_recipes_are_reachable_from_the_cli_and_typos_list_them():
    """`kit config --recipe mlp80` shows the recipe; an unknown recipe exits 1 naming the valid ones."""
    import json

    from typer.testing import CliRunner

    from kit.cli import app

    shown = json.loads(CliRunner().invoke(app, ["config", "--json", "--recipe", "mlp80", "--set", "train.epochs=2"]).output)
    assert shown["model"]["name"] == "mlp" and shown["preprocess"]["distances"] and shown["train"]["epochs"] == 2
    bad = CliRunner().invoke(app, ["config", "--recipe", "mlp81"])
    assert bad.exit_code == 1 and "recipes: llama26, conv1st, mlp80" in bad.output
    both = CliRunner().invoke(app, ["config", "--recipe", "mlp80", "--config", "run/config.json"])
    assert both.exit_code == 1 and "--config or --recipe, not both" in both.output
