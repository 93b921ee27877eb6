"""Tests of kit.seeing: kit show, stats, report, runs and MLflow tracking."""
