"""Where `kit capture` gets its pictures: a video file, a folder of images, one image or a webcam, as BGR frames.

OpenCV (the `capture` extra) is imported inside the functions, so that the kit works without it. A video's frame
times come from its frame rate (frame i at i / fps), a webcam's from the clock (cameras drop frames and vary their
rate with the light); images have none. Frames come as OpenCV gives them, unmirrored: the competition's
recordings were not mirrored either (the right shoulder is on the image's left in every sample), so MediaPipe's
left and right hands mean the signer's left and right, as in the competition's files.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.errors import KitError

MEDIAPIPE_VERSION = "0.10.21"  # the newest release with the legacy Holistic solution and its models in the wheel
# MediaPipe's metadata asks for protobuf<5, which TensorFlow 2.21 refuses: hence the second, --no-deps step.
INSTALL = f'pip install -e ".[capture]" && pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}'
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
WHAT = "give a video file (.mp4, .mov, .avi, .webm ...), an image, a folder of images, or --webcam N"


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, from 0
    time: float | None  # seconds since the first frame; None for images, which have no clock
    image: np.ndarray  # BGR uint8 [height, width, 3], as OpenCV reads it


@dataclass(frozen=True)
class Source:
    """An opened source; `frames()` reads it once, from the start."""

    name: str  # how messages name it: the path, or "webcam 0"
    kind: str  # "video", "images", "image" or "webcam"
    fps: float | None  # the source's frame rate (None for images)
    total: int | None  # frames it holds as far as known (None for a webcam)
    frames: Callable[[], Iterator[Frame]]
    path: Path | None = None  # None for a webcam

    @property
    def live(self) -> bool:
        """A webcam: Ctrl-C ends the recording (and keeps it) instead of aborting."""
        return self.kind == "webcam"


def opencv():
    """The cv2 module, or a KitError naming the install command."""
    try:
        import cv2
    except ImportError:
        raise KitError(f"kit capture needs OpenCV and MediaPipe, which are not installed: {INSTALL} "
                       "(README, \"Your own signing\")") from None
    return cv2


def open_source(path: str | os.PathLike) -> Source:
    """A video file, a folder of images (the frames of one recording, in name order) or one image."""
    path = Path(path)
    if path.is_dir():
        return _folder(path)
    if not path.is_file():
        raise KitError(f"{path}: no such file or folder: {WHAT}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(path)
        return Source(str(path), "image", None, 1, lambda: iter([Frame(0, None, image)]), path)
    return _video(path)


def read_image(path: Path) -> np.ndarray:
    cv2 = opencv()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise KitError(f"{path}: not an image OpenCV can read (damaged, or not really {path.suffix or 'an image'}): "
                       "export it again as .jpg or .png, or leave it out")
    return image


def _folder(path: Path) -> Source:
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise KitError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder: give a folder holding the "
                       "frames of one recording, a video file or an image")
    read_image(images[0])  # an unreadable first image fails before MediaPipe starts

    def frames() -> Iterator[Frame]:
        for i, image in enumerate(images):
            yield Frame(i, None, read_image(image))

    return Source(str(path), "images", None, len(images), frames, path)


def _video(path: Path) -> Source:
    cv2 = opencv()
    with opencv_says() as said:
        capture = cv2.VideoCapture(str(path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        reason = f" (OpenCV says: {said[0]})" if said else ""
        raise KitError(f"{path}: not a video OpenCV can read{reason}: {WHAT}")
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not (np.isfinite(fps) and 0 < fps < 1000):
        capture.release()
        raise KitError(f"{path}: the video states no usable frame rate ({fps}): re-encode it, e.g. "
                       f"ffmpeg -i {path.name} -r 30 {path.stem}_30fps.mp4")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames() -> Iterator[Frame]:
        try:
            image, i = first, 0
            while image is not None:
                yield Frame(i, i / fps, image)
                ok, image = capture.read()
                image, i = (image if ok else None), i + 1
        finally:
            capture.release()

    return Source(str(path), "video", float(fps), count if count > 0 else None, frames, path)


def open_webcam(index: int, seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> Source:
    """Camera `index` (0: the first), until `seconds` have passed on `clock` (or Ctrl-C, or the camera stops)."""
    cv2 = opencv()
    if seconds is not None and seconds <= 0:
        raise KitError(f"--seconds {seconds}: must be positive")
    with opencv_says():
        camera = cv2.VideoCapture(index)
    if not camera.isOpened():
        raise KitError(f"webcam {index}: cannot be opened (no such camera, or another program holds it): check "
                       "--webcam N (0 is the first camera), or record a video and give its file")
    return camera_source(camera, f"webcam {index}", seconds, clock)


def camera_source(camera, name: str, seconds: float | None, clock: Callable[[], float]) -> Source:
    """Frames of an opened cv2.VideoCapture, stamped by `clock` as they arrive."""
    cv2 = opencv()
    fps = camera.get(cv2.CAP_PROP_FPS)

    def frames() -> Iterator[Frame]:
        start, i = None, 0
        try:
            while True:
                ok, image = camera.read()
                now = clock()
                start = now if start is None else start
                if not ok or (seconds is not None and now - start > seconds):
                    if not ok and i == 0:
                        raise KitError(f"{name}: opened, but gave no picture: check that no other program uses it")
                    return
                yield Frame(i, now - start, image)
                i += 1
        finally:
            camera.release()

    return Source(name, "webcam", float(fps) if fps and fps > 0 else None, None, frames)


_AV_PREFIX = re.compile(r"^\[[^]]*\]\s*")  # "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5653ac0e5180] " or "[ WARN:0@0.011] "


@contextlib.contextmanager
def opencv_says() -> Iterator[list[str]]:
    """Keep what OpenCV and FFmpeg print to fd 2 while a file or camera opens ("moov atom not found", "can't
    open camera by index") off the terminal; the lines, without their prefix, are left in the yielded list so
    that a failure can quote the first."""
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            lines.extend(_AV_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip())
