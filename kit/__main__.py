"""`python -m kit ...`: the same as the `kit` command (the Kaggle training kernel runs the kit this way)."""

from kit.cli import app

app(prog_name="kit")
