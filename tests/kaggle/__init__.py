"""Tests of kit.kaggle: fetch, submit and training in Kaggle kernels, against a local Kaggle stub (tests/kaggle_stub.py)."""
