"""Tests of kit.models: the registered architectures."""
