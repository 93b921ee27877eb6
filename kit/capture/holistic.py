"""`kit capture`: MediaPipe Holistic over your own signing, written as a competition landmark file.

Holistic runs with the only settings that work offline and give the competition's points: model_complexity=1 (the
pose model that the 0.10.21 wheel bundles; 0 and 2 download theirs) and refine_face_landmarks=False (a refined
face has 478 points, the competition's 468). A video, a webcam or a folder of frames runs in tracking mode, as the
competition's recordings did; a single image in static mode.

Rate: videos and webcams are resampled to 30 frames per second (`--fps`), the competition's rate: its signs were
recorded with phone cameras, which film at 30 fps, and its files keep every frame (their frame numbers run on
without gaps), which is why a sign of about a second has the real data's median length of ~33 frames. Resampling
is sample-and-hold: output frame k, at time k/fps, shows the last source frame at or before it, so a 60 fps video
skips every other frame (MediaPipe runs on only the frames kept) and a 24 fps one shows every fourth frame twice.
Folders of images have no clock and are taken frame for frame.

A frame where MediaPipe found no pose is dropped (and counted): the competition's files have a pose in every frame
(pose was never missing in 747 real files), and without one Holistic finds nothing else either. A frame with a pose
but no face is kept, its 468 face points NaN, as the competition's own files keep such frames (0.5% of their frames;
three of the real samples in samples/asl-signs have some). The frames left are numbered 0, 1, 2 ...
Hands and faces that were not found are NaN (stored as nulls, as in the real files).

The file has exactly the competition's columns and types. Its parquet metadata (key `kit.capture`) names the
source and, per frame, the source frame it shows, which `kit show --overlay` uses to draw over the right picture.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kit import quiet
from kit.errors import KitError
from kit.data.landmarks import N_LANDMARKS, OFFSET, SIGN_MAP, SIGN_MAP_NAME, TYPES
from kit.data.prepare import TRAIN_COLUMNS, TRAIN_CSV, read_sign_map, read_train_csv
from kit.progress import say, track
from kit.capture.sources import INSTALL, MEDIAPIPE_VERSION, Source, open_source, open_webcam, opencv

COMPETITION_FPS = 30.0  # phone cameras' rate, every frame kept (see the module docstring)
MODEL_COMPLEXITY = 1  # the only Holistic pose model inside the mediapipe wheel: 0 and 2 are downloaded
RESULT_FIELDS = {"face": "face_landmarks", "left_hand": "left_hand_landmarks", "pose": "pose_landmarks",
                 "right_hand": "right_hand_landmarks"}
MAX_FRAMES = 32767  # the competition's `frame` column is int16
METADATA_KEY = b"kit.capture"


def mediapipe():
    """The mediapipe module with its legacy Holistic solution, or a KitError naming the install command."""
    opencv()
    try:
        import mediapipe as mp
    except ImportError:
        raise KitError(f"kit capture needs MediaPipe {MEDIAPIPE_VERSION}, which is not installed: {INSTALL} "
                       "(README, \"Your own signing\")") from None
    if getattr(getattr(mp, "solutions", None), "holistic", None) is None:
        raise KitError(f"mediapipe {getattr(mp, '__version__', '?')} has no legacy solutions.holistic (releases "
                       f"from 0.10.30 on dropped it and download their models): {INSTALL}")
    import google.protobuf

    if int(google.protobuf.__version__.split(".")[0]) >= 7:
        raise KitError(f"protobuf {google.protobuf.__version__} breaks MediaPipe Holistic: "
                       "pip install \"protobuf>=6.31.1,<6.34\" (TensorFlow accepts it)")
    return mp


class Holistic:
    """MediaPipe Holistic, BGR image in, one competition frame `[543, 3]` out (NaN for a part not found)."""

    def __init__(self, static: bool = False):
        mp, self.cv2 = mediapipe(), opencv()
        try:
            with quiet.startup():  # its graph's start-up lines: XNNPACK, feedback-manager warnings
                self.model = mp.solutions.holistic.Holistic(static_image_mode=static,
                                                            model_complexity=MODEL_COMPLEXITY,
                                                            refine_face_landmarks=False)
        except (RuntimeError, ValueError, OSError) as err:
            raise KitError(f"MediaPipe Holistic did not start ({str(err).strip().splitlines()[0]}): {INSTALL}")

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return landmarks_of(self.model.process(self.cv2.cvtColor(image, self.cv2.COLOR_BGR2RGB)))

    def __enter__(self) -> Holistic:
        return self

    def __exit__(self, *exc) -> None:
        self.model.close()


def landmarks_of(results) -> np.ndarray:
    """Holistic's results as one competition frame: face, left_hand, pose, right_hand rows of x, y, z."""
    frame = np.full((N_LANDMARKS, 3), np.nan)
    for name, count in TYPES:
        found = getattr(results, RESULT_FIELDS[name])
        if found is None:
            continue
        points = found.landmark
        if len(points) != count:
            raise KitError(f"MediaPipe gave {len(points)} {name} landmarks where the competition has {count}: "
                           f"use mediapipe {MEDIAPIPE_VERSION} with refine_face_landmarks=False ({INSTALL})")
        frame[OFFSET[name]:OFFSET[name] + count] = [(p.x, p.y, p.z) for p in points]
    return frame


def resample(timed, fps: float | None):
    """Yield (item, repeats) for each (time, item): how many frames of a `fps` stream the item stands for.

    Sample-and-hold: output frame k, at t0 + k/fps, is the last item stamped at or before it, so an item no output
    frame falls on gets 0 and one that a slower source holds longer gets 2 or more. `fps` None: every item once.
    One item of lookahead: an item is yielded when the next one's time is known (the last one gets 1).
    """
    step = 1.0 / fps if fps else None
    waiting, pending, start, k = False, None, 0.0, 0
    for t, item in timed:
        if step is None or t is None:
            yield item, 1
            continue
        if not waiting:
            waiting, pending, start = True, item, t
            continue
        repeats = 0
        while start + k * step < t - 1e-6:  # a microsecond's slack for clocks rounded to milliseconds
            k, repeats = k + 1, repeats + 1
        yield pending, repeats
        pending = item
    if waiting:
        yield pending, 1


def steps_per_frame(times, fps: float | None) -> list[int]:
    """`resample`'s repeats for frames stamped `times`: the rule alone, for tests and plans."""
    return [repeats for _, repeats in resample(((t, None) for t in times), fps)]


@dataclass(frozen=True)
class Tracked:
    """What MediaPipe saw in a source, one row per output frame, before any frame is dropped."""

    source: Source
    landmarks: np.ndarray  # [frames, 543, 3] float64, NaN where a part was not found
    source_frames: np.ndarray  # [frames] the source frame each row shows
    fps: float | None  # rate of the rows (None: images, one row each)
    read: int  # source frames read
    tracked: int  # source frames MediaPipe ran on
    seconds: float  # spent inside MediaPipe
    interrupted: bool = False  # a webcam stopped with Ctrl-C

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds / max(self.tracked, 1)


def run_holistic(source: Source, fps: float | None = COMPETITION_FPS) -> Tracked:
    """Holistic over every frame of `source` (resampled to `fps` where it has a clock; None or 0: as it is)."""
    if fps is not None and fps < 0:
        raise KitError(f"--fps {fps}: must be positive, or 0 to keep every source frame")
    rate = fps if fps and source.kind in ("video", "webcam") else None
    rows, index, read, tracked, spent, interrupted = [], [], 0, 0, 0.0, False
    mediapipe()  # imported first: its import prints through Python's stderr, which native_logs leaves alone
    steps = resample(((frame.time, frame) for frame in source.frames()), rate)
    try:
        # MediaPipe's threads log as they start (at times after the constructor returned) and meet new input
        with quiet.native_logs(), Holistic(static=source.kind == "image") as holistic:
            for frame, repeats in track(steps, f"MediaPipe Holistic on {Path(source.name).name}", total=source.total):
                read += 1
                if repeats:
                    start = time.perf_counter()
                    points = holistic(frame.image)
                    spent, tracked = spent + time.perf_counter() - start, tracked + 1
                    rows.extend([points] * repeats)
                    index.extend([frame.index] * repeats)
    except KeyboardInterrupt:
        if not source.live:
            raise
        interrupted = True  # Ctrl-C is how a webcam recording ends: keep what was recorded
    landmarks = np.stack(rows) if rows else np.empty((0, N_LANDMARKS, 3))
    return Tracked(source, landmarks, np.asarray(index, dtype=np.int64), rate or source.fps, read, tracked, spent,
                   interrupted)


def has_pose(landmarks: np.ndarray) -> np.ndarray:
    """Which frames have every pose point: the frames a competition file may hold (the face may be missing)."""
    pose = list(range(OFFSET["pose"], OFFSET["pose"] + 33))
    return np.isfinite(landmarks[:, pose]).all(axis=(1, 2))


def found_per_part(landmarks: np.ndarray) -> dict[str, int]:
    """In how many frames each part was found (any finite point)."""
    return {name: int(np.isfinite(landmarks[:, OFFSET[name]:OFFSET[name] + count]).any(axis=(1, 2)).sum())
            for name, count in TYPES}


def competition_frames(tracked: Tracked) -> tuple[np.ndarray, np.ndarray]:
    """The frames a competition file may hold (a pose found, with or without a face) and the source frame of each."""
    keep = has_pose(tracked.landmarks)
    if not keep.any():
        raise KitError(f"{tracked.source.name}: MediaPipe found no pose in any of its "
                       f"{tracked.read} frames: film the signer from the waist up, face and hands in the light")
    if keep.sum() > MAX_FRAMES:
        raise KitError(f"{tracked.source.name}: {int(keep.sum())} frames; a competition file holds at most "
                       f"{MAX_FRAMES} (its frame column is int16): cut the recording into single signs")
    return tracked.landmarks[keep], tracked.source_frames[keep]


def open_any(source: str | os.PathLike | None, webcam: int | None = None, seconds: float | None = None) -> Source:
    """SOURCE (a video, a folder of images, an image) or --webcam N: exactly one of them."""
    if (source is None) == (webcam is None):
        raise KitError("give a SOURCE (a video, an image or a folder of images) or --webcam N, "
                       + ("not both" if source is not None else "one of them"))
    if seconds is not None and webcam is None:
        raise KitError("--seconds goes with --webcam N: a file ends by itself")
    return open_webcam(webcam, seconds) if webcam is not None else open_source(source)


@dataclass(frozen=True)
class CaptureResult:
    out: Path
    source: str
    frames: int  # written
    read: int  # source frames read
    dropped: int  # frames without a pose, left out
    found: dict[str, int]  # frames (of those written) in which each part was found
    fps: float | None
    ms_per_frame: float
    interrupted: bool = False
    row: dict = field(default_factory=dict)  # the train.csv row added, if any
    note: str = ""  # a sign that joined the folder's own vocabulary

    def __str__(self) -> str:
        rate = f" at {self.fps:g} fps" if self.fps else ""
        parts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in self.found.items())
        stopped = " (stopped with Ctrl-C)" if self.interrupted else ""
        lines = [f"wrote {self.out}: {_frames(self.frames)}{rate} from {_frames(self.read)} of {self.source}"
                 f"{stopped}; MediaPipe {self.ms_per_frame:.0f} ms a frame",
                 f"found in frames: {parts}"]
        if self.dropped:
            lines.append(f"dropped {_frames(self.dropped)} without a pose (the competition's files have one in every "
                         "frame)")
        faceless = self.frames - self.found["face"]
        if faceless:
            lines.append(f"kept {_frames(faceless)} without a face (NaN face points, as in the competition's files)")
        if not self.found["left_hand"] and not self.found["right_hand"]:
            lines.append("note: no hand in any frame: keep both hands in the picture, in good light")
        if self.row:
            lines.append(f"added to {self.out.parents[2] / TRAIN_CSV}: participant {self.row['participant_id']}, "
                         f"sequence {self.row['sequence_id']}, sign {self.row['sign']}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _frames(n: int) -> str:
    return f"{n} frame{'' if n == 1 else 's'}"


def capture(source: Source, out: str | os.PathLike | None = None, fps: float | None = COMPETITION_FPS,
            data: str | os.PathLike | None = None, participant: int | None = None,
            sign: str | None = None, vocabulary: str | None = None) -> CaptureResult:
    """Track `source` and write its frames to `out` (FILE.parquet), or into the competition folder `data` as
    participant `participant`'s recording of `sign`, with its train.csv row.

    `vocabulary` (with `data`): "competition", the folder's signs are the competition's 250 (a new folder gets
    its map); "own", the folder's map holds the signs recorded into it, and a new sign joins it (kit/data/vocabulary.py:
    a model trained on it gets one output per sign). None: the folder's map decides; a new folder is competition.
    """
    if fps is not None and fps < 0:
        raise KitError(f"--fps {fps}: must be positive, or 0 to keep every source frame")
    plan = _plan_output(out, data, participant, sign, vocabulary)
    tracked = run_holistic(source, fps)
    if tracked.interrupted:
        say(f"stopped: {tracked.read} frames recorded from {source.name}")
    frames, source_frames = competition_frames(tracked)
    info = {"source": str(Path(source.path).resolve()) if source.path else source.name, "kind": source.kind,
            "fps": tracked.fps, "source_frames": source_frames.tolist(), "mediapipe": MEDIAPIPE_VERSION,
            "model_complexity": MODEL_COMPLEXITY}
    row, note = {}, ""
    if isinstance(plan, Path):
        write_landmarks(plan, frames, info)
        path = plan
    else:
        path, row, note = add_to_dataset(*plan, frames, info)
    return CaptureResult(path, source.name, len(frames), tracked.read, len(tracked.landmarks) - len(frames),
                         found_per_part(frames), tracked.fps, tracked.ms_per_frame, tracked.interrupted, row, note)


VOCABULARIES = ("competition", "own")


def _plan_output(out, data, participant, sign, vocabulary=None):
    """Check where the capture goes before MediaPipe starts: a Path, or (data folder, participant, sign, own)."""
    if data is None:
        if participant is not None or sign is not None:
            raise KitError("--participant and --sign add the recording to a competition folder: give it with "
                           "--data DIR (instead of --out)")
        if out is None:
            raise KitError("give --out FILE.parquet (or --data DIR --participant P --sign S)")
        out = Path(out)
        if out.suffix.lower() != ".parquet":
            raise KitError(f"{out}: kit capture writes a competition landmark file: give --out NAME.parquet")
        if out.is_dir():
            raise KitError(f"{out}: is a folder: give --out NAME.parquet")
        return out
    if out is not None:
        raise KitError(f"give --out FILE or --data DIR, not both: with --data the file goes to "
                       f"{Path(data) / 'train_landmark_files'}/<participant>/<sequence>.parquet")
    if vocabulary is not None and vocabulary not in VOCABULARIES:
        raise KitError(f"--vocabulary {vocabulary}: use competition (the 250 signs) or own (the signs you record)")
    if participant is None or sign is None:
        raise KitError(f"--data {data} needs --participant P and --sign S: whose recording of which sign it is")
    if participant < 0:
        raise KitError(f"--participant {participant}: must be a whole number >= 0, like the competition's ids")
    data = Path(data)
    sign_map = _sign_map(data)
    own = _own_vocabulary(data, sign_map, vocabulary)
    if own:
        if not sign.strip() or any(c in sign for c in ',"\n\r'):
            raise KitError(f"--sign {sign!r}: a sign's name must be non-empty, without commas, quotes or line breaks")
        _read_rows(data)
        return data, participant, sign, True
    signs = read_sign_map(sign_map) if sign_map.is_file() else read_sign_map(SIGN_MAP)
    if sign not in signs:
        import difflib

        close = difflib.get_close_matches(sign, signs, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else f"e.g. {', '.join(signs[:3])}"
        raise KitError(f"--sign {sign!r} is not one of the {len(signs)} signs of {sign_map}: {hint} (to train signs "
                       "of your own, record them into a new folder with --vocabulary own)")
    _read_rows(data)  # a broken train.csv fails now, not after the recording
    return data, participant, sign, False


def _own_vocabulary(data: Path, sign_map: Path, vocabulary: str | None) -> bool:
    """Whether `data` collects signs of your own: a new folder asked to, or one whose map is not the competition's."""
    from kit.data.vocabulary import is_competition

    if not sign_map.is_file():
        return vocabulary == "own"
    competition = is_competition(read_sign_map(sign_map))
    if vocabulary == "own" and competition:
        raise KitError(f"{data}: holds the competition's 250-sign map: record your own vocabulary into a new folder")
    if vocabulary == "competition" and not competition:
        raise KitError(f"{sign_map}: is an own vocabulary, not the competition's 250 signs: record competition signs "
                       "into another folder")
    return not competition


def _sign_map(data: Path) -> Path:
    sign_map = data / SIGN_MAP_NAME
    if not sign_map.is_file() and (data / TRAIN_CSV).is_file():
        raise KitError(f"{data}: has {TRAIN_CSV} but no {SIGN_MAP_NAME}: --data must be a competition folder "
                       "(kit fetch, kit synth) or a new one")
    return sign_map


def _read_rows(data: Path) -> list:
    return read_train_csv(data / TRAIN_CSV) if (data / TRAIN_CSV).is_file() else []


def plan_take(data: str | os.PathLike, participant: int, sign: str, vocabulary: str | None = None) -> tuple:
    """Check that a recording of `sign` by `participant` may join the competition folder `data`, as `kit capture
    --data` checks it before MediaPipe starts; the plan that `add_to_dataset(*plan, frames, info)` writes (kit live
    records its takes so)."""
    return _plan_output(None, data, participant, sign, vocabulary)


def add_to_dataset(data: Path, participant: int, sign: str, own: bool, frames: np.ndarray,
                   info: dict) -> tuple[Path, dict, str]:
    """Write the file as DATA/train_landmark_files/P/S.parquet (S: one above the folder's largest sequence id),
    then append its train.csv row (creating the folder's train.csv and sign map if new). With `own` (an own
    vocabulary), a sign not yet in the folder's map joins it as the next output; the note says so."""
    from kit.data.vocabulary import write_map

    data.mkdir(parents=True, exist_ok=True)
    note = ""
    if own:
        signs = read_sign_map(data / SIGN_MAP_NAME) if (data / SIGN_MAP_NAME).is_file() else []
        if sign not in signs:
            write_map(data, [*signs, sign])  # appended: the signs already there keep their output index
            note = (f"new sign {sign!r} in {data / SIGN_MAP_NAME}: output {len(signs)} of your own vocabulary of "
                    f"{len(signs) + 1} signs")
    elif not (data / SIGN_MAP_NAME).is_file():
        shutil.copyfile(SIGN_MAP, data / SIGN_MAP_NAME)
    rows = _read_rows(data)
    sequence_id = max((r.sequence_id for r in rows), default=0) + 1
    relative = f"train_landmark_files/{participant}/{sequence_id}.parquet"
    path = data / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    write_landmarks(path, frames, info)  # the file first: a train.csv row never points at a missing file
    row = {"path": relative, "participant_id": participant, "sequence_id": sequence_id, "sign": sign}
    train_csv = data / TRAIN_CSV
    new = not train_csv.is_file()
    if not new and not train_csv.read_bytes().endswith(b"\n"):
        with open(train_csv, "ab") as f:
            f.write(b"\n")
    with open(train_csv, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRAIN_COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)
    return path, row, note


def write_landmarks(path: str | os.PathLike, frames: np.ndarray, info: dict | None = None) -> None:
    """`[T, 543, 3]` frames as a competition landmark file (frames 0..T-1), `info` in its metadata; atomic."""
    import pyarrow.parquet as pq

    from kit.data.synth import DICTIONARY, landmark_table  # the one writer of the competition's columns

    path = Path(path)
    table = landmark_table(0, np.asarray(frames, np.float64))
    if info is not None:
        table = table.replace_schema_metadata({METADATA_KEY: json.dumps(info).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, use_dictionary=DICTIONARY)
    os.replace(partial, path)


def capture_info(path: str | os.PathLike) -> dict | None:
    """The `kit.capture` metadata of a landmark file (None for a file kit capture did not write)."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else None
