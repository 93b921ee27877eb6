"""One page of `kit live`: MediaPipe Holistic on each frame, the signs cut out of the stream, the model's answer to
each, and the takes recorded; no web framework here (kit.live.server carries it to the page).

The frames are tracked by kit.capture.holistic.Holistic, the object `kit capture` tracks with (the same MediaPipe
Holistic 0.10.21, the same settings, tracking mode), so a sign's landmarks are those `kit capture` would write of
the same pictures. A finished sign becomes a competition sequence the way `kit capture` makes one: sample-and-hold
to 30 frames per second on the frames' own clock (kit.capture.holistic.resample: a frame the server had no time to
track is held from the one before), and frames without a pose dropped. It goes to the model through `kit
predict`'s runner (kit.contract.predict.Model), and a take is written by the writer of `kit capture --data`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit.capture.holistic import (COMPETITION_FPS, MODEL_COMPLEXITY, Holistic, add_to_dataset, has_pose,
                                  plan_take, steps_per_frame)
from kit.capture.sources import MEDIAPIPE_VERSION, opencv
from kit.contract.predict import Model
from kit.data import landmarks as L
from kit.data.prepare import TRAIN_CSV, read_train_csv
from kit.errors import KitError
from kit.live.cutting import GAP, Cut, SignCutter, check

_HANDS = list(L.LEFT_HAND + L.RIGHT_HAND)


def hand_in_view(points: np.ndarray) -> bool:
    """Whether MediaPipe found a hand in one frame `[543, 3]`."""
    return bool(np.isfinite(points[_HANDS]).any())


def competition_sequence(points: np.ndarray, times, fps: float = COMPETITION_FPS) -> tuple[np.ndarray, np.ndarray]:
    """A sign's tracked frames (at `times` seconds) as the competition sequence `kit capture` would write: resampled
    to `fps` by sample-and-hold, frames without a pose dropped. Returns the frames and, for each, its position in
    `points` (empty when no frame had a pose)."""
    repeats = steps_per_frame(list(times), fps)
    index = np.repeat(np.arange(len(points)), repeats)
    keep = has_pose(points[index]) if len(index) else np.zeros(0, bool)
    return points[index[keep]].astype(np.float32), index[keep]


@dataclass
class Sign:
    """A sign cut out of the stream, ready for the model."""

    number: int  # 1, 2, ... in this page's stream
    frames: np.ndarray  # the competition sequence [T, 543, 3]
    source_frames: list[int]  # per frame, the source frame it shows (the video's frame; the camera's count)
    seconds: float  # from its first to its last frame
    cut_at: float = field(default_factory=time.perf_counter)  # when the cut was known: the answer's clock starts


@dataclass
class Recorder:
    """Takes of one sign by one signer into a competition folder, as `kit capture --data DIR --participant P --sign
    S [--vocabulary V]` writes them."""

    data: Path
    vocabulary: str | None = None
    sign: str = ""
    participant: int | None = None
    armed: bool = False

    def arm(self, sign: str, participant, armed: bool) -> None:
        """Set what the next takes are; checked now, as `kit capture` checks before it records."""
        self.armed = False
        sign = (sign or "").strip()
        try:
            participant = int(participant)
        except (TypeError, ValueError):
            raise KitError(f"signer {participant!r}: give a whole number, like the competition's participant ids")
        if armed:
            if not sign:
                raise KitError("name the sign you record")
            plan_take(self.data, participant, sign, self.vocabulary)
        self.sign, self.participant, self.armed = sign, participant, armed

    def write(self, sign: Sign, info: dict) -> dict:
        plan = plan_take(self.data, self.participant, self.sign, self.vocabulary)
        path, row, note = add_to_dataset(*plan, sign.frames.astype(np.float64), info)
        return {"type": "take", "path": str(path), "sign": self.sign, "participant": self.participant,
                "sequence_id": row["sequence_id"], "frames": len(sign.frames), "note": note, "counts": self.counts()}

    def counts(self) -> dict[str, int]:
        """Takes per sign in the folder (every signer)."""
        csv = self.data / TRAIN_CSV
        return dict(sorted(Counter(row.sign for row in read_train_csv(csv)).items())) if csv.is_file() else {}


class Session:
    """The pipeline of one page: `track` each picture (in one thread: Holistic is not shared), `add` its landmarks,
    and `answer` each sign that adding, `release` or `finish` cut."""

    def __init__(self, model: Model, source: str, kind: str, gap: float = GAP, mode: str = "hands",
                 recorder: Recorder | None = None):
        self.model, self.source, self.kind, self.recorder = model, source, kind, recorder
        self.holistic = Holistic()
        self.cv2 = opencv()
        self.restart(gap, mode)

    def restart(self, gap: float | None = None, mode: str | None = None) -> None:
        """A new stream (or new cutting settings): any sign in progress is let go."""
        gap = self.gap if gap is None else gap
        mode = self.mode if mode is None else mode
        check(gap, mode)
        self.gap, self.mode = gap, mode
        self.cutter = SignCutter(gap, mode)
        self.frames: list[tuple[float, np.ndarray, int]] = []  # (time, points, source frame) from frames_from on
        self.frames_from = 0
        self.signs = 0

    def close(self) -> None:
        self.holistic.model.close()

    def track(self, picture) -> tuple[np.ndarray, float]:
        """One picture (JPEG bytes from the page, or a BGR image) through Holistic: `[543, 3]` and the ms it took."""
        if isinstance(picture, (bytes, bytearray)):
            picture = self.cv2.imdecode(np.frombuffer(picture, np.uint8), self.cv2.IMREAD_COLOR)
            if picture is None:
                raise KitError("the page sent a picture that is not a JPEG")
        start = time.perf_counter()
        points = self.holistic(picture)
        return points, 1000 * (time.perf_counter() - start)

    @property
    def signing(self) -> bool:
        return self.cutter.signing

    def add(self, t: float, points: np.ndarray, source_frame: int, key: bool = False) -> list[Sign]:
        cuts = self.cutter.add(t, hand_in_view(points), key)
        self.frames.append((t, points, source_frame))
        return self._signs(cuts)

    def release(self) -> list[Sign]:
        return self._signs(self.cutter.release())

    def finish(self) -> list[Sign]:
        return self._signs(self.cutter.finish())

    def _signs(self, cuts: list[Cut]) -> list[Sign]:
        signs = []
        for cut in cuts:
            kept = self.frames[cut.start - self.frames_from:cut.end - self.frames_from]
            times = [t for t, _, _ in kept]
            frames, index = competition_sequence(np.stack([p for _, p, _ in kept]), times)
            self.signs += 1
            signs.append(Sign(self.signs, frames, [kept[i][2] for i in index], times[-1] - times[0]))
        drop = self.cutter.keep_from - self.frames_from  # frames no sign can still hold
        del self.frames[:drop]
        self.frames_from += drop
        return signs

    def answer(self, sign: Sign) -> list[dict]:
        """The model's top 5 for `sign` (and the take written, when recording): the messages for the page."""
        if not len(sign.frames):
            return [{"type": "note", "text": f"sign {sign.number}: MediaPipe found no pose in it, so it is not a "
                     "competition sequence: sit back so that your shoulders are in the picture"}]
        prediction = self.model.predict(sign.frames, f"sign {sign.number}")
        messages = [{"type": "sign", "number": sign.number, "frames": len(sign.frames),
                     "seconds": round(sign.seconds, 3), "ms": round(prediction.ms, 2), "note": prediction.note,
                     "top": [{"sign": s, "p": round(p, 4)} for s, _, p in prediction.top]}]
        if self.recorder is not None and self.recorder.armed:
            info = {"source": self.source, "kind": self.kind, "fps": COMPETITION_FPS,
                    "source_frames": sign.source_frames, "mediapipe": MEDIAPIPE_VERSION,
                    "model_complexity": MODEL_COMPLEXITY, "recorded_with": "kit live"}
            messages.append(self.recorder.write(sign, info))
        messages[0]["latency_ms"] = round(1000 * (time.perf_counter() - sign.cut_at), 1)
        return messages
