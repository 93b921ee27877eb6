"""Tests of kit.capture: your own signing through MediaPipe Holistic (data/: the sample pictures and their provenance)."""
