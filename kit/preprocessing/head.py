"""Where the head is in each frame: the point preprocessing centres a sequence on and augmentations turn around.

The reference is the face mesh's nose tip. Real competition files have frames without a face: all 468 face points
NaN (124 of 23,435 frames, in 27 of 747 files of a public sample of the real data; three of the real samples in
samples/asl-signs have such frames). In those frames the pose's nose stands in: the same point on the
body, found by the pose model, which was never missing in those files. The two models place it a little apart (on a
real sample, 0.03 of the image width), so the stand-in is moved by the sequence's mean offset between them over the
frames that have both: a sequence that loses its face for a few frames keeps its centre. Only a frame with neither
is NaN here.
`kit.preprocessing.preprocess` and `kit.preprocessing.augment` both call `head`, so training and the exported graph
agree on it.
"""

from __future__ import annotations

import tensorflow as tf

from kit.data import landmarks as L


def head(frames: tf.Tensor, layout=None) -> tf.Tensor:
    """`[T, 3]`: the face's nose tip in each frame of `frames` (`[T, 543 or len(layout), 3]`), or where the face is
    missing the pose's nose plus the mean face-minus-pose offset of the frames that have both (0 if none has);
    NaN only where both are missing."""
    face_at, pose_at = (int(i) for i in L.columns([L.HEAD, L.POSE_HEAD], layout))
    face, pose = frames[:, face_at], frames[:, pose_at]
    gap = face - pose  # NaN where either is missing
    seen = ~tf.math.is_nan(gap)
    offset = tf.reduce_sum(tf.where(seen, gap, tf.zeros_like(gap)), axis=0) / tf.maximum(
        tf.reduce_sum(tf.cast(seen, tf.float32), axis=0), 1.0)  # [3]
    return tf.where(tf.math.is_nan(face), pose + offset, face)
