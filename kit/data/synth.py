"""`kit synth`: a synthetic asl-signs data set in exactly the competition's layout.

Each sign is a fixed recipe (where the dominant wrist goes, handshapes, palm orientation, mouth pattern, maybe a
second hand) that depends only on the sign's index, so every seed draws new signers doing the same 250 signs.
Signers differ in handedness, body size and place in the image, speed, jitter, tracking losses (hands, and the face
in a few recordings, at the real data's rates), idle frames and small style offsets, so that accuracy on unseen signers is a real test. Body geometry comes from real samples
(kit/assets/skeleton.npz, built by kit/assets/make_skeleton.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, N_LANDMARKS, OFFSET, SIGN_MAP, SIGN_MAP_NAME, TYPES, sign_names
from kit.progress import track

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SCHEMA = pa.schema([
    ("frame", pa.int16()), ("row_id", pa.string()), ("type", pa.string()), ("landmark_index", pa.int16()),
    ("x", pa.float64()), ("y", pa.float64()), ("z", pa.float64()),
])
DICTIONARY = ["frame", "type", "landmark_index"]  # the columns worth dictionary-encoding in the parquet files
SIGN_SALT, SIGNER_SALT, SEQUENCE_SALT, ID_SALT = 7919, 104729, 1299709, 15485863  # separate random streams
MIN_FRAMES, MAX_FRAMES = 12, 80
MAX_FIRST_FRAME = 150  # real files start anywhere from frame 0 to a few hundred
# Frames without a face, as in the real files: in a public sample of 747 real files, 27 (3.6%) had a run of frames
# whose 468 face points are all NaN, 124 of 23,435 frames (0.53%, about 4.6 per such file; the three such files in
# samples/asl-signs have runs of 1, 2 and 5). Pose was never missing there, so it never is here.
FACELESS_FILES = 0.036
FACELESS_RUN = (1, 8)  # frames in a run, uniform: mean 4.5

# Handshapes: curl per finger (thumb..pinky; 0 straight, 1 fist) and spread (0 together, 1 fanned).
HANDSHAPES = (
    ((0.0, 0.0, 0.0, 0.0, 0.0), 1.0),  # 5
    ((0.6, 0.0, 0.0, 0.0, 0.0), 0.0),  # B
    ((0.1, 1.0, 1.0, 1.0, 1.0), 0.0),  # A
    ((0.9, 1.0, 1.0, 1.0, 1.0), 0.0),  # S
    ((0.9, 0.0, 1.0, 1.0, 1.0), 0.2),  # 1
    ((0.9, 0.0, 0.0, 1.0, 1.0), 1.0),  # V
    ((0.0, 1.0, 1.0, 1.0, 0.0), 1.0),  # Y
    ((0.0, 0.0, 1.0, 1.0, 1.0), 1.0),  # L
    ((0.3, 0.6, 0.6, 0.6, 0.6), 1.0),  # claw
    ((0.5, 0.5, 0.5, 0.5, 0.5), 0.2),  # O
    ((0.9, 0.0, 0.0, 0.0, 1.0), 1.0),  # W
    ((0.9, 1.0, 1.0, 1.0, 0.0), 0.0),  # I
)
# Dominant-wrist places in body units (origin between the shoulders, x toward the dominant side is negative
# because a right hand shows on the image's left, y down, 1 = shoulder width): face, chest, neutral space.
PLACES = np.array([
    (-0.10, -0.10), (-0.15, -0.40), (-0.40, -0.25), (0.00, 0.30), (-0.35, 0.25),
    (-0.30, 0.45), (-0.80, 0.15), (-0.70, -0.35), (0.35, 0.05), (-0.15, 0.15),
])
REST = np.array([-0.45, 1.45])  # hand hanging down, below the image: out of view
BASE = np.array([0.15, 0.35])  # where the passive hand of a two-handed sign waits


@dataclass(frozen=True)
class SynthSummary:
    """What `synthesize` wrote."""

    out: Path
    n_signs: int
    n_participants: int
    per_sign: int
    n_sequences: int
    n_frames: int

    def __str__(self) -> str:
        return (
            f"wrote {self.n_sequences} sequences ({self.n_signs} signs x {self.n_participants} signers x "
            f"{self.per_sign}), {self.n_frames} frames, to {self.out}: train.csv, sign_to_prediction_index_map.json, "
            f"train_landmark_files/<participant_id>/<sequence_id>.parquet"
        )


@dataclass(frozen=True)
class SynthSequence:
    """One synthetic recording: `landmarks` [frames, 543, 3] float64 (NaN hands), numbered from `first_frame`."""

    participant_id: int
    sequence_id: int
    sign: str
    first_frame: int
    landmarks: np.ndarray


@cache
def skeleton() -> dict[str, np.ndarray]:
    """Mean face, pose and an open right hand from the real samples (see kit/assets/make_skeleton.py)."""
    with np.load(ASSETS / "skeleton.npz") as data:
        return {key: data[key].astype(np.float64) for key in data.files}


def check_args(n_signs: int, n_participants: int, per_sign: int, seed: int) -> None:
    """Raise KitError naming the bad option and its valid range."""
    if not 1 <= n_signs <= N_CLASSES:
        raise KitError(f"--signs {n_signs}: must be 1..{N_CLASSES} (the first N signs of the real sign map)")
    if not 1 <= n_participants <= 1000:
        raise KitError(f"--signers {n_participants}: must be 1..1000")
    if not 1 <= per_sign <= 100:
        raise KitError(f"--per-sign {per_sign}: must be 1..100")
    if seed < 0:
        raise KitError(f"--seed {seed}: must be 0 or more")


# ---------------------------------------------------------------- recipes: signs, signers, sequences
def sign_recipe(index: int) -> dict:
    """The fixed recipe of sign `index` of the real map: the same for every seed and signer.

    About a quarter of the signs replay their predecessor backwards: the same places, handshapes and mouth in
    the opposite order. Averages over time cannot tell such a pair apart; only a model of order can.
    """
    if index % 2 and np.random.default_rng([SIGN_SALT, index, 1]).random() < 0.5:
        return reversed_sign(sign_recipe(index - 1))
    rng = np.random.default_rng([SIGN_SALT, index])
    n_keys = int(rng.integers(2, 4))
    places = rng.choice(len(PLACES), n_keys, replace=False)
    two_handed = rng.random() < 0.3
    mode = rng.choice(["mirror", "base"]) if two_handed else "none"
    keys = PLACES[places] + rng.normal(0, 0.08, (n_keys, 2))
    if mode == "base":  # the active hand works on or around the waiting hand
        keys[-1] = BASE + (-0.25, -0.1) + rng.normal(0, 0.05, 2)
    shapes = rng.choice(len(HANDSHAPES), 2, replace=False)
    return {
        "keys": keys,
        "motion": rng.choice(["still", "repeat", "circle"], p=[0.4, 0.4, 0.2]),
        "motion_dir": rng.normal(0, 1, 2),
        "motion_size": rng.uniform(0.08, 0.18),
        "cycles": int(rng.integers(2, 4)),
        "shape_from": shapes[0],
        "shape_to": shapes[1] if rng.random() < 0.4 else shapes[0],
        "shape_change_at": rng.uniform(0.3, 0.7),
        "roll": rng.uniform(-1.3, 0.5, 2),  # palm rotation in the image plane at start and end
        "yaw": rng.uniform(-1.2, 1.2, 2),  # turning the palm toward or away from the camera
        "mouth": mouth_recipe(rng),
        "mode": mode,
        "passive_shape": int(rng.integers(len(HANDSHAPES))),
        "frames": rng.uniform(14, 30),
    }


def reversed_sign(recipe: dict) -> dict:
    """`recipe` played backwards: keys, handshape change, palm turn and mouth in the opposite order."""
    return {
        **recipe,
        "keys": recipe["keys"][::-1].copy(),
        "shape_from": recipe["shape_to"],
        "shape_to": recipe["shape_from"],
        "shape_change_at": 1 - recipe["shape_change_at"],
        "roll": recipe["roll"][::-1].copy(),
        "yaw": recipe["yaw"][::-1].copy(),
        "cycles": -recipe["cycles"],  # repeats and circles run the other way round
        "mouth": {**recipe["mouth"], "centres": [1 - c for c in recipe["mouth"]["centres"]]},
    }


def mouth_recipe(rng: np.random.Generator) -> dict:
    """Bumps of mouth opening over the sign (centre, width, height) and a lip spread (+) or rounding (-)."""
    kind = rng.choice(["none", "one", "two", "hold"])
    centres = {"none": [], "one": [rng.uniform(0.3, 0.7)], "two": [0.3, 0.7], "hold": [0.5]}[kind]
    width = 0.35 if kind == "hold" else rng.uniform(0.1, 0.2)
    return {"centres": centres, "width": width, "height": rng.uniform(0.5, 1.0), "spread": rng.choice([-1, 0, 1])}


def signer_recipe(seed: int, index: int, left_handed: bool) -> dict:
    """How one synthetic signer looks and moves: the same for all of their signs."""
    rng = np.random.default_rng([seed, SIGNER_SALT, index])
    return {
        "left_handed": left_handed,
        "scale": rng.uniform(0.42, 0.66),  # shoulder width in image units
        "centre": np.array([rng.uniform(0.4, 0.6), rng.uniform(0.5, 0.66)]),
        "tilt": rng.normal(0, 0.03),
        "hand_scale": rng.normal(1.0, 0.06),
        "speed": rng.uniform(0.7, 1.5),
        "idle": rng.uniform(0, 6),
        "jitter": rng.uniform(0.006, 0.02),
        "miss_rate": rng.uniform(0.0, 0.15),
        "offset": rng.normal(0, 0.12, 2),
        "warp": np.eye(2) * rng.uniform(0.8, 1.2) + rng.normal(0, 0.08, (2, 2)),  # signing space: size, skew
        "curl_bias": rng.normal(0, 0.12),
        "roll_bias": rng.normal(0, 0.25),
        "mouth_gain": rng.uniform(0.3, 1.2),
    }


def timeline(rng: np.random.Generator, sign: dict, signer: dict,
             n_frames: int | None = None) -> tuple[int, np.ndarray]:
    """Frame count and the time of each key: rest, enter, sign keys..., leave, rest (idle frames at both ends).

    With `n_frames` (at least MIN_FRAMES) the recording lasts exactly that long: see `fit_times`.
    """
    core = sign["frames"] * signer["speed"] * rng.uniform(0.85, 1.2)
    idle = rng.poisson(signer["idle"], 2)
    enter, leave = rng.uniform(3, 5, 2)
    n_keys = len(sign["keys"])
    gaps = core / (n_keys - 1) * rng.dirichlet(np.full(n_keys - 1, 8.0)) * (n_keys - 1)
    times = np.cumsum([idle[0], enter, *gaps, leave])
    if n_frames is not None:
        return n_frames, fit_times(times, times[-1] + idle[1], n_frames - 1, rng.random())
    n = int(np.clip(round(times[-1] + idle[1]), MIN_FRAMES, MAX_FRAMES))
    return n, times * min(1.0, (n - 1) / (times[-1] + idle[1]))


SLOWEST = 1.6  # a long recording plays the sign at most this much slower; the rest of its frames are idle


def fit_times(times: np.ndarray, total: float, span: float, lead: float) -> np.ndarray:
    """Key times moved into `span` frames: a recording shorter than the natural `total` is the sign sped up;
    a longer one is the sign slowed at most SLOWEST times, with the frames left over idle, the share `lead`
    (0..1) of them before the sign and the rest after. Times stay increasing and end within `span`."""
    if span <= total:
        return times * (span / total)
    stretch = min(SLOWEST, span / total)
    return times * stretch + lead * (span - total * stretch)


# ---------------------------------------------------------------- geometry
def ease(keys: np.ndarray, times: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Positions at frames `t`, moving between `keys` (reached at `times`) with smooth starts and stops."""
    u = np.interp(t, times, np.arange(len(times)))
    i = np.minimum(u.astype(int), len(times) - 2)
    f = (1 - np.cos(np.pi * (u - i))) / 2
    return keys[i] + f[:, None] * (keys[i + 1] - keys[i])


def rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues rotation of vectors [T, 3] about unit axes [T, 3] by angles [T]."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return v * c + cross(axis, v) * s + axis * (axis * v).sum(1, keepdims=True) * (1 - c)


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross of [..., 3] vectors, the same products in the same order, without its axis bookkeeping: the
    same values, several times faster on the small arrays synth uses (hand_shape called it most)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
SPREAD = (0.5, 1.5, 0.5, -0.5, -1.5)  # how far each finger fans out from the middle of the hand
BEND = ((0.5, 0.6, 0.6), (1.5, 1.7, 1.2), (1.5, 1.7, 1.2), (1.5, 1.7, 1.2), (1.5, 1.7, 1.2))  # radians at curl 1


def hand_shape(curl: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """A right hand [T, 21, 3] in its own frame (wrist at 0, palm length 1) with curls [T, 5] and spread [T]."""
    template = skeleton()["hand"]
    n = len(curl)
    out = np.zeros((n, 21, 3))
    normal = np.tile([0.0, 0.0, 1.0], (n, 1))
    for f, joints in enumerate(FINGERS):
        out[:, joints[0]] = template[joints[0]]
        base = np.tile(unit(template[joints[1]] - template[joints[0]]), (n, 1))
        base = rotate(base, normal, SPREAD[f] * (spread - 0.5) * 0.35)
        if f == 0:  # the thumb folds across the palm toward the little finger
            axis = unit(cross(base, unit(template[17] - template[1]) + normal))
        else:
            axis = unit(cross(base, normal))
        angle = np.zeros(n)
        for k, (a, b) in enumerate(zip(joints[:-1], joints[1:])):
            angle = angle + curl[:, f] * BEND[f][k]
            length = np.linalg.norm(template[b] - template[a])
            out[:, b] = out[:, a] + length * rotate(base, axis, angle)
    return out


def orient(hand: np.ndarray, roll: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Turn hands [T, 21, 3] by yaw (about the fingers' axis) then roll (in the image plane)."""
    cy, sy, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    x = hand[..., 0] * cy[:, None] + hand[..., 2] * sy[:, None]
    z = -hand[..., 0] * sy[:, None] + hand[..., 2] * cy[:, None]
    y = hand[..., 1]
    return np.stack([x * cr[:, None] - y * sr[:, None], x * sr[:, None] + y * cr[:, None], z], -1)


def elbows(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> np.ndarray:
    """Elbow positions [T, 2] for an arm of fixed bone lengths, bent down and away from the body."""
    upper, fore = 0.62, 0.58
    d = wrist - shoulder
    dist = np.clip(np.linalg.norm(d, axis=1, keepdims=True), 1e-6, upper + fore - 1e-6)
    along = (upper**2 - fore**2 + dist**2) / (2 * dist)
    height = np.sqrt(np.maximum(upper**2 - along**2, 0))
    perp = np.stack([-d[:, 1], d[:, 0]], 1) / dist
    perp *= np.sign(perp @ np.array([0.3 * outward, 1.0]) + 1e-9)[:, None]  # elbows hang down, a bit outward
    return shoulder + d / dist * along + perp * height


def mouth(open_: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """The face mesh [T, 468, 3] in body units with the jaw dropped by `open_` and lips widened by `spread`."""
    face = skeleton()["face"]
    centre = face[[13, 14]].mean(0)
    dx, dy = face[:, 0] - centre[0], face[:, 1] - centre[1]
    jaw = np.clip(dy / 0.02, 0, 1) * np.exp(-((dx / 0.22) ** 2))
    lips = np.exp(-(dx**2 + dy**2) / 0.12**2)
    out = np.repeat(face[None], len(open_), 0)
    out[..., 1] += 0.07 * open_[:, None] * jaw
    out[..., 0] += 0.25 * spread[:, None] * dx * lips
    return out


# ---------------------------------------------------------------- one sequence
def sign_track(rng: np.random.Generator, sign: dict, signer: dict, times: np.ndarray, t: np.ndarray) -> dict:
    """Per-frame dominant wrist, handshape, orientation and mouth (body units, as a right-handed signer)."""
    keys = (sign["keys"] - (-0.2, 0.1)) @ signer["warp"].T + (-0.2, 0.1) + signer["offset"]
    keys = keys + rng.normal(0, 0.04, keys.shape)
    wrist = ease(np.vstack([REST, keys, REST]), times, t)
    core = np.clip((t - times[1]) / (times[-2] - times[1]), 0, 1)
    window = np.sin(np.pi * core)
    if sign["motion"] == "repeat":  # a back-and-forth along the sign's own direction
        swing = np.sin(2 * np.pi * sign["cycles"] * core) * window * sign["motion_size"]
        wrist += np.outer(swing, unit(sign["motion_dir"]))
    elif sign["motion"] == "circle":
        phase = 2 * np.pi * sign["cycles"] * core
        wrist += np.column_stack([np.cos(phase) - 1, np.sin(phase)]) * (window * sign["motion_size"])[:, None]
    change = 1 / (1 + np.exp(-(core - sign["shape_change_at"]) / 0.05))
    c0, s0 = HANDSHAPES[sign["shape_from"]]
    c1, s1 = HANDSHAPES[sign["shape_to"]]
    curl = np.outer(1 - change, c0) + np.outer(change, c1) + signer["curl_bias"] + rng.normal(0, 0.05, 5)
    spread = (1 - change) * s0 + change * s1 + rng.normal(0, 0.1)
    roll = sign["roll"][0] + core * np.diff(sign["roll"])[0] + signer["roll_bias"] + rng.normal(0, 0.1)
    yaw = sign["yaw"][0] + core * np.diff(sign["yaw"])[0] + rng.normal(0, 0.1)
    m = sign["mouth"]
    bumps = sum((np.exp(-(((core - c) / m["width"]) ** 2)) for c in m["centres"]), np.zeros_like(core))
    gain = signer["mouth_gain"] * rng.uniform(0.7, 1.2)
    return {
        "wrist": wrist, "curl": np.clip(curl, 0, 1), "spread": np.clip(spread, 0, 1), "roll": roll, "yaw": yaw,
        "open": np.clip(bumps, 0, 1) * m["height"] * gain, "lips": m["spread"] * window * gain,
    }


def passive_track(rng: np.random.Generator, sign: dict, dom: dict, dom_hand: np.ndarray, times: np.ndarray,
                  t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The other hand's wrist [T, 2] and oriented shape [T, 21, 3], already mirrored into a left hand."""
    mirror = np.array([-1.0, 1.0, 1.0])
    if sign["mode"] == "mirror":  # both hands do the same thing, mirrored, a frame or so apart
        lag = rng.uniform(0, 1.5)
        wrist = np.column_stack([np.interp(t - lag, t, -dom["wrist"][:, 0]), np.interp(t - lag, t, dom["wrist"][:, 1])])
        return wrist, dom_hand * mirror
    n, rest = len(t), REST * (-1, 1)
    if sign["mode"] == "base":  # the passive hand comes up first and waits under the active one
        keys = np.vstack([rest, BASE, BASE, rest])
        key_times = np.array([times[0], times[1] - 1, times[-2] + 1, times[-1]])
        curl, spread = HANDSHAPES[sign["passive_shape"]]
        roll, yaw = np.full(n, -1.3), np.full(n, 1.0)
    else:  # one-handed sign: now and then the idle hand drifts up into view, low and relaxed
        low = np.array([0.45, 0.55]) + rng.normal(0, 0.05, 2) if rng.random() < 0.25 else rest
        start, stop = np.sort(rng.uniform(times[0], times[-1], 2))
        keys = np.vstack([rest, low, low, rest])
        key_times = np.array([start - 3, start, stop + 0.01, stop + 3])
        curl, spread = HANDSHAPES[8]  # a loose, half-curled hand
        roll, yaw = np.full(n, -0.3), np.full(n, 0.5)
    wrist = ease(keys, key_times, t)
    shape = hand_shape(np.clip(np.tile(curl, (n, 1)) + rng.normal(0, 0.05, 5), 0, 1), np.full(n, spread))
    return wrist, orient(shape, roll, yaw) * mirror


def dropouts(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """Frames [n] lost by the hand tracker, in short bursts: about `rate` of all frames."""
    lost = np.zeros(n, bool)
    for start in np.flatnonzero(rng.random(n) < rate / 2):
        lost[start : start + int(rng.integers(1, 4))] = True
    return lost


def render(rng: np.random.Generator, sign: dict, signer: dict, n_frames: int | None = None,
           faceless: bool | None = None) -> np.ndarray:
    """One recording of `sign` by `signer`: [frames, 543, 3] image coordinates in file order, NaN hands.

    Its length follows the sign and signer (MIN_FRAMES..MAX_FRAMES), or is exactly `n_frames` (>= MIN_FRAMES).
    A run of frames loses the face (`faceless`; None: drawn, for FACELESS_FILES of the recordings).
    """
    skel = skeleton()
    n, times = timeline(rng, sign, signer, n_frames)
    t = np.arange(n, dtype=np.float64)
    dom = sign_track(rng, sign, signer, times, t)
    dom_hand = orient(hand_shape(dom["curl"], dom["spread"]), dom["roll"], dom["yaw"])
    pas_wrist, pas_hand = passive_track(rng, sign, dom, dom_hand, times, t)
    hands = {"right_hand": (dom["wrist"], dom_hand), "left_hand": (pas_wrist, pas_hand)}
    if signer["left_handed"]:  # the whole sign mirrored: the left hand leads
        flip = np.array([-1.0, 1.0, 1.0])
        hands = {
            "right_hand": (pas_wrist * flip[:2], pas_hand * flip),
            "left_hand": (dom["wrist"] * flip[:2], dom_hand * flip),
        }
    drift = np.cumsum(rng.normal(0, 0.004, (n, 2)), 0) + rng.normal(0, 0.02, 2)  # head and body sway
    scale, centre = signer["scale"], signer["centre"] + rng.normal(0, 0.01, 2)
    tilt = signer["tilt"] + rng.normal(0, 0.01)
    rot = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])

    def image(xy: np.ndarray) -> np.ndarray:  # body units -> normalised image coordinates
        return centre + scale * xy @ rot.T

    out = np.empty((n, N_LANDMARKS, 3))
    face = mouth(dom["open"], dom["lips"])
    out[:, :468, :2] = image(face[..., :2] + skel["nose"][:2] + drift[:, None])
    out[:, :468, 2] = face[..., 2] * scale + skel["nose"][2]
    pose = np.repeat(skel["pose"][None], n, 0)
    pose[:, :11, :2] += drift[:, None]
    pose[..., :2] += rng.normal(0, 0.01, (n, 33, 2))
    palm = scale * skel["palm_per_shoulder"] * signer["hand_scale"]
    arms = {"right_hand": (12, 14, 16, (18, 20, 22), -1.0), "left_hand": (11, 13, 15, (17, 19, 21), 1.0)}
    for name, (wrist, hand) in hands.items():
        shoulder, elbow, pose_wrist, knuckles, outward = arms[name]
        wrist = wrist + rng.normal(0, signer["jitter"], wrist.shape)
        pose[:, elbow, :2] = elbows(pose[:, shoulder, :2], wrist, outward)
        pose[:, pose_wrist, :2] = wrist
        hand = hand + rng.normal(0, 0.02, hand.shape)
        hand[:, 0] = 0.0  # the wrist is the hand's origin: the tracker reports hand depth relative to it
        pose[:, list(knuckles), :2] = wrist[:, None] + hand[:, [17, 5, 2], :2] * (palm / scale)
        points = np.concatenate([image(wrist)[:, None] + hand[..., :2] * palm, hand[..., 2:] * palm], -1)
        seen = (points[:, 0, 1] < 1.0) & (points[:, 0, 0] > 0.0) & (points[:, 0, 0] < 1.0)
        rate = signer["miss_rate"] if hands_lead(name, signer) else min(0.5, 2 * signer["miss_rate"] + 0.05)
        points[~seen | dropouts(rng, n, rate)] = np.nan
        out[:, OFFSET[name] : OFFSET[name] + 21] = points
    out[:, OFFSET["pose"] : OFFSET["pose"] + 33, :2] = image(pose[..., :2])
    out[:, OFFSET["pose"] : OFFSET["pose"] + 33, 2] = pose[..., 2] * scale - 0.4
    # Drawn last, so that the rest of the recording is the same whether or not it loses its face.
    if faceless is None:
        faceless = rng.random() < FACELESS_FILES
    if faceless:
        out[face_lost(rng, n), OFFSET["face"] : OFFSET["face"] + 468] = np.nan
    return out


def face_lost(rng: np.random.Generator, n: int) -> slice:
    """The run of frames [n] in which the face tracker finds no face (FACELESS_RUN long, within the recording)."""
    length = min(n, int(rng.integers(FACELESS_RUN[0], FACELESS_RUN[1] + 1)))
    start = int(rng.integers(0, n - length + 1))
    return slice(start, start + length)


def hands_lead(name: str, signer: dict) -> bool:
    """Whether hand `name` is this signer's dominant hand."""
    return name == ("left_hand" if signer["left_handed"] else "right_hand")


# ---------------------------------------------------------------- the data set
def sequences(n_signs: int, n_participants: int, per_sign: int, seed: int = 0) -> Iterator[SynthSequence]:
    """Every synthetic recording, signer by signer; the same arguments always give the same arrays.

    The first recording always has frames without a face (the rest at the real rate), so that even a tiny data set
    holds the real files' faceless frames."""
    check_args(n_signs, n_participants, per_sign, seed)
    rng = np.random.default_rng([seed, ID_SALT])
    participants = 10_000 + rng.choice(90_000, n_participants, replace=False)  # 5 digits, like the real ids
    sequence_ids = 10_000 + rng.choice(2**32 - 10_000, n_signs * n_participants * per_sign, replace=False)
    lefties = set(rng.choice(n_participants, round(0.2 * n_participants), replace=False).tolist())
    names, recipes = sign_names(), [sign_recipe(i) for i in range(n_signs)]
    ids = iter(sequence_ids.tolist())
    for p, participant in enumerate(participants.tolist()):
        signer = signer_recipe(seed, p, p in lefties)
        for s in range(n_signs):
            for r in range(per_sign):
                seq_rng = np.random.default_rng([seed, SEQUENCE_SALT, p, s, r])
                first = int(seq_rng.integers(1, MAX_FIRST_FRAME + 1))
                faceless = True if p == s == r == 0 else None
                yield SynthSequence(participant, next(ids), names[s], first,
                                    render(seq_rng, recipes[s], signer, faceless=faceless))


@cache
def _frame_columns(n_frames: int) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """frame, row_id, type and landmark_index for frames 0..n_frames-1, built once and sliced per file."""
    types = [name for name, count in TYPES for _ in range(count)]
    indices = [i for _, count in TYPES for i in range(count)]
    suffixes = [f"-{name}-{i}" for name, i in zip(types, indices)]
    return (
        pa.array(np.repeat(np.arange(n_frames, dtype=np.int16), N_LANDMARKS)),
        pa.array([f"{f}{suffix}" for f in range(n_frames) for suffix in suffixes], pa.string()),
        pa.array(types * n_frames, pa.string()),
        pa.array(np.tile(np.array(indices, np.int16), n_frames)),
    )


def landmark_table(first_frame: int, landmarks: np.ndarray) -> pa.Table:
    """A [frames, 543, 3] array as a table with the competition's columns, frames numbered from `first_frame`."""
    n = len(landmarks)
    frame, row_id, kind, index = _frame_columns(max(256, -(-(first_frame + n) // 256) * 256))
    lo, count = first_frame * N_LANDMARKS, n * N_LANDMARKS
    xyz = landmarks.reshape(-1, 3)
    columns = [frame.slice(lo, count), row_id.slice(lo, count), kind.slice(0, count), index.slice(0, count)]
    coords = [pa.array(xyz[:, i], from_pandas=True) for i in range(3)]  # NaN stored as null, as in the real files
    return pa.Table.from_arrays([*columns, *coords], schema=SCHEMA)


def synthesize(
    out: Path, n_signs: int = 25, n_participants: int = 8, per_sign: int = 4, seed: int = 0
) -> SynthSummary:
    """Write train.csv, the landmark files and the sign map into the new or empty folder `out`."""
    check_args(n_signs, n_participants, per_sign, seed)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KitError(f"{out}: already exists and is not empty; synth never overwrites, choose a new --out folder")
    rows, n_frames = [], 0
    total = n_signs * n_participants * per_sign
    for seq in track(sequences(n_signs, n_participants, per_sign, seed), "synthesising", total=total):
        path = f"train_landmark_files/{seq.participant_id}/{seq.sequence_id}.parquet"
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        # row_id and x/y/z plain rather than dictionary-encoded: half the write time, a fifth smaller
        pq.write_table(landmark_table(seq.first_frame, seq.landmarks), out / path, use_dictionary=DICTIONARY)
        rows.append((path, seq.participant_id, seq.sequence_id, seq.sign))
        n_frames += len(seq.landmarks)
    # written last, so that an interrupted run leaves no train.csv pointing at missing files
    shutil.copyfile(SIGN_MAP, out / SIGN_MAP_NAME)
    table = pd.DataFrame(rows, columns=["path", "participant_id", "sequence_id", "sign"])
    table = table.iloc[np.argsort(table["sequence_id"].astype(str).to_numpy(), kind="stable")]  # real train.csv order
    table.to_csv(out / "train.csv", index=False)
    return SynthSummary(out, n_signs, n_participants, per_sign, len(rows), n_frames)
