"""The cutting rule of `kit live` (kit.live.cutting) and the sequence a cut sign becomes, on the real samples'
hand presence and frames: what a live stream of real signing would give the rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kit.data import landmarks as L
from kit.errors import KitError
from kit.live.cutting import Cut, SignCutter, cut_signs

FPS = 30.0  # the real files' rate


def real_hands(samples: Path) -> list[np.ndarray]:
    """Per real sample, whether each frame has a hand."""
    from kit.data.parquet import read_landmarks

    files = sorted((samples / "train_landmark_files").rglob("*.parquet"))
    assert len(files) == 10
    return [np.isfinite(read_landmarks(f)[:, list(L.LEFT_HAND + L.RIGHT_HAND)]).any(axis=(1, 2)) for f in files]


def stream(samples_hands: list[np.ndarray], rest_frames: int):
    """The samples one after another, each after `rest_frames` without a hand (a signer resting), at 30 fps; and
    where each sample's frames start in the stream."""
    parts, starts, at = [], [], 0
    for hands in samples_hands:
        parts += [np.zeros(rest_frames, bool), hands]
        starts.append(at + rest_frames)
        at += rest_frames + len(hands)
    hands = np.concatenate(parts + [np.zeros(rest_frames, bool)])
    return np.arange(len(hands)) / FPS, hands, starts


def runs_apart(hand_frames: np.ndarray, gap: float) -> list[tuple[int, int]]:
    """Written independently of the rule: hand frames split where two consecutive ones are `gap` or more apart."""
    splits = np.flatnonzero(np.diff(hand_frames) / FPS >= gap) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(hand_frames, splits)]


def test_each_real_sign_between_rests_is_one_cut_from_its_first_to_its_last_hand(real_samples):
    """With a gap longer than any sample's hand-less stretch, each real sign is one cut, spanning exactly its first
    to its last frame with a hand: the rest before it and the wait after it are not part of it."""
    hands = real_hands(real_samples)
    longest = max(int(np.diff(np.flatnonzero(h)).max(initial=1)) - 1 for h in hands)  # hand-less frames in a row
    assert longest == 80  # 16069/10042041's hands go unseen for 2.7 s in the middle of its sign
    gap = (longest + 2) / FPS
    times, flat, starts = stream(hands, rest_frames=int(gap * FPS) + 15)
    expected = [Cut(start + int(np.flatnonzero(h)[0]), start + int(np.flatnonzero(h)[-1]) + 1)
                for start, h in zip(starts, hands)]
    assert cut_signs(times, flat, gap) == expected


def test_with_the_default_gap_a_real_sign_splits_only_at_hand_less_stretches_of_a_second(real_samples):
    """The default gap (1 s): a sign is cut in two exactly where its hands went unseen for a second or more (3 of
    the 10 real samples have one: 34, 36 and 80 frames); every frame with a hand is in exactly one cut, and every
    cut starts and ends on a frame with a hand."""
    hands = real_hands(real_samples)
    times, flat, starts = stream(hands, rest_frames=45)
    cuts = cut_signs(times, flat)
    expected = [Cut(start + a, start + b) for start, h in zip(starts, hands)
                for a, b in runs_apart(np.flatnonzero(h), 1.0)]
    assert cuts == expected
    assert len(cuts) == 13
    covered = np.zeros(len(flat), int)
    for cut in cuts:
        covered[cut.start:cut.end] += 1
        assert flat[cut.start] and flat[cut.end - 1]
    assert (covered[flat] == 1).all()


def test_frames_that_stop_coming_end_a_sign_when_the_next_one_comes_late():
    """A server that fell behind, or a paused stream: a hand seen again after the gap starts a new sign."""
    assert cut_signs([0.0, 0.1, 1.5, 1.6], [True, True, True, False], gap=1.0) == [Cut(0, 2), Cut(2, 3)]
    cutter = SignCutter(gap=0.5)
    assert cutter.add(0.0, True) == [] and cutter.signing and cutter.keep_from == 0
    assert cutter.add(0.3, False) == [] and cutter.add(0.6, False) == [Cut(0, 1)]
    assert not cutter.signing and cutter.keep_from == 3 and cutter.finish() == []


def test_key_mode_cuts_what_is_signed_while_the_key_is_held_hands_or_not():
    keys = [False, True, True, True, False, False, True, True]
    hands = [True, False, True, False, True, True, False, False]
    assert cut_signs(np.arange(8) / FPS, hands, keys=keys) == [Cut(1, 4), Cut(6, 8)]  # the last: the stream ended
    cutter = SignCutter(mode="key")
    cutter.add(0.0, False, key=True)
    cutter.add(0.1, True, key=True)
    assert cutter.release() == [Cut(0, 2)] and cutter.release() == []  # let go: the sign is what was held


def test_bad_settings_fail_in_one_line():
    with pytest.raises(KitError, match=r"--gap 0: must be a positive number"):
        SignCutter(gap=0)
    with pytest.raises(KitError, match=r"mode 'voice': use hands .* or key"):
        SignCutter(mode="voice")


def test_a_cut_sign_becomes_the_sequence_kit_capture_would_write(real_samples):
    """Sample-and-hold to 30 fps on the frames' own clock (a frame tracked at 15 fps stands for two), frames without
    a pose dropped: kit capture's rule (kit.capture.holistic.resample), on a real sample's frames."""
    from kit.data.parquet import read_landmarks
    from kit.live.session import competition_sequence

    real = read_landmarks(real_samples / "train_landmark_files" / "16069" / "100015657.parquet")[:20]
    frames, index = competition_sequence(real, np.arange(20) / 15.0)
    assert frames.dtype == np.float32 and frames.shape == (39, 543, 3)  # 19 held twice, the last once
    assert index.tolist() == np.repeat(np.arange(20), [2] * 19 + [1]).tolist()
    np.testing.assert_array_equal(frames, real[index].astype(np.float32))
    no_pose = real.copy()
    no_pose[3, L.OFFSET["pose"]] = np.nan  # a frame whose pose MediaPipe did not find
    _, index = competition_sequence(no_pose, np.arange(20) / FPS)
    assert index.tolist() == [i for i in range(20) if i != 3]
