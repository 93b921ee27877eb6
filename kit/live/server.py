"""The web side of `kit live`: a Starlette app on 127.0.0.1 serving the page (kit/live/static: plain HTML, CSS and
JavaScript, nothing from a CDN) and one WebSocket per open page.

Over the WebSocket the page sends camera pictures as JPEG (binary: a 4-byte length, a JSON header {id, t, key},
the JPEG) and its controls as JSON; the server answers each tracked picture with its landmarks (and, playing
`--video`, the picture itself), each sign with the model's top 5, each take with the folder's counts.

Keeping up: the page sends a picture only while fewer than two are unanswered, and the server tracks only the
newest picture waiting (an older one still waiting is dropped, and counted), so a slow machine answers fewer frames
a second instead of falling behind; the page shows the rate it gets. A `--video` plays on the video's own clock
the same way: frames that come due while MediaPipe is busy are skipped, as a camera's would be.

Why Starlette and uvicorn rather than Gradio: the page needs one duplex stream of pictures and landmarks with
dropping under load, and a page that draws on a canvas; Starlette gives exactly a WebSocket and static files
(uvicorn runs it), in two small packages, where Gradio would bring a large front end of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kit.errors import KitError
from kit.live.cutting import GAP

STATIC = Path(__file__).resolve().parent / "static"
INSTALL = 'pip install -e ".[live]"'
LOCAL_HOSTS = ["127.0.0.1", "localhost"]
VIDEO_WIDTH = 640  # pictures of a --video sent to the page for display are scaled down to this width


@dataclass
class Settings:
    model: object  # kit.contract.predict.Model
    gap: float = GAP
    mode: str = "hands"
    video: Path | None = None
    data: Path | None = None
    vocabulary: str | None = None


class Latest:
    """The newest picture waiting to be tracked: putting one while another waits drops the older (counted)."""

    def __init__(self):
        self.item, self.dropped, self.event = None, 0, asyncio.Event()

    def put(self, item) -> None:
        if self.item is not None and self.item[0] == "frame":
            self.dropped += 1
        self.item = item
        self.event.set()

    async def take(self):
        while self.item is None:  # (a replayed video clears what waits)
            self.event.clear()
            await self.event.wait()
        item, self.item = self.item, None
        return item


def web():
    """Starlette and uvicorn (the live extra), or a KitError naming the install command."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise KitError(f"kit live needs Starlette and uvicorn, which are not installed: {INSTALL}") from None
    try:
        import websockets  # noqa: F401
    except ImportError:
        try:
            import wsproto  # noqa: F401
        except ImportError:
            raise KitError(f"kit live needs a WebSocket library for uvicorn (websockets): {INSTALL}") from None
    return uvicorn


def make_app(settings: Settings):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles

    async def index(request):
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def websocket(ws):
        await Page(settings, ws).run()

    async def no_icon(request):
        return Response(status_code=204)

    routes = [Route("/", index), Route("/favicon.ico", no_icon), Mount("/static", StaticFiles(directory=STATIC)),
              WebSocketRoute("/ws", websocket)]
    # only this machine's names: a web site whose name resolves to 127.0.0.1 (DNS rebinding) is refused
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_HOSTS)])


_predicting = ThreadPoolExecutor(1, thread_name_prefix="kit-live-model")  # one model, one sign at a time


class Page:
    """One open page: its Session (in a thread of its own), the newest picture waiting, and the tasks that
    receive, track and answer."""

    def __init__(self, settings: Settings, ws):
        self.settings, self.ws = settings, ws
        self.latest = Latest()
        self.tracking = ThreadPoolExecutor(1, thread_name_prefix="kit-live-holistic")
        self.key = False  # the key as the page last said (the video's frames take it; the camera's carry their own)
        self.release_after = False  # the key was let go while a frame sent with it held was still to be tracked
        self.busy = False  # a frame is being tracked
        self.player: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        from starlette.websockets import WebSocketDisconnect

        if not self._same_origin():
            await self.ws.close(code=1008)  # another site's page in the same browser may not use the camera's data
            return
        await self.ws.accept()
        loop = asyncio.get_running_loop()
        try:
            self.session = await loop.run_in_executor(self.tracking, self._session)
        except KitError as err:  # MediaPipe would not start: said on the page, in one line
            await self.ws.send_json({"type": "error", "text": str(err)})
            await self.ws.close()
            return
        await self.ws.send_json(self._hello())
        worker = asyncio.create_task(self._work())
        if self.settings.video is not None:
            self.player = asyncio.create_task(self._play())
        try:
            await self._receive()
        except WebSocketDisconnect:
            pass
        finally:
            for task in [worker, self.player, *self.tasks]:
                if task is not None:
                    task.cancel()
            await loop.run_in_executor(self.tracking, self.session.close)
            self.tracking.shutdown(wait=False)

    def _same_origin(self) -> bool:
        origin = self.ws.headers.get("origin")
        host = self.ws.headers.get("host", "")
        return origin is None or origin in (f"http://{host}",)

    def _session(self):
        from kit.live.session import Recorder, Session

        s = self.settings
        recorder = Recorder(s.data, s.vocabulary) if s.data is not None else None
        source, kind = (str(s.video.resolve()), "video") if s.video is not None else ("kit live camera", "webcam")
        return Session(s.model, source, kind, s.gap, s.mode, recorder)

    def _hello(self) -> dict:
        from kit.data.vocabulary import describe
        from kit.seeing.overlay import style

        s, recorder = self.settings, self.session.recorder
        return {"type": "hello", "model": str(s.model.path), "signs": describe(s.model.names), "style": style(),
                "gap": s.gap, "mode": s.mode, "video": s.video.name if s.video is not None else None,
                "record": None if recorder is None else {"data": str(recorder.data), "counts": recorder.counts(),
                                                         "vocabulary": recorder.vocabulary}}

    async def _receive(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes"):
                data = message["bytes"]
                (length,) = struct.unpack("<I", data[:4])
                header = json.loads(data[4:4 + length])
                self.latest.put(("frame", int(header["id"]), float(header["t"]), bool(header.get("key")),
                                 data[4 + length:], int(header["id"])))
            elif message.get("text"):
                await self._control(json.loads(message["text"]))

    async def _control(self, message: dict) -> None:
        kind = message.get("type")
        try:
            if kind == "key":
                # let go: the sign ends with the frames sent while the key was held; one still waiting or being
                # tracked is part of it, so the release waits for it (else it would start a sign of its own)
                self.key = bool(message.get("down"))
                self.release_after = not self.key
                if self.release_after and not self.busy and self.latest.item is None:
                    self.release_after = False
                    self._answer(self.session.release())
            elif kind == "settings":
                self.session.restart(float(message.get("gap", self.session.gap)),
                                     message.get("mode", self.session.mode))
                await self.ws.send_json({"type": "settings", "gap": self.session.gap, "mode": self.session.mode})
            elif kind == "record":
                if self.session.recorder is None:
                    raise KitError("start kit live with --data DIR to record takes into a competition folder")
                self.session.recorder.arm(message.get("sign"), message.get("participant"),
                                          bool(message.get("armed")))
                r = self.session.recorder
                await self.ws.send_json({"type": "record", "armed": r.armed, "sign": r.sign,
                                         "participant": r.participant, "counts": r.counts()})
            elif kind == "play" and self.settings.video is not None:
                if self.player is not None:
                    self.player.cancel()
                self.latest.item = None  # a frame of the last pass still waiting: its clock would run backwards
                self.session.restart()
                self.player = asyncio.create_task(self._play())
        except (KitError, ValueError, TypeError) as err:  # a refused sign, a gap that is not a number
            await self.ws.send_json({"type": "error", "text": str(err)})

    async def _play(self) -> None:
        """The video on its own clock: each frame is put when due; one the tracker had no time for is dropped."""
        from kit.capture.sources import open_source

        loop = asyncio.get_running_loop()
        reading = ThreadPoolExecutor(1, thread_name_prefix="kit-live-video")
        try:
            frames = (await loop.run_in_executor(reading, open_source, self.settings.video)).frames()
            start = loop.time()
            while (frame := await loop.run_in_executor(reading, next, frames, None)) is not None:
                delay = start + frame.time - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.latest.put(("frame", frame.index, frame.time, self.key, frame.image, frame.index))
            self.latest.put(("end",))
        finally:
            reading.shutdown(wait=False)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.latest.take()
            if item[0] == "end":
                self._answer(self.session.finish())
                await self.ws.send_json({"type": "ended"})
                continue
            _, frame_id, t, key, picture, source_frame = item
            self.busy = True
            try:
                points, ms = await loop.run_in_executor(self.tracking, self.session.track, picture)
            except KitError as err:
                await self.ws.send_json({"type": "error", "text": str(err), "id": frame_id})
                continue
            finally:
                self.busy = False
            signs = self.session.add(t, points, source_frame, key)
            if not key:
                self.release_after = False  # a frame without the key ended the sign itself
            elif self.release_after and self.latest.item is None:
                self.release_after = False
                signs += self.session.release()
            message = {"type": "frame", "id": frame_id, "t": t, "ms": round(ms, 1), "dropped": self.latest.dropped,
                       "signing": self.session.signing, "points": _xy(points)}
            if not isinstance(picture, (bytes, bytearray)):
                message["image"] = await loop.run_in_executor(self.tracking, _jpeg, picture)
            await self.ws.send_json(message)
            self._answer(signs, frame_id)

    def _answer(self, signs, closed_by: int | None = None) -> None:
        """Answer each sign in the model's thread; `closed_by`: the frame whose arrival ended it (the page times
        the answer from when it sent that frame)."""
        for sign in signs:
            task = asyncio.create_task(self._send_answer(sign, closed_by))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send_answer(self, sign, closed_by: int | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            messages = await loop.run_in_executor(_predicting, self.session.answer, sign)
        except KitError as err:
            messages = [{"type": "error", "text": str(err)}]
        if messages[0]["type"] == "sign":
            messages[0]["closed_by"] = closed_by
        for message in messages:
            await self.ws.send_json(message)


def _xy(points: np.ndarray) -> list:
    """x, y of each of the 543 points, rounded (a pixel of a 4K picture), None where MediaPipe found nothing."""
    xy = np.round(points[:, :2], 4)
    finite = np.isfinite(xy).all(axis=1)
    return [[float(x), float(y)] if ok else None for (x, y), ok in zip(xy.tolist(), finite.tolist())]


def _jpeg(image: np.ndarray) -> str:
    from kit.capture.sources import opencv

    cv2 = opencv()
    height, width = image.shape[:2]
    if width > VIDEO_WIDTH:
        image = cv2.resize(image, (VIDEO_WIDTH, round(height * VIDEO_WIDTH / width)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode()


def bind(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1 (only this machine can reach it): `port`, or a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port or 0))
    except OSError as err:
        sock.close()
        raise KitError(f"--port {port}: in use or not allowed ({err.strerror}): give another --port, or none for a "
                       "free one") from None
    sock.listen(16)
    return sock


def serve(settings: Settings, sock: socket.socket, ready=print) -> None:
    """Serve the page on the listening `sock` until Ctrl-C; `ready(url)` once it listens."""
    from kit import quiet

    uvicorn = web()
    ready(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    try:
        # MediaPipe's graphs log to fd 2 as each page's tracker starts and meets new input: kept off the terminal
        # (kit capture does the same); uvicorn's own lines still reach it, as its logging is set up inside
        with quiet.native_logs():
            config = uvicorn.Config(make_app(settings), log_level="warning", lifespan="off")
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _import_mediapipe_alone() -> None:
    """Import MediaPipe without TensorFlow, which it imports only for its API docs and does without when it is
    missing (mediapipe/tasks/python/core/optional_dependencies.py: "TensorFlow isn't a dependency of mediapipe pip
    package"): the server starts in ~3 s instead of ~10 s on 2 cores, and a page's frames never need TensorFlow."""
    import sys

    if "tensorflow" in sys.modules or "mediapipe" in sys.modules:
        return
    sys.modules["tensorflow"] = None  # import tensorflow -> ModuleNotFoundError, which MediaPipe expects
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        pass  # kit.capture.holistic.mediapipe() says what to install
    finally:
        if sys.modules.get("tensorflow", 0) is None:
            del sys.modules["tensorflow"]


def live(model: str | Path, video: str | Path | None = None, port: int | None = None, gap: float = GAP,
         mode: str = "hands", data: str | Path | None = None, vocabulary: str | None = None, ready=print) -> None:
    """`kit live`: check everything that can fail before the page opens (the options, the video, the web
    packages, the model, the port, MediaPipe: quick checks first), then serve until Ctrl-C."""
    from kit.capture.holistic import VOCABULARIES, mediapipe
    from kit.capture.sources import open_source
    from kit.contract.predict import load
    from kit.live.cutting import check

    check(gap, mode)
    if vocabulary is not None and vocabulary not in VOCABULARIES:
        raise KitError(f"--vocabulary {vocabulary}: use competition (the 250 signs) or own (the signs you record)")
    if vocabulary is not None and data is None:
        raise KitError("--vocabulary goes with --data DIR, the folder the page records takes into")
    if video is not None:
        video = Path(video)
        if open_source(video).kind != "video":
            raise KitError(f"--video {video}: not a video file: give a recording (.mp4, .mov, .avi, .webm ...)")
    web()
    settings = Settings(load(model), gap, mode, video, Path(data) if data is not None else None, vocabulary)
    sock = bind(port)
    try:
        _import_mediapipe_alone()
        mediapipe()
    except KitError as err:
        sock.close()
        raise KitError(str(err).replace("kit capture needs", "kit live needs", 1)) from None
    serve(settings, sock, ready)
