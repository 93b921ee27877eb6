"""What the page's record controls are checked against before a take is recorded (kit.live.session.Recorder): the
same rules as `kit capture --data`, said in one line on the page."""

from __future__ import annotations

import pytest

from kit.errors import KitError
from kit.live.session import Recorder


def test_takes_are_checked_as_kit_capture_checks_them_before_recording(tmp_path):
    competition = Recorder(tmp_path / "competition")
    with pytest.raises(KitError, match="name the sign you record"):
        competition.arm(" ", 1, True)
    with pytest.raises(KitError, match="signer 'me': give a whole number"):
        competition.arm("hello", "me", True)
    with pytest.raises(KitError, match=r"--sign 'helo' is not one of the 250 signs .* did you mean hello"):
        competition.arm("helo", 1, True)
    assert not competition.armed
    competition.arm("hello", "7", True)
    assert competition.armed and competition.participant == 7 and competition.counts() == {}
    own = Recorder(tmp_path / "own", vocabulary="own")
    own.arm("my name", 1, True)  # any name joins an own vocabulary
    with pytest.raises(KitError, match="without commas"):
        own.arm("a,b", 1, True)
    own.arm("", 1, False)  # stopping needs no sign
    assert not own.armed
