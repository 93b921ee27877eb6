"""Named landmark groups of the MediaPipe Holistic frame: the one place that knows index numbers.

Every frame of the competition has 543 rows in this order: face (468), left_hand (21), pose (33),
right_hand (21). Indices below are positions in that 543-row frame unless the name says otherwise.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

N_LANDMARKS = 543
N_CLASSES = 250

# The competition's 250-sign map ("TV": 0 ... "zipper": 249): the output order of every submission.
SIGN_MAP_NAME = "sign_to_prediction_index_map.json"
SIGN_MAP = Path(__file__).resolve().parents[1] / "assets" / SIGN_MAP_NAME


@cache
def sign_names() -> tuple[str, ...]:
    """The 250 real sign names in prediction-index order."""
    mapping = json.loads(SIGN_MAP.read_text())
    return tuple(sorted(mapping, key=mapping.get))


# (type, count) in the order rows appear in every frame of every competition parquet file.
TYPES: tuple[tuple[str, int], ...] = (("face", 468), ("left_hand", 21), ("pose", 33), ("right_hand", 21))
COLUMNS = ("frame", "row_id", "type", "landmark_index", "x", "y", "z")


def _offsets() -> dict[str, int]:
    out, start = {}, 0
    for name, count in TYPES:
        out[name] = start
        start += count
    return out


OFFSET = _offsets()  # {"face": 0, "left_hand": 468, "pose": 489, "right_hand": 522}
FACE = tuple(range(0, 468))
LEFT_HAND = tuple(range(468, 489))
POSE = tuple(range(489, 522))
RIGHT_HAND = tuple(range(522, 543))

# Face-mesh indices (0..467). Lips: the 20 points of the outer lip contour; eyes: 3 per eye (two corners and the
# upper lid). 26 face points in all: the 26th place's count (its write-up names no indices; these are the kit's).
LIPS_FACE = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
EYES_FACE = (33, 133, 159, 263, 362, 386)
NOSE_FACE = 1  # nose tip: the head reference that preprocessing moves to the origin

# Pose indices (0..32). 0..16 are everything above the hips: face marks, shoulders, elbows, wrists.
UPPER_POSE = tuple(range(17))
POSE_NOSE = 0
POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 11, 12
POSE_LEFT_ELBOW, POSE_RIGHT_ELBOW = 13, 14
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16

# Hand indices (0..20): wrist, then 4 joints per finger from thumb to pinky.
HAND_WRIST = 0
HAND_FINGERTIPS = (4, 8, 12, 16, 20)
HAND_BONES = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16),
    (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)
POSE_BONES = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22), (11, 23), (12, 24), (23, 24),
)

# The points the default preprocessing keeps, as 543-frame indices, in a fixed order.
SELECTED = (
    LEFT_HAND
    + RIGHT_HAND
    + tuple(OFFSET["face"] + i for i in LIPS_FACE + EYES_FACE)
    + tuple(OFFSET["pose"] + i for i in UPPER_POSE)
)
# The 1st place's 118 points (its notebook's POINT_LANDMARKS, in its order): 40 lip points (outer and inner
# contour), the left and the right hand, 4 nose points, 16 points round the right eye and 16 round the left.
LIPS40_FACE = (0, 61, 185, 40, 39, 37, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
               78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
NOSE4_FACE = (1, 2, 98, 327)
RIGHT_EYE16_FACE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE16_FACE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
SELECTED_1ST = (
    tuple(OFFSET["face"] + i for i in LIPS40_FACE)
    + LEFT_HAND
    + RIGHT_HAND
    + tuple(OFFSET["face"] + i for i in NOSE4_FACE + RIGHT_EYE16_FACE + LEFT_EYE16_FACE)
)
# The 1st place's centre: face point 17, the middle of the lower lip's outer contour.
CENTER_1ST = OFFSET["face"] + 17
HEAD = OFFSET["face"] + NOSE_FACE
# Where the face is missing (a frame without a face: real files have them), the pose's nose stands in
# (kit/preprocessing/head.py).
POSE_HEAD = OFFSET["pose"] + POSE_NOSE


def columns(points, layout=None) -> np.ndarray:
    """Where the 543-frame landmark indices `points` sit in a frame holding only the landmarks `layout`.

    `layout` is a sorted index array (the training pipeline keeps only the points preprocessing reads, see
    kit.training.pipeline.RESIDENT); None is the full 543-point frame of the files and of the exported graph, where
    every index is its own column. A point missing from `layout` is an error, never a silent wrong column.
    """
    points = np.asarray(points, dtype=np.int64)
    if layout is None:
        return points.astype(np.int32)
    layout = np.asarray(layout)
    at = np.searchsorted(layout, points)
    if np.any(at >= len(layout)) or np.any(layout[np.minimum(at, len(layout) - 1)] != points):
        missing = sorted(set(points.ravel().tolist()) - set(layout.tolist()))
        raise ValueError(f"landmarks {missing} are not in the layout")
    return at.astype(np.int32)


def row_ids(frame: int) -> list[str]:
    """The `row_id` strings of one frame, in file order: "<frame>-<type>-<index>"."""
    return [f"{frame}-{name}-{i}" for name, count in TYPES for i in range(count)]


def type_column() -> list[str]:
    """The `type` column of one frame, in file order."""
    return [name for name, count in TYPES for _ in range(count)]


def landmark_index_column() -> list[int]:
    """The `landmark_index` column of one frame, in file order."""
    return [i for _, count in TYPES for i in range(count)]
