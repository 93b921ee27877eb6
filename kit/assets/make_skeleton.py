"""Build kit/assets/skeleton.npz, the body geometry that `kit synth` animates, from the real samples.

Run from the repository root:

    python kit/assets/make_skeleton.py [SAMPLES_DIR]

It reads every real landmark file of samples/asl-signs (or SAMPLES_DIR) and writes, in body units (x, y and z divided
by the shoulder width of the frame; the origin is the midpoint of the two shoulders):

- `face` [468, 3]: the mean face mesh, relative to the face-mesh nose tip;
- `nose` [3]: where that nose tip sits relative to the shoulders (z: the mean raw face-mesh nose depth);
- `pose` [33, 3]: the mean pose (synth recomputes the arms; the face marks, shoulders and hips are used);
- `hand` [21, 3]: a straight, open right hand in its own frame: wrist at the origin, palm length
  (wrist to middle-finger knuckle) 1, fingers pointing up (-y), palm in the x-y plane. The palm
  (wrist and the five finger bases) and every bone length are medians over all real hands; the
  fingers are then laid out straight, because no real frame shows a clean open hand;
- `palm_per_shoulder`: median palm length over shoulder width, the hand's size relative to the body.

Left hands are mirrored (x -> -x) into right hands first, which is also how synth draws a left hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FACE, LEFT, POSE, RIGHT = slice(0, 468), slice(468, 489), slice(489, 522), slice(522, 543)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
NOSE_TIP = 1


def load(samples: Path) -> list[np.ndarray]:
    """Every real file as a [frames, 543, 3] array."""
    out = []
    for path in sorted(samples.glob("train_landmark_files/*/*.parquet")):
        xyz = pd.read_parquet(path, columns=["x", "y", "z"]).to_numpy()
        out.append(xyz.reshape(-1, 543, 3))
    if not out:
        raise SystemExit(f"{samples}: no train_landmark_files/*/*.parquet found")
    return out


def body_frame(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the shoulder midpoint [frames, 3] and the shoulder width in x, y [frames, 1, 1]."""
    left, right = xyz[:, POSE][:, 11], xyz[:, POSE][:, 12]
    mid = (left + right) / 2
    width = np.linalg.norm((left - right)[:, :2], axis=1)
    return mid, width[:, None, None]


def canonical_hands(files: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All present hands as right hands in the palm frame, and each one's palm length over shoulder width."""
    hands, sizes = [], []
    for xyz in files:
        _, width = body_frame(xyz)
        for part, mirror in ((LEFT, True), (RIGHT, False)):
            h = xyz[:, part].copy()
            ok = ~np.isnan(h[:, 0, 0])
            h = h[ok] - h[ok][:, :1]
            if mirror:
                h[..., 0] = -h[..., 0]
            palm = np.linalg.norm(h[:, 9], axis=1)
            up = h[:, 9] / palm[:, None]
            normal = np.cross(h[:, 5], h[:, 17])
            normal -= (normal * up).sum(1, keepdims=True) * up
            normal /= np.linalg.norm(normal, axis=1, keepdims=True)
            side = np.cross(up, normal)
            # rows: image x, image y (fingers toward -y), depth
            basis = np.stack([side, -up, normal], axis=1)
            hands.append(np.einsum("fij,fpj->fpi", basis, h) / palm[:, None, None])
            sizes.append(palm / width[ok, 0, 0])
    return np.concatenate(hands), np.concatenate(sizes)


def open_hand(hands: np.ndarray) -> np.ndarray:
    """A straight open hand: median palm points, median bone lengths, fingers fanned out from the palm."""
    med = np.median(hands, axis=0)
    out = np.zeros((21, 3))
    up = np.array([0.0, -1.0, 0.0])
    for finger in FINGERS:
        base = finger[0]
        out[base] = med[base]
        if base == 1:
            # the thumb keeps its own median direction: it does not point along the palm
            direction = med[2] - med[1]
        else:
            direction = med[base] / np.linalg.norm(med[base]) + up
        direction /= np.linalg.norm(direction)
        for a, b in zip(finger[:-1], finger[1:]):
            length = np.median(np.linalg.norm(hands[:, b] - hands[:, a], axis=1))
            out[b] = out[a] + length * direction
    return out


def build(samples: Path) -> dict[str, np.ndarray]:
    """The arrays of skeleton.npz (see the module docstring)."""
    files = load(samples)
    faces, noses, poses = [], [], []
    for xyz in files:
        mid, width = body_frame(xyz)
        face = xyz[:, FACE] - xyz[:, FACE][:, NOSE_TIP : NOSE_TIP + 1]
        faces.append(face / width)
        noses.append(np.column_stack([(xyz[:, NOSE_TIP, :2] - mid[:, :2]) / width[:, 0], xyz[:, NOSE_TIP, 2:]]))
        poses.append((xyz[:, POSE] - mid[:, None]) / width)
    hands, sizes = canonical_hands(files)
    # nanmean: three of the real samples have frames without a face (all 468 points NaN), left out of the means
    return {
        "face": np.nanmean(np.concatenate(faces), 0).astype(np.float32),
        "nose": np.nanmean(np.concatenate(noses), 0).astype(np.float32),
        "pose": np.concatenate(poses).mean(0).astype(np.float32),
        "hand": open_hand(hands).astype(np.float32),
        "palm_per_shoulder": np.float32(np.median(sizes)),
    }


def main() -> None:
    here = Path(__file__).resolve().parent
    samples = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[1] / "samples" / "asl-signs"
    target = here / "skeleton.npz"
    np.savez_compressed(target, **build(samples))
    print(f"wrote {target} ({target.stat().st_size} bytes) from {samples}")


if __name__ == "__main__":
    main()
