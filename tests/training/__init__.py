"""Tests of kit.training: the tf.data pipeline, folds, full fits, resumes, sweeps, devices and distribution."""
