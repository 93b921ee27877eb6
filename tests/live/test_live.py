"""`kit live` in a real browser: Debian's chromium driven by Playwright, with the capture tests' real video as its
camera (Chromium's --use-file-for-fake-video-capture), against `kit live` servers started as a user starts them.

One browser and two servers (the camera; `--video` with `--data`) are shared by the whole module; together they
take about 30 s on 2 cores. Where chromium or Playwright is missing the tests skip, saying so (under CI=true: fail).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kit.cli import app
from tests.environment import command

CLIP = Path(__file__).resolve().parents[1] / "capture" / "data" / "megamind60.avi"  # her right hand, in 50 of 60
MODEL = Path(__file__).resolve().parent / "data" / "sign_model.tflite"  # someone else's model (data/make_models.py)
NOT_A_SIGN_MODEL = MODEL.with_name("not_a_sign_model.tflite")
CHROMIUM = Path("/usr/bin/chromium")
GAP = 0.5  # s: the camera file's hand-less stretch (1.5 s of black) ends each pass of the clip as a sign
runner = CliRunner()


def required(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run kit live's browser tests: {what}")
    pytest.skip(what)


def camera_file(out: Path) -> Path:
    """The clip as a .y4m for Chromium's fake camera (which loops it), then 1.5 s of black: no hand, a sign ends."""
    import cv2

    capture = cv2.VideoCapture(str(CLIP))
    frames = []
    while (read := capture.read())[0]:
        frames.append(read[1])
    frames += [np.zeros_like(frames[0])] * 36
    height, width = frames[0].shape[:2]
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F24000:1001 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return out


class Server:
    """`kit live ARGS` started in a process of its own, as a user starts it; `url` waits for the address it prints."""

    def __init__(self, *args: str):
        # SIGINT at its default whatever this process inherited (tests/environment.py): the fixture stops it with
        # Ctrl-C, as a user does, also when the suite runs as a background job with SIGINT ignored
        self.process = subprocess.Popen(command("-m", "kit", "live", *args), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._url = None

    @property
    def url(self, timeout: float = 120) -> str:
        deadline, said = time.monotonic() + timeout, []
        while self._url is None and time.monotonic() < deadline:
            if select.select([self.process.stdout], [], [], 1)[0]:
                line = self.process.stdout.readline()
                said.append(line)
                if "http://127.0.0.1:" in line:
                    self._url = line[line.index("http://"):].split()[0]
                elif not line and self.process.poll() is not None:
                    break
        if self._url is None:
            raise AssertionError(f"kit live printed no address: {''.join(said)}")
        return self._url


@pytest.fixture(scope="module")
def extras():
    """The live and capture extras (Starlette, uvicorn, OpenCV, MediaPipe): found, not imported (MediaPipe imports
    TensorFlow; the servers import it in their own processes)."""
    import importlib.util

    missing = [name for name in ("starlette", "uvicorn", "websockets", "cv2", "mediapipe")
               if importlib.util.find_spec(name) is None]
    if missing:
        required(f"{', '.join(missing)} not installed: pip install -e \".[live,capture]\" and MediaPipe (README)")


@pytest.fixture(scope="module")
def servers(extras, tmp_path_factory):
    """Two `kit live` servers, started at once (they start while the browser does): the camera's, and a --video
    one recording into an own-vocabulary folder. Stopped with Ctrl-C, as a user stops them."""
    data = tmp_path_factory.mktemp("own") / "data"
    started = {"camera": Server(str(MODEL), "--gap", str(GAP)),
               "video": Server(str(MODEL), "--video", str(CLIP), "--gap", str(GAP), "--data", str(data),
                               "--vocabulary", "own")}
    yield {**started, "data": data}
    for server in started.values():
        server.process.send_signal(signal.SIGINT)
    for server in started.values():
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking"]


@pytest.fixture(scope="module")
def playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        required('Playwright for Python is not installed: pip install -e ".[test]"')
    if not CHROMIUM.is_file():
        required(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver (.ci/run does)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright, tmp_path_factory):
    """Chromium whose camera plays the clip (and then 1.5 s of black), allowed without asking."""
    y4m = camera_file(tmp_path_factory.mktemp("camera") / "camera.y4m")
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=BROWSER_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-video-capture={y4m}"])
    yield chromium
    chromium.close()


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 760})
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(url)
    return page


def wait_for(page, condition: str, timeout: float = 30) -> None:
    page.wait_for_function(condition, timeout=1000 * timeout)


COUNT_NEAR = """(() => { window.countNear = (hex) => {
  const c = document.getElementById("picture"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 40) n++;
  return n;
}; })()"""  # how many of the canvas' pixels are (nearly) a colour: the landmarks drawn in it


def test_the_camera_page_draws_landmarks_and_answers_each_sign_with_the_top_5(servers, browser):
    """The fake camera plays the real clip: the page draws MediaPipe's pose and her right hand over it in the
    overlay's colours, cuts a sign when her hand has been gone for the gap, and shows the model's 5 best signs with
    probabilities, its time and the transcript; every request stays on the kit's own server (no CDN)."""
    from kit.seeing.show import COLORS

    page = open_page(browser, servers["camera"].url)
    wait_for(page, "window.__kit.answers.length >= 1 && window.__kit.frames >= 10", 60)
    shown = page.evaluate("""() => ({kit: window.__kit, info: document.getElementById("answer-info").textContent,
      top: [...document.querySelectorAll("#top li")].map((li) => li.textContent),
      transcript: document.getElementById("transcript").textContent,
      rate: document.getElementById("rate").textContent})""")  # at one moment: more answers may come meanwhile
    assert shown["kit"]["problems"] == []
    answers = shown["kit"]["answers"]
    answer = answers[-1]  # the one on the page
    assert len(answer["top"]) == 5 and answer["frames"] >= 1 and answer["ms"] > 0
    assert sum(a["p"] for a in answer["top"]) <= 1.0 and answer["top"][0]["p"] >= answer["top"][4]["p"]
    assert [item.rsplit(" ", 1)[0] for item in shown["top"]] == [a["sign"] for a in answer["top"]]
    assert all(abs(float(item.rsplit(" ", 1)[1].rstrip("%")) - 100 * a["p"]) <= 0.051
               for item, a in zip(shown["top"], answer["top"]))  # with its probability, in percent
    assert shown["transcript"].split() == [a["top"][0]["sign"] for a in answers]
    assert f"sign {answer['number']}: " in shown["info"] and "model" in shown["info"]
    assert "landmark frames a second" in shown["rate"]
    page.evaluate(COUNT_NEAR)  # a picture with her pose and right hand drawn, in kit show --overlay's colours
    wait_for(page, f"countNear('{COLORS['pose']}') > 50 && countNear('{COLORS['right']}') > 20")
    assert all(url.startswith(servers["camera"].url.rstrip("/")) for url in page.requests), page.requests

    page.check("input[name=mode][value=key]")  # key mode: a sign is what is signed while the space bar is held
    wait_for(page, "document.getElementById('status').textContent === 'hold the space bar to sign'")
    wait_for(page, f"countNear('{COLORS['right']}') > 20")  # the clip, not its black tail (no pose: no sequence)
    answers, notes = page.evaluate("[window.__kit.answers.length, window.__kit.notes.length]")
    page.keyboard.down("Space")
    wait_for(page, "document.getElementById('status').textContent === 'signing...'")
    held = page.evaluate("window.__kit.frames")
    wait_for(page, f"window.__kit.frames >= {held + 3}")  # three pictures tracked while the key is held
    page.keyboard.up("Space")
    # its answer; or, were all its pictures from the clip's black tail (a busy machine), the note that it had no pose
    wait_for(page, f"window.__kit.answers.length > {answers} || window.__kit.notes.length > {notes}")
    if page.evaluate("window.__kit.answers.length") > answers:
        assert len(page.evaluate("window.__kit.answers.at(-1).top")) == 5
    else:
        assert "found no pose" in page.evaluate("window.__kit.notes.at(-1)")
    page.close()


def test_a_take_recorded_from_the_page_is_a_file_kit_prepare_accepts(servers, browser):
    """--video plays the clip through the same page (twice: "play the video again"); named takes of a signer land in
    the --data folder as kit capture --data writes them (own vocabulary: the map holds the signs recorded), counted
    on the page, and kit prepare caches them."""
    from kit.capture.holistic import capture_info
    from kit.data.prepare import read_train_csv

    page = open_page(browser, servers["video"].url)
    wait_for(page, "document.getElementById('model').textContent.includes('signs')")
    page.fill("#sign", "wave")
    page.fill("#participant", "7")
    page.click("#record")
    wait_for(page, "window.__kit.takes.length >= 1", 60)
    ended = "document.getElementById('status').textContent === 'the video ended'"
    wait_for(page, ended, 30)
    time.sleep(0.5)  # a take cut by the video's end is written after the end is shown
    first = page.evaluate("window.__kit.takes.length")
    page.click("#replay")  # the second pass records more takes of the same sign
    wait_for(page, f"window.__kit.takes.length > {first}", 30)
    wait_for(page, ended, 30)
    time.sleep(0.5)
    takes = page.evaluate("window.__kit.takes")
    take = takes[0]
    assert take["sign"] == "wave" and take["participant"] == 7 and take["counts"]["wave"] == 1
    assert page.locator("#counts tbody tr").all_inner_texts() == [f"wave\t{len(takes)}"]
    assert len(page.evaluate("window.__kit.answers[0].top")) == 5
    page.close()
    data = servers["data"]
    assert json.loads((data / "sign_to_prediction_index_map.json").read_text()) == {"wave": 0}
    rows = read_train_csv(data / "train.csv")
    assert len(rows) == len(takes) and {(r.participant_id, r.sign) for r in rows} == {(7, "wave")}
    assert Path(take["path"]) == data / rows[0].path
    info = capture_info(data / rows[0].path)
    assert info["kind"] == "video" and Path(info["source"]) == CLIP.resolve() and info["fps"] == 30
    assert info["source_frames"] == sorted(info["source_frames"]) and max(info["source_frames"]) < 60
    result = runner.invoke(app, ["prepare", "--data", str(data), "--cache", str(data.parent / "cache"),
                                 "--workers", "1"])
    assert result.exit_code == 0 and f"{len(takes)} sequences" in result.output, result.output


def test_no_camera_is_one_line_naming_what_to_do_instead(playwright, servers):
    """A browser with no camera at all: the page says so and names --video."""
    bare = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
    page = bare.new_page()
    page.goto(servers["camera"].url)
    wait_for(page, "window.__kit.problems.length > 0")
    text = page.inner_text("#problem")
    bare.close()
    assert text.startswith("no camera") and "kit live MODEL --video FILE" in text


def test_bad_input_gets_one_line(extras, monkeypatch):
    """A model that is not a sign model, a port in use, a video that is not one, a bad gap, no MediaPipe: each is
    one line, before any page opens."""
    model = MODEL
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cases = {
            (str(NOT_A_SIGN_MODEL),): "does not fit the competition contract: input 'inputs' should have shape",
            (str(model), "--port", str(port)): f"--port {port}: in use",
            (str(model), "--video", str(CLIP.with_name("messi5.jpg"))): "not a video file",
            (str(model), "--gap", "0"): "--gap 0.0: must be a positive number",
            (str(model), "--vocabulary", "own"): "--vocabulary goes with --data DIR",
        }
        for args, error in cases.items():
            result = runner.invoke(app, ["live", *args])
            assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
            assert result.output.startswith("Error: ") and error in result.output, result.output
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    result = runner.invoke(app, ["live", str(MODEL)])
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("Error: kit live needs MediaPipe 0.10.21, which is not installed: ")
    assert "pip install --no-deps mediapipe==0.10.21" in result.output
    monkeypatch.setitem(sys.modules, "starlette", None)
    result = runner.invoke(app, ["live", str(MODEL)])
    assert result.exit_code == 1 and 'pip install -e ".[live]"' in result.output, result.output


def test_only_pages_of_this_machine_may_use_the_server(servers):
    """The server listens on 127.0.0.1 only; a name that resolves there (DNS rebinding) is refused, and so is a
    WebSocket opened by another site's page in the same browser."""
    import urllib.error
    import urllib.request

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = servers["camera"].url
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url) as response:
        assert response.status == 200 and b"/static/live.js" in response.read()
    request = urllib.request.Request(url, headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError, match="400"):
        urllib.request.urlopen(request)
    with connect(url.replace("http", "ws") + "ws", origin=url.rstrip("/")) as ws:
        assert json.loads(ws.recv(timeout=60))["type"] == "hello"
    with pytest.raises(InvalidStatus, match="403"):
        connect(url.replace("http", "ws") + "ws", origin="http://attacker.example")
