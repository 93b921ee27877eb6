"""The one preprocessing layer, in builtin TFLite ops: raw `[frames, 543, 3]` -> model input `(features, mask)`.

preprocess (defined once: the tf.data pipeline and the exported graph run the same ops), its feature options
(features), where the head is (head), and the training-time augmentations (augment: never in the exported graph).
Imports the data package (landmark indices) and the shared core; the rule is in ARCHITECTURE.md and
tests/test_layout.py.
"""
