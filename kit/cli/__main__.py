"""`python -m kit.cli ...`: the same as the `kit` command (the tests and benches run it this way)."""

from kit.cli import app

app()
