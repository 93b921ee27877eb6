"""Your own signing in: pictures from a video, images or a webcam (sources), MediaPipe Holistic over them, written as
a competition landmark file (holistic: `kit capture`).

Imports the data package (the competition's columns, train.csv, the sign map) and the shared core; the rule is in
ARCHITECTURE.md and tests/test_layout.py.
"""
