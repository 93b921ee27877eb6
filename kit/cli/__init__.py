"""The `kit` command line: each command parses its options, calls one library function and reports.

One module per command group, beside the package that owns its steps: data (synth, prepare), training (train, cv,
config, models), contract (export, check, evaluate, predict), demo, kaggle (fetch, submit, kaggle train|status|cancel),
seeing (show, stats, report, runs), capture, live; base holds the app and what the commands share. The commands are
registered here, in the order `kit --help` lists them.

Heavy imports (TensorFlow, the Kaggle client) happen inside the commands so that `kit --help` is instant; kit.quiet
keeps TensorFlow's start-up log lines off the terminal (kit.cli.base installs it before any command runs).
"""

from __future__ import annotations

from kit.cli import capture, contract, data, demo, kaggle, live, seeing, training
from kit.cli.base import app

for command in (data.synth, data.prepare, training.train, training.cv, training.config, training.models,
                contract.export, contract.check, contract.evaluate, demo.demo, kaggle.fetch, kaggle.submit, seeing.show,
                capture.capture, contract.predict, live.live, seeing.stats, seeing.report, seeing.runs):
    app.command()(command)
app.add_typer(kaggle.kaggle_app, name="kaggle")

__all__ = ["app"]
