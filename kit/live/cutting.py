"""When a sign starts and ends in a live stream of frames: the cutting rule of `kit live`, pure and incremental.

Two modes, chosen on the page:
- "hands": a sign starts at the first frame with a hand and ends once no hand has been seen for `gap` seconds; the
  sign is its first to its last frame with a hand (the hand-less frames of the wait are not part of it, nor is the
  rest before it). A hand seen again within `gap` continues the same sign: MediaPipe loses hands for a few frames
  in the middle of real signs (3 of the 10 real samples in samples/asl-signs have a hand-less stretch of
  a second or more inside the sign: 34, 36 and 80 frames), and a sign is cut in two only where such a stretch
  lasts `gap` or longer.
- "key": a sign is every frame while a key is held, hands or not.

The cutter sees only (time, hand in view, key held) per frame and answers with frame positions (the count of frames
it was given), so the caller keeps the frames and the rule stays testable on any recording's hand presence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kit.errors import KitError

GAP = 1.0  # seconds without a hand that end a sign: the "about 1 s", short enough to feel live; it splits
# 3 of the 10 real samples (tests/live/test_cutting.py), so where MediaPipe loses your hands, raise it (--gap 1.5)
MODES = ("hands", "key")


@dataclass(frozen=True)
class Cut:
    """A finished sign: frames start .. end-1 of the stream (positions counted from the cutter's first frame)."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


class SignCutter:
    """The rule, one frame at a time: `add` each frame as it comes, `release` when the key is let go, `finish` when
    the stream ends; each returns the signs that it finished."""

    def __init__(self, gap: float = GAP, mode: str = "hands"):
        check(gap, mode)
        self.gap, self.mode = gap, mode
        self.count = 0  # frames added
        self.start: int | None = None  # the open sign's first frame
        self.last_hand: int = -1  # hands mode: the open sign's last frame with a hand
        self.last_hand_t: float = 0.0

    @property
    def signing(self) -> bool:
        return self.start is not None

    @property
    def keep_from(self) -> int:
        """The first frame a sign still to be cut may hold: the caller can forget every frame before it."""
        return self.start if self.start is not None else self.count

    def add(self, t: float, hand: bool, key: bool = False) -> list[Cut]:
        """Frame number `self.count`, at `t` seconds, with a hand in view or not, the key held or not."""
        i, cuts = self.count, []
        self.count += 1
        if self.mode == "key":
            if key and self.start is None:
                self.start = i
            elif not key and self.start is not None:
                cuts.append(self._close(i))
            return cuts
        if self.start is not None and t - self.last_hand_t >= self.gap:
            cuts.append(self._close(self.last_hand + 1))  # the wait is over (also when frames stopped coming)
        if hand:
            if self.start is None:
                self.start = i
            self.last_hand, self.last_hand_t = i, t
        return cuts

    def release(self) -> list[Cut]:
        """The key was let go (key mode): the sign is every frame added while it was held."""
        if self.mode == "key" and self.start is not None:
            return [self._close(self.count)]
        return []

    def finish(self) -> list[Cut]:
        """The stream ended (a video's last frame): the open sign ends where its hands or its frames end."""
        if self.start is None:
            return []
        return [self._close(self.last_hand + 1 if self.mode == "hands" else self.count)]

    def _close(self, end: int) -> Cut:
        cut, self.start = Cut(self.start, end), None
        return cut


def check(gap: float, mode: str) -> None:
    if not gap > 0:
        raise KitError(f"--gap {gap}: must be a positive number of seconds without a hand that ends a sign")
    if mode not in MODES:
        raise KitError(f"mode {mode!r}: use hands (a sign ends after --gap seconds without a hand) or key (a sign "
                       "is what is signed while a key is held)")


def cut_signs(times: Sequence[float], hands: Sequence[bool], gap: float = GAP,
              keys: Sequence[bool] | None = None) -> list[Cut]:
    """Every sign in a whole stream (frames at `times` seconds, a hand in view in each or not): the live rule run
    over a recording, finished at its end. `keys` given: key mode, a sign while the key is held."""
    cutter = SignCutter(gap, "hands" if keys is None else "key")
    cuts: list[Cut] = []
    for i, (t, hand) in enumerate(zip(times, hands, strict=True)):
        cuts += cutter.add(t, bool(hand), bool(keys[i]) if keys is not None else False)
    return cuts + cutter.finish()
