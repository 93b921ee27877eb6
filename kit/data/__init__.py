"""Data in: the competition's landmark files read, checked and cached; synthetic sets of the same layout.

landmarks (the one place that knows index numbers) -> parquet (one file read and checked) -> prepare -> cache (the
memory-mapped training cache); vocabulary (the signs a data set names), folds (GroupKFold by participant), synth and
rehearsal (synthetic data sets in the competition's layout). Imports only the shared core (kit.config, kit.errors,
kit.progress, kit.quiet); the rule is in ARCHITECTURE.md and tests/test_layout.py.
"""
