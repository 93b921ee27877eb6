"""Tests of kit.contract: export, the TFLite contract and its gates, evaluate."""
