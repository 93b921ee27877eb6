"""`kit capture`, `kit predict` and `kit show --overlay` on real pictures: a photo and a video clip from OpenCV's
sample data (tests/capture/data/PROVENANCE.md), tracked by the real MediaPipe Holistic.

MediaPipe runs once per source in module fixtures; the rest reads what they wrote.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kit.data import landmarks as L
from kit.cli import app
from kit.errors import KitError

DATA = Path(__file__).resolve().parent / "data"
PHOTO = DATA / "messi5.jpg"  # a footballer: face, both hands, pose
CLIP = DATA / "megamind60.avi"  # 60 frames at 23.976 fps: a CGI character, face and pose, her right hand
runner = CliRunner()


@pytest.fixture(scope="session")
def mediapipe_ready():
    """OpenCV and MediaPipe Holistic (the capture extra); under CI=true their absence fails instead of skipping."""
    try:
        import cv2  # noqa: F401

        from kit.capture.holistic import mediapipe

        mediapipe()
    except (ImportError, KitError) as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the capture tests: {err}")
        pytest.skip(f"the capture extra is not installed ({err})")


@pytest.fixture(scope="module")
def photo(mediapipe_ready, tmp_path_factory):
    from kit.capture.holistic import capture
    from kit.capture.sources import open_source

    return capture(open_source(PHOTO), out=tmp_path_factory.mktemp("photo") / "photo.parquet")


@pytest.fixture(scope="module")
def clip(mediapipe_ready, tmp_path_factory):
    from kit.capture.holistic import capture
    from kit.capture.sources import open_source

    return capture(open_source(CLIP), out=tmp_path_factory.mktemp("clip") / "clip.parquet")


def part(frames: np.ndarray, name: str) -> np.ndarray:
    count = dict(L.TYPES)[name]
    return frames[:, L.OFFSET[name]:L.OFFSET[name] + count]


def finite_points(frames: np.ndarray, name: str) -> np.ndarray:
    """Per frame, how many points of the part have finite x, y and z."""
    return np.isfinite(part(frames, name)).all(axis=-1).sum(axis=-1)


def test_resampling_holds_the_latest_frame_at_each_output_time():
    """Sample-and-hold to 30 fps: the same rate keeps every frame once, 60 fps keeps every other one, 24 fps shows
    every fourth frame twice (a second stays a second), and no clock (images) means every frame once."""
    from kit.capture.holistic import steps_per_frame

    assert steps_per_frame([i / 30 for i in range(90)], 30) == [1] * 90
    assert steps_per_frame([i / 60 for i in range(60)], 30) == [1, 0] * 29 + [1, 1]
    slow = steps_per_frame([i / 24 for i in range(24)], 30)
    assert sum(slow) == 30 and min(slow) == 1 and max(slow) == 2 and slow[:8] == [2, 1, 1, 1] * 2
    assert steps_per_frame([None] * 4, 30) == [1] * 4 and steps_per_frame([0.0, 0.5], None) == [1, 1]
    # a webcam's jittery clock: each output time k/30 shows the last frame stamped at or before it
    times = [0.0, 0.031, 0.070, 0.099, 0.135, 0.166]
    steps = steps_per_frame(times, 30)
    shown = [i for i, n in enumerate(steps) for _ in range(n)]
    for k, i in enumerate(shown[:-1]):
        assert times[i] <= k / 30 + 1e-6 and (i + 1 == len(times) or times[i + 1] > k / 30)


def test_a_frame_with_a_pose_but_no_face_is_kept_as_the_competition_files_keep_it():
    """Real competition files hold frames whose 468 face points are all NaN (three of the shared real samples do):
    capture keeps such a frame with a NaN face, and drops only frames without a pose (never missing in the real
    files). Holistic's output is built by hand here: no real clip of ours loses the face."""
    from kit.capture.holistic import Tracked, competition_frames
    from kit.capture.sources import Source

    landmarks = np.random.default_rng(0).uniform(0.2, 0.8, (4, L.N_LANDMARKS, 3))
    landmarks[1, :468] = np.nan  # no face: kept
    landmarks[2, L.OFFSET["pose"]:L.OFFSET["pose"] + 33] = np.nan  # no pose: dropped
    landmarks[3, list(L.LEFT_HAND)] = np.nan
    source = Source("clip.mp4", "video", 30.0, 4, lambda: iter(()))
    frames, shown = competition_frames(Tracked(source, landmarks, np.arange(4), 30.0, 4, 4, 0.1))
    assert shown.tolist() == [0, 1, 3]
    assert np.isnan(frames[1, :468]).all() and np.isfinite(frames[1, 468:]).all()


def test_own_vocabulary_folders_grow_their_map_one_new_sign_at_a_time(tmp_path):
    """--vocabulary own: a new folder's map holds only the signs recorded into it, each new one appended (the signs
    already there keep their output index); a competition folder refuses to become one, and an own folder refuses
    --vocabulary competition. A folder of the competition's map still takes only its 250 signs."""
    from kit.capture.holistic import _plan_output, add_to_dataset
    from kit.data.prepare import read_sign_map

    frames = np.random.default_rng(0).uniform(0.2, 0.8, (3, L.N_LANDMARKS, 3))
    own = tmp_path / "own"
    for sign, expected in (("wave", ["wave"]), ("my-name", ["wave", "my-name"]), ("wave", ["wave", "my-name"])):
        plan = _plan_output(None, own, 1, sign, "own" if sign == "wave" else None)
        path, row, note = add_to_dataset(*plan, frames, {})
        assert read_sign_map(own / L.SIGN_MAP_NAME) == expected and row["sign"] == sign and path.is_file()
        assert ("new sign" in note) == (sign == "my-name" or len(expected) == 1 and row["sequence_id"] == 1)
    with pytest.raises(KitError, match="is an own vocabulary, not the competition's 250 signs"):
        _plan_output(None, own, 1, "wave", "competition")
    competition = tmp_path / "competition"
    add_to_dataset(*_plan_output(None, competition, 1, "cloud", None), frames, {})
    assert len(read_sign_map(competition / L.SIGN_MAP_NAME)) == 250
    with pytest.raises(KitError, match="record them into a new folder with --vocabulary own"):
        _plan_output(None, competition, 1, "wave", None)
    with pytest.raises(KitError, match="holds the competition's 250-sign map: record your own vocabulary"):
        _plan_output(None, competition, 1, "wave", "own")


def test_photo_gives_every_point_of_face_hands_and_pose_as_the_signer_sees_left_and_right(photo):
    """One photo, one frame: 468 face, 21 + 21 hand and 33 pose points; the red (right) hand is the player's
    right, on the picture's left, beside the pose's right wrist: unmirrored, as in the competition's files."""
    from kit.data.parquet import read_landmarks

    assert photo.frames == 1 and photo.dropped == 0
    frames = read_landmarks(photo.out)
    assert {name: int(finite_points(frames, name)[0]) for name, _ in L.TYPES} == {
        "face": 468, "left_hand": 21, "pose": 33, "right_hand": 21}
    right_wrist, left_wrist = frames[0, L.RIGHT_HAND[0], :2], frames[0, L.LEFT_HAND[0], :2]
    pose = frames[0, L.OFFSET["pose"]:]
    assert right_wrist[0] < 0.5 < left_wrist[0]
    assert np.linalg.norm(right_wrist - pose[L.POSE_RIGHT_WRIST, :2]) < 0.1
    assert np.linalg.norm(left_wrist - pose[L.POSE_LEFT_WRIST, :2]) < 0.1


def test_video_is_resampled_to_30_fps_keeping_only_frames_with_a_pose(clip):
    """60 frames at 23.976 fps are 2.5 s: 75 frames at 30 fps, less those without a pose (the first frame
    of the clip is a cut); the character's right hand is tracked in most frames, her left hand is out of the
    picture; a part is found whole or not at all."""
    from kit.data.parquet import read_landmarks

    frames = read_landmarks(clip.out)
    assert clip.read == 60 and clip.fps == 30 and len(frames) == clip.frames == 75 - clip.dropped
    assert 1 <= clip.dropped <= 3
    counts = {name: finite_points(frames, name) for name, _ in L.TYPES}
    for name, count in L.TYPES:
        assert set(counts[name].tolist()) <= {0, count}, f"{name}: partly found in some frame"
    assert (counts["pose"] == 33).all() and (counts["face"] == 468).sum() >= 0.9 * clip.frames
    assert clip.found == {name: int((counts[name] > 0).sum()) for name, _ in L.TYPES}
    assert clip.found["right_hand"] >= 0.75 * clip.frames and clip.found["left_hand"] <= 3
    assert 0 < clip.ms_per_frame < 1000


def test_capture_schema_is_the_real_files_schema(clip, real_samples):
    """Column names, order and types equal a real competition file's; 543 rows a frame in the competition's order,
    frames numbered 0, 1, 2 ... without gaps, row_id "<frame>-<type>-<index>", missing hands stored as nulls."""
    real = pq.read_schema(next((real_samples / "train_landmark_files").glob("*/*.parquet")))
    ours = pq.read_schema(clip.out)
    assert [(f.name, f.type) for f in ours] == [(f.name, f.type) for f in real]
    table = pq.read_table(clip.out).to_pandas()
    assert len(table) == clip.frames * L.N_LANDMARKS
    assert table["frame"].tolist() == np.repeat(np.arange(clip.frames), L.N_LANDMARKS).tolist()
    assert table["type"].tolist() == L.type_column() * clip.frames
    assert table["landmark_index"].tolist() == L.landmark_index_column() * clip.frames
    assert table["row_id"].iloc[:L.N_LANDMARKS].tolist() == L.row_ids(0)
    assert table["row_id"].iloc[-1] == f"{clip.frames - 1}-right_hand-20"
    nulls = pq.read_table(clip.out, columns=["x"]).column("x").null_count  # NaN stored as null, as in Kaggle's
    assert nulls == 21 * (clip.frames - clip.found["right_hand"]) + 21 * (clip.frames - clip.found["left_hand"])


def test_captures_join_a_competition_folder_and_pass_kit_prepare(mediapipe_ready, clip, tmp_path):
    """--data --participant --sign adds the file and its train.csv row (new ids, the folder's sign map), and
    kit prepare caches the recordings unchanged; kit show titles them with their sign."""
    from kit.data.cache import open_cache
    from kit.capture.holistic import add_to_dataset, capture_info
    from kit.data.parquet import read_landmarks

    data = tmp_path / "mine"
    result = runner.invoke(app, ["capture", str(PHOTO), "--data", str(data), "--participant", "90001",
                                 "--sign", "cloud"])
    assert result.exit_code == 0, result.output
    assert "added to" in result.stdout and "participant 90001, sequence 1, sign cloud" in result.stdout
    add_to_dataset(data, 90002, "owie", False, read_landmarks(clip.out, np.float64), capture_info(clip.out))
    rows = (data / "train.csv").read_text().splitlines()
    assert rows == ["path,participant_id,sequence_id,sign", "train_landmark_files/90001/1.parquet,90001,1,cloud",
                    "train_landmark_files/90002/2.parquet,90002,2,owie"]
    assert (data / L.SIGN_MAP_NAME).read_text() == L.SIGN_MAP.read_text()

    result = runner.invoke(app, ["prepare", "--data", str(data), "--cache", str(tmp_path / "cache"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    cache = open_cache(tmp_path / "cache")
    assert sorted(cache.sequence_ids.tolist()) == [1, 2]
    i = int(np.flatnonzero(cache.sequence_ids == 2)[0])
    assert cache.signs[int(cache.labels[i])] == "owie"
    np.testing.assert_array_equal(cache.frames(i), read_landmarks(data / "train_landmark_files/90002/2.parquet",
                                                                   np.float16))

    from kit.seeing.show import load_parquet

    assert load_parquet(data / "train_landmark_files/90001/1.parquet")[1] == "90001/1 (cloud)"


def test_folder_of_frames_is_one_recording_taken_frame_for_frame(mediapipe_ready, tmp_path):
    """Real frames saved as PNG files are tracked in name order, one output frame each (no clock, no resampling);
    a picture with nobody in it fails in one line and writes nothing."""
    import cv2

    (tmp_path / "frames").mkdir()
    video = cv2.VideoCapture(str(CLIP))
    for i in range(20):
        ok, image = video.read()
        assert ok
        if i >= 12:
            cv2.imwrite(str(tmp_path / "frames" / f"{i:04d}.png"), image)
        if i == 0:  # the clip's first frame is a cut: nobody in it
            cv2.imwrite(str(tmp_path / "cut.png"), image)
    video.release()
    (tmp_path / "frames" / "notes.txt").write_text("not a frame")
    result = runner.invoke(app, ["capture", str(tmp_path / "frames"), "--out", str(tmp_path / "frames.parquet")])
    assert result.exit_code == 0, result.output
    assert "8 frames from 8 frames" in result.stdout and "face 8" in result.stdout and "pose 8" in result.stdout

    result = runner.invoke(app, ["capture", str(tmp_path / "cut.png"), "--out", str(tmp_path / "cut.parquet")])
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith(
        f"Error: {tmp_path / 'cut.png'}: MediaPipe found no pose")
    assert not (tmp_path / "cut.parquet").exists()


def test_a_webcam_stops_after_its_seconds_and_keeps_a_recording_cut_by_ctrl_c(mediapipe_ready, tmp_path):
    """A camera's frames are stamped by the clock and stop after --seconds; Ctrl-C ends a live recording and the
    frames so far are written (a file source would abort instead)."""
    import cv2

    from kit.capture.holistic import capture
    from kit.capture.sources import Source, camera_source

    def camera(seconds):
        """The clip played as a camera whose clock ticks 1/30 s per frame."""
        ticks = iter(range(1000))
        return camera_source(cv2.VideoCapture(str(CLIP)), "camera", seconds, clock=lambda: next(ticks) / 30)

    assert [round(f.time, 3) for f in camera(0.5).frames()] == [round(i / 30, 3) for i in range(16)]

    def interrupted():
        for frame in camera(None).frames():
            if frame.index == 10:
                raise KeyboardInterrupt
            yield frame

    live = Source("webcam 9", "webcam", 30.0, None, interrupted)
    result = capture(live, out=tmp_path / "live.parquet")
    assert result.interrupted and result.read == 9  # the frame before the interrupt waits for its successor
    assert result.frames == 9 - result.dropped and "stopped with Ctrl-C" in str(result)


@pytest.mark.slow  # exports a model (~10 s), shared with test_export
def test_predict_names_the_top_signs_of_a_capture_as_the_scorer_runs_the_model(exported, clip, photo, tmp_path):
    """kit predict on an exported submission.zip: 5 signs, most likely first, the very numbers the scorer's loop
    (pandas reader + ai_edge_litert) gives; a photo tracked on the fly gives what its capture file gives; a
    recording without hands is answered with a note saying the guess means little."""
    import pandas as pd
    from ai_edge_litert.interpreter import Interpreter

    result = runner.invoke(app, ["predict", str(exported.submission), str(clip.out), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    xyz = pd.read_parquet(clip.out, columns=["x", "y", "z"]).to_numpy().reshape(-1, 543, 3).astype(np.float32)
    model = Interpreter(model_path=str(exported.out_dir / "model.tflite")).get_signature_runner("serving_default")
    probs = model(inputs=xyz)["outputs"]
    assert answer["frames"] == clip.frames and len(answer["top"]) == 5
    assert [t["index"] for t in answer["top"]] == np.argsort(-probs, kind="stable")[:5].tolist()
    np.testing.assert_allclose([t["probability"] for t in answer["top"]], np.sort(probs)[::-1][:5], rtol=1e-5)
    assert [t["sign"] for t in answer["top"]] == [L.sign_names()[t["index"]] for t in answer["top"]]

    from kit.contract.predict import predict

    assert predict(exported.submission, PHOTO).top == predict(exported.out_dir / "model.tflite", photo.out).top
    text = runner.invoke(app, ["predict", str(exported.submission), str(photo.out), "--signs", "3"])
    assert text.exit_code == 0 and [line.split()[0] for line in text.stdout.splitlines()[1:]] == ["1.", "2.", "3."]

    from kit.capture.holistic import write_landmarks

    handless = xyz.astype(np.float64)
    handless[:, list(L.LEFT_HAND + L.RIGHT_HAND)] = np.nan
    write_landmarks(tmp_path / "handless.parquet", handless)
    assert "no hand in any frame" in predict(exported.submission, tmp_path / "handless.parquet").note


@pytest.mark.slow  # draws 75 video frames into a GIF
def test_overlay_draws_the_landmarks_where_mediapipe_found_them(photo, clip, tmp_path, real_samples):
    """kit show PHOTO --overlay paints the right wrist in the right hand's red at its pixel; a capture is drawn
    over its source video, one GIF frame per landmark frame; a file with no video to draw on fails in one line."""
    from PIL import Image

    from kit.data.parquet import read_landmarks
    from kit.seeing.show import COLORS

    out = tmp_path / "photo.gif"
    result = runner.invoke(app, ["show", str(PHOTO), "--overlay", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as gif:
        picture = np.asarray(gif.convert("RGB")).astype(int)
    height, width = picture.shape[:2]
    x, y = read_landmarks(photo.out)[0, L.RIGHT_HAND[0] + 9, :2]  # the middle finger's knuckle
    with Image.open(PHOTO) as original:
        before = np.asarray(original.convert("RGB").resize((width, height))).astype(int)
    red = np.array([int(COLORS["right"][i:i + 2], 16) for i in (1, 3, 5)])

    def redness(image: np.ndarray) -> int:  # distance to red of the reddest pixel around the knuckle
        patch = image[int(y * height) - 2:int(y * height) + 3, int(x * width) - 2:int(x * width) + 3]
        return int(np.abs(patch - red).sum(axis=-1).min())

    assert redness(picture) < 90 and redness(before) > 150  # drawn there (a 128-colour GIF shifts it a little)

    result = runner.invoke(app, ["show", str(clip.out), "--overlay", "--out", str(tmp_path / "clip.gif")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "clip.gif") as gif:
        assert gif.n_frames == clip.frames and gif.size[0] == 480

    real = next((real_samples / "train_landmark_files").glob("*/*.parquet"))
    result = runner.invoke(app, ["show", str(real), "--overlay", "--out", str(tmp_path / "real.gif")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "--video" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_sources_and_options_fail_in_one_line_naming_the_file_and_the_fix(mediapipe_ready, tmp_path):
    """Not a video, an empty folder, an unreadable image, a missing file, a missing camera, a wrong --out, an
    unknown sign: exit 1 with one `Error:` line, before MediaPipe runs and without writing anything."""
    (tmp_path / "notes.mp4").write_text("these are notes, not a video")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.jpg").write_bytes(PHOTO.read_bytes()[:200])
    out = ["--out", str(tmp_path / "x.parquet")]
    cases = [
        ([str(tmp_path / "notes.mp4"), *out], f"{tmp_path / 'notes.mp4'}: not a video OpenCV can read"),
        ([str(tmp_path / "empty"), *out], f"{tmp_path / 'empty'}: no images"),
        ([str(tmp_path / "broken.jpg"), *out], f"{tmp_path / 'broken.jpg'}: not an image OpenCV can read"),
        ([str(tmp_path / "gone.mp4"), *out], "gone.mp4: no such file or folder"),
        (["--webcam", "97", *out], "webcam 97: cannot be opened"),
        ([str(PHOTO), "--webcam", "0", *out], "not both"),
        ([str(PHOTO), "--seconds", "3", *out], "--seconds goes with --webcam"),
        ([str(PHOTO), "--out", str(tmp_path / "x.csv")], "give --out NAME.parquet"),
        ([str(PHOTO), "--participant", "1", "--sign", "cloud", *out], "--data DIR"),
        ([str(PHOTO), "--data", str(tmp_path / "d"), "--participant", "1", "--sign", "clowd"], "did you mean"),
    ]
    cases.append((["predict", str(tmp_path / "model.tflite"), str(tmp_path / "notes.mp4")], "not a video"))
    for args, message in cases:
        result = runner.invoke(app, args if args[0] == "predict" else ["capture", *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.startswith("Error: ") and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "d").exists()


def test_without_mediapipe_capture_names_the_install_command(monkeypatch, tmp_path):
    """Where mediapipe cannot be imported, kit capture fails in one line that gives the two-step install."""
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    result = runner.invoke(app, ["capture", str(PHOTO), "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert 'pip install -e ".[capture]" && pip install --no-deps mediapipe==0.10.21' in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_the_kit_starts_without_opencv_or_mediapipe_and_their_noise_is_known():
    """`kit --help` imports neither (they load TensorFlow); mediapipe's harmless import line is start-up chatter."""
    import subprocess

    from kit.quiet import is_chatter

    code = "import sys, kit.cli; print(sorted(m for m in ('cv2', 'mediapipe') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
    assert is_chatter("AttributeError: 'MessageFactory' object has no attribute 'GetPrototype'\n", None) is True
    assert is_chatter("AttributeError: something real\n", None) is False
