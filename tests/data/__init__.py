"""Tests of kit.data: landmark files read and checked, the training cache, vocabularies, folds, synthetic sets."""
