"""What every command of the `kit` command line shares: the app, its help's look, and the option helpers.

KitCommand makes help read as the README does; KitTyper gives every command it; `app` is the `kit` command, whose
commands kit/cli/__init__.py registers from the group modules. quiet.install() runs here, on the first import of
kit.cli, before any command can import TensorFlow.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Optional

import typer
import typer.core

from kit import quiet
from kit.errors import KitError

quiet.install()  # before any command imports TensorFlow: its start-up chatter stays off the terminal

class KitCommand(typer.core.TyperCommand):
    """A command whose help reads as the README does: arguments by their metavar (RUN_DIR, never {run_dir}) in the
    usage line, flags as flags (--dry-run, not --dry-run <bool>) and paragraphs wrapped to the terminal (`reflowed`);
    and whose KitError, raised anywhere in it, ends it with its one line, `Error: ...`, and exit status 1."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = reflowed(self.help)
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument) and param.metavar is None:
                param.metavar = param.name.upper()
            elif isinstance(param, typer.core.TyperOption) and param.is_flag:
                param.metavar = ""  # a flag takes no value: no type column

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KitError as err:
            raise _fail(err)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument) and not param.hidden:
                name = param.metavar + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def reflowed(text: str | None) -> str | None:
    """A command's docstring as its help shows it: the line breaks made by hand inside a paragraph become spaces,
    so that the terminal wraps each paragraph to its own width (typer keeps them after the first paragraph, and a
    narrow terminal then wraps every hand-made line on its own, leaving ragged lines); an `Example` line keeps its
    own line."""
    if not text:
        return text
    return "\n\n".join(re.sub(r"\n(?!Example)", " ", p) for p in inspect.cleandoc(text).split("\n\n"))


class KitTyper(typer.Typer):
    """typer.Typer whose commands are KitCommands."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or KitCommand, **kwargs)


app = KitTyper(
    add_completion=False,
    no_args_is_help=True,
    help="From raw MediaPipe landmarks to a scored Kaggle asl-signs submission. Start with `kit demo`.",
)


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"Error: {err}", err=True)
    return typer.Exit(code=1)


def _alias(value, old, name: str, old_name: str, default=None):
    """An option given by its name or by its old spelling, kept hidden so that older commands still run; not both."""
    if value is not None and old is not None:
        raise KitError(f"{old_name} is the old spelling of {name}: give {name} only")
    return value if value is not None else old if old is not None else default


def _ids(text: Optional[str]) -> Optional[list[int]]:
    """Parse "16069,18796" into [16069, 18796]."""
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated participant ids like 16069,18796, got {text!r}")


def _check_model_name(cfg) -> None:
    """An unknown model.name, from the table kit models lists (no Keras import), as kit.models would refuse it."""
    from kit.model_names import MODELS

    if cfg.model.name not in MODELS:
        raise KitError(f"unknown model {cfg.model.name!r}; registered models: {', '.join(sorted(MODELS))}")


def _terminal_width() -> Optional[int]:
    """The terminal's columns (COLUMNS when set), or None when the output goes to a pipe or a file."""
    import os
    import shutil
    import sys

    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _base_config(file: Optional[Path], recipe: Optional[str]):
    """The config a command starts from: a JSON file, a named recipe, or the defaults (not both)."""
    from kit import config as config_mod

    if file and recipe:
        raise KitError("give --config or --recipe, not both (add --set overrides to either)")
    return config_mod.load(file) if file else config_mod.recipe(recipe) if recipe else config_mod.Config()
