"""The suite's own environment (tests/environment.py): whatever the shell that started pytest held, a test sees the
suite's settings, and a child it starts gets the signal handling it asks for."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.environment import DROPPED, DROPPED_PREFIXES, SET, command, user_home

PROBE = ("import signal; handler = signal.getsignal(signal.SIGINT); "
         "print('default' if handler is signal.default_int_handler else 'ignored' if handler == signal.SIG_IGN else "
         "handler)")


def test_a_child_gets_the_sigint_it_asks_for_whatever_the_suite_inherited():
    """Started in the background by a script, the suite itself inherits SIGINT ignored (and exec keeps it so); from
    a terminal, at its default. Either way `command` starts the child with what the test asked for."""
    for suite in (signal.SIG_IGN, signal.default_int_handler):
        previous = signal.signal(signal.SIGINT, suite)
        try:
            got = {how: subprocess.run(command("-c", PROBE, sigint=how), capture_output=True, text=True,
                                       timeout=120).stdout.strip() for how in ("default", "ignored")}
        finally:
            signal.signal(signal.SIGINT, previous)
        assert got == {"default": "default", "ignored": "ignored"}, suite


def test_no_setting_of_the_users_reaches_a_test():
    """A home of the suite's own (no ~/.kaggle, ~/.keras of the user's), none of the user's Kaggle, Keras, JAX or
    terminal variables, the suite's zone and locale, and children's exit codes readable (SIGCHLD at its default)."""
    assert Path.home() != user_home() and not (Path.home() / ".kaggle").exists()
    leaked = [name for name in os.environ
              if name not in SET and name != "TF_CPP_MIN_LOG_LEVEL"  # set by kit.quiet in this process (its default)
              and (name in DROPPED or name.startswith(DROPPED_PREFIXES))]
    assert not leaked
    assert {name: os.environ[name] for name in SET} == SET
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
    assert subprocess.run(["sh", "-c", "exit 3"]).returncode == 3
