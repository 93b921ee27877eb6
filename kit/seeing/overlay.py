"""`kit show --overlay`: MediaPipe's landmarks drawn over the pictures they came from, to see what it saw.

Given a video, a folder of images or an image, Holistic runs over every frame (no resampling, nothing dropped:
a frame where it found nobody is drawn bare). Given a capture (a .parquet written by `kit capture`), its own
landmarks are drawn over the source frames its metadata names; `--video` gives the source when it has moved,
or pairs any landmark file with a video frame by frame. Colours are `kit show`'s: face grey, lips brown, pose
green, the signer's left hand blue, right hand red (on an unmirrored picture the right hand is on the left).

GIFs are scaled to at most 480 pixels wide (a GIF of full-size video frames runs to tens of MB); MP4s keep the
video's size and need ffmpeg, as `kit show` does.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.data import landmarks as L
from kit.errors import KitError
from kit.progress import track
from kit.seeing.show import COLORS, POSE_POINTS, check_out, hands_in_view, save_gif

GIF_WIDTH = 480
DEFAULT_FPS = 15.0  # for pictures without a clock (a folder of images, a single image)
_LIPS = tuple(L.OFFSET["face"] + i for i in L.LIPS_FACE)
_HANDS = (("left", L.LEFT_HAND), ("right", L.RIGHT_HAND))
PIXELS_PER_RADIUS, MIN_RADIUS = 240, 2  # a hand's or the pose's dot: 1/240 of the picture's width, at least 2 px


def _bgr(hex_color: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return b, g, r


def draw(image: np.ndarray, points: np.ndarray, label: str = "") -> np.ndarray:
    """A copy of the BGR `image` with one frame's landmarks (`[543, >=2]`, normalised x, y; NaN: not drawn)."""
    from kit.capture.sources import opencv

    cv2 = opencv()
    out = image.copy()
    height, width = out.shape[:2]
    radius = max(MIN_RADIUS, round(width / PIXELS_PER_RADIUS))
    xy = np.asarray(points, np.float64)[:, :2] * (width, height)

    def pixel(i: int) -> tuple[int, int] | None:
        return (int(round(xy[i, 0])), int(round(xy[i, 1]))) if np.isfinite(xy[i]).all() else None

    def dots(indices, color, size) -> None:
        for i in indices:
            at = pixel(i)
            if at is not None:
                cv2.circle(out, at, size, color, -1, cv2.LINE_AA)

    def bones(offset, pairs, color) -> None:
        for a, b in pairs:
            start, end = pixel(offset + a), pixel(offset + b)
            if start is not None and end is not None:
                cv2.line(out, start, end, color, max(1, radius // 2 + 1), cv2.LINE_AA)

    dots(L.FACE, _bgr(COLORS["face"]), max(1, radius // 2))
    dots(_LIPS, _bgr(COLORS["lips"]), max(1, radius // 2))
    bones(L.OFFSET["pose"], L.POSE_BONES, _bgr(COLORS["pose"]))
    dots(POSE_POINTS, _bgr(COLORS["pose"]), radius)
    for name, idx in _HANDS:
        bones(idx[0], L.HAND_BONES, _bgr(COLORS[name]))
        dots(idx, _bgr(COLORS[name]), radius)
    if label:
        scale = max(0.4, width / 1200)
        (w, h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (0, 0), (w + 8, h + base + 8), (0, 0, 0), -1)
        cv2.putText(out, label, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def style() -> dict:
    """What `draw` draws, as plain data for a page that draws the same over live video (kit live's canvas):
    colours, points (543-frame indices), bones (pairs of indices), and the dot radius rule."""
    return {"colors": COLORS, "face": list(L.FACE), "lips": list(_LIPS), "pose": list(POSE_POINTS),
            "pose_bones": [[L.OFFSET["pose"] + a, L.OFFSET["pose"] + b] for a, b in L.POSE_BONES],
            "hands": {name: list(idx) for name, idx in _HANDS},
            "hand_bones": [list(pair) for pair in L.HAND_BONES],  # within a hand: 0 is its wrist
            "pixels_per_radius": PIXELS_PER_RADIUS, "min_radius": MIN_RADIUS}


@dataclass(frozen=True)
class OverlayResult:
    out: Path
    frames: int
    source: str
    note: str = ""

    def __str__(self) -> str:
        frames = f"{self.frames} frame{'' if self.frames == 1 else 's'}"
        return f"wrote {self.out}: {frames} of {self.source} with MediaPipe's landmarks" + (
            f"\nnote: {self.note}" if self.note else "")


def overlay(path: str | os.PathLike, out: str | os.PathLike | None = None, fps: float | None = None,
            video: str | os.PathLike | None = None) -> OverlayResult:
    """Draw the landmarks of `path` (a capture .parquet, or a video / image / folder to track now) over its
    pictures into `out` (.gif or .mp4; default `<stem>_overlay.gif` here)."""
    from kit.capture.sources import open_source

    path = Path(path)
    if fps is not None and fps <= 0:
        raise KitError(f"--fps {fps}: must be positive")
    out = Path(out) if out is not None else Path.cwd() / f"{path.stem}_overlay.gif"
    check_out(out, "kit show --overlay")
    if path.suffix.lower() == ".parquet":
        source, rows, source_frames, rate = _from_capture(path, video)
    else:
        if video is not None:
            raise KitError(f"--video pairs a landmark file (.parquet) with its video; {path} is tracked itself: "
                           "drop --video")
        from kit.capture.holistic import run_holistic

        tracked = run_holistic(open_source(path), fps=None)  # every frame as it is: what MediaPipe saw in each
        rows, source_frames, rate = tracked.landmarks, tracked.source_frames, tracked.fps
        source = open_source(path)  # read again to draw on: a video is read once per opening
    writer = _Writer(out, fps or rate or DEFAULT_FPS)
    try:
        drawn, note = _draw_all(source, rows, source_frames, path.name, writer)
    finally:
        writer.close()
    if not drawn:
        out.unlink(missing_ok=True)
        raise KitError(f"{source.name}: none of its frames matches a frame of {path}: give the right --video")
    return OverlayResult(out, drawn, source.name, note)


def _from_capture(path: Path, video):
    """A landmark file's frames, the source to draw on, the source frame of each row and the capture's rate."""
    from kit.capture.holistic import capture_info
    from kit.data.parquet import read_landmarks
    from kit.capture.sources import open_source

    rows = read_landmarks(path)
    info = capture_info(path)
    if video is not None:
        source = open_source(video)
        same = info is not None and Path(info["source"]).resolve() == Path(video).resolve()
        frames = info["source_frames"] if same else range(len(rows))  # another video: frame by frame
        return source, rows, np.asarray(frames), (info or {}).get("fps") if same else source.fps
    if info is None:
        raise KitError(f"{path}: not written by kit capture, so it names no video: give the video it came from "
                       "with --video FILE (its frames are paired in order)")
    if info.get("kind") == "webcam":
        raise KitError(f"{path}: recorded from {info['source']}, whose pictures were not kept: record a video "
                       "file, capture that, and overlay the video")
    if not Path(info["source"]).exists():
        raise KitError(f"{path}: its source {info['source']} is not there any more: give it with --video FILE")
    return open_source(info["source"]), rows, np.asarray(info["source_frames"]), info.get("fps")


def _draw_all(source, rows: np.ndarray, source_frames: np.ndarray, name: str, writer) -> tuple[int, str]:
    """Every row drawn over its source frame, reading the source once (rows' source frames never go back)."""
    by_frame: dict[int, list[int]] = {}
    for row, frame in enumerate(source_frames.tolist()):
        by_frame.setdefault(int(frame), []).append(row)
    last = max(by_frame, default=-1)
    needed = itertools.takewhile(lambda frame: frame.index <= last, source.frames())  # not the rest of a video
    drawn = 0
    for frame in track(needed, f"drawing {name}", total=min(source.total or last + 1, last + 1)):
        for row in by_frame.get(frame.index, ()):
            writer.add(draw(frame.image, rows[row], f"frame {row + 1}/{len(rows)}  hands: {hands_in_view(rows[row])}"))
            drawn += 1
    missing = len(rows) - drawn
    note = f"{missing} landmark frames had no source frame (the video is shorter) and were left out" if missing else ""
    return drawn, note


class _Writer:
    """Drawn BGR frames into a GIF (kept small, written at the end) or an MP4 (streamed to ffmpeg)."""

    def __init__(self, out: Path, fps: float):
        self.out, self.fps, self.size, self.gif, self.ffmpeg = out, fps, None, [], None
        out.parent.mkdir(parents=True, exist_ok=True)

    def add(self, image: np.ndarray) -> None:
        from kit.capture.sources import opencv

        if self.size is None:
            height, width = image.shape[:2]
            if self.out.suffix.lower() == ".gif" and width > GIF_WIDTH:
                height, width = round(height * GIF_WIDTH / width), GIF_WIDTH
            self.size = (width, height)
            if self.out.suffix.lower() == ".mp4":
                self.ffmpeg = _ffmpeg(self.out, self.size, self.fps)
        if image.shape[1::-1] != self.size:  # GIFs are scaled down; a folder may hold several sizes
            cv2 = opencv()
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if self.ffmpeg is not None:
            self.ffmpeg.stdin.write(np.ascontiguousarray(image).tobytes())
        else:
            from PIL import Image

            picture = Image.fromarray(np.ascontiguousarray(image[..., ::-1]))  # BGR -> RGB
            self.gif.append(picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=128))  # photos need >64

    def close(self) -> None:
        if self.ffmpeg is not None:
            self.ffmpeg.stdin.close()
            error = self.ffmpeg.stderr.read().decode("utf-8", "replace").strip()
            if self.ffmpeg.wait() != 0:
                raise KitError(f"{self.out}: ffmpeg failed ({error.splitlines()[0] if error else 'no message'}): "
                               f"write a GIF with --out {self.out.with_suffix('.gif').name}")
        elif self.gif:
            save_gif(self.gif, self.out, self.fps)


def _ffmpeg(out: Path, size: tuple[int, int], fps: float) -> subprocess.Popen:
    import matplotlib

    command = [matplotlib.rcParams["animation.ffmpeg_path"], "-loglevel", "error", "-y", "-f", "rawvideo",
               "-pix_fmt", "bgr24", "-s", f"{size[0]}x{size[1]}", "-r", f"{fps:g}", "-i", "-",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", str(out)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
