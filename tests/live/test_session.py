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


def test_the_server_tracks_a_video_exactly_as_kit_capture_does():
    """The page's frames go through kit capture's own Holistic (same model, settings and tracking mode): on the
    same pictures in the same order, the landmarks are identical to kit capture's, NaN for NaN."""
    import dataclasses
    import importlib.util
    import itertools

    import numpy as np

    if importlib.util.find_spec("mediapipe") is None or importlib.util.find_spec("cv2") is None:
        pytest.skip("the capture extra is not installed")  # the browser tests say it out loud, failing under CI
    from kit.capture.holistic import run_holistic
    from kit.capture.sources import open_source
    from kit.live.server import _import_mediapipe_alone
    from kit.live.session import Session
    from tests.live.test_live import CLIP, MODEL

    _import_mediapipe_alone()
    from kit.contract.predict import load

    def first12():  # the clip's first 12 frames, read anew each time
        return itertools.islice(open_source(CLIP).frames(), 12)

    captured = run_holistic(dataclasses.replace(open_source(CLIP), frames=first12, total=12), fps=None).landmarks
    session = Session(load(MODEL), "test", "video")
    live = np.stack([session.track(frame.image)[0] for frame in first12()])
    session.close()
    assert live.shape == captured.shape == (12, 543, 3)
    assert np.isfinite(live[:, 522:543]).any() and np.isnan(live[0]).all()  # her right hand; the cut: nobody
    np.testing.assert_array_equal(live, captured)
