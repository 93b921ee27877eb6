"""Tests of kit.preprocessing: the one preprocessing layer, its feature options and the augmentations."""
